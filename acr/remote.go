package acr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/hpcship/hpcship/internal/backoff"
)

// Push uploads img and its blobs to ref and returns the manifest digest. Blobs the
// repository already has are not uploaded again.
//
// Defaults, and the option that changes each: credentials from NewKeychain(nil), the
// environment then the docker config file (WithAuth, WithKeychain); 4 blobs at once
// (WithJobs); failed requests tried 5 times in all with backoff from 250ms, honouring
// Retry-After up to a minute (WithRetry, WithMaxRetryAfter); no progress reports
// (WithProgress); no logging (WithLogger).
//
// Rejected credentials give an *AuthError (errors.Is(err, ErrUnauthorized)).
func Push(ctx context.Context, ref name.Reference, img v1.Image, opts ...Option) (v1.Hash, error) {
	return push(ctx, "acr.Push", ref, img, opts)
}

// PushIndex uploads an image index, every image it lists and their blobs to ref, and
// returns the index digest. Its defaults and errors are those of Push.
func PushIndex(ctx context.Context, ref name.Reference, idx v1.ImageIndex, opts ...Option) (v1.Hash, error) {
	return push(ctx, "acr.PushIndex", ref, idx, opts)
}

type taggable interface {
	remote.Taggable
	Digest() (v1.Hash, error)
}

func push(ctx context.Context, call string, ref name.Reference, t taggable, opts []Option) (v1.Hash, error) {
	o, err := makeOptions(call, callPush, opts)
	if err != nil {
		return v1.Hash{}, err
	}
	digest, err := t.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("pushing %s: computing the digest: %w", ref, err)
	}
	ropts, secrets := o.remoteOptions(ctx, ref.Context().Registry)
	var done chan struct{}
	if o.progress != nil {
		updates := make(chan v1.Update, 64)
		done = make(chan struct{})
		go func() {
			defer close(done)
			for u := range updates {
				if u.Error == nil {
					o.progress(Progress{Complete: u.Complete, Total: u.Total})
				}
			}
		}()
		ropts = append(ropts, remote.WithProgress(updates))
	}
	err = remote.Push(ref, t, ropts...)
	if done != nil {
		<-done
	}
	if err != nil {
		err = classify(ref.Context().RegistryStr(), redactError(err, secrets))
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			// ctx ended the wait before an upload restart: go-containerregistry
			// reports the failure that led to the wait, the caller needs to know why
			// the push stopped.
			err = fmt.Errorf("%w, after: %w", cerr, err)
		}
		return v1.Hash{}, fmt.Errorf("pushing %s: %w", ref, err)
	}
	o.logger.InfoContext(ctx, "pushed", "ref", ref.String(), "digest", digest.String())
	return digest, nil
}

// Pull returns the image at ref. Only the manifest and config are fetched now; layers
// are read from the registry when the image's layers are read, so ctx must stay live
// until then. A reference to an index resolves to its linux/amd64 image. The defaults
// and errors are those of Push.
//
// ACR redirects layer reads to Azure Storage with a SAS in the URL. When storage fails,
// the layer's error names the storage host and path; the SAS query is redacted.
func Pull(ctx context.Context, ref name.Reference, opts ...Option) (v1.Image, error) {
	o, err := makeOptions("acr.Pull", callRead, opts)
	if err != nil {
		return nil, err
	}
	ropts, secrets := o.remoteOptions(ctx, ref.Context().Registry)
	img, err := remote.Image(ref, ropts...)
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, classify(ref.Context().RegistryStr(), redactError(err, secrets)))
	}
	// The image goes back unwrapped. A failed read at the storage a layer GET was
	// redirected to comes back as a *url.Error that net/http builds above
	// registryTransport, out of its reach, or as a *transport.Error for an error status.
	// go-containerregistry's blob fetch redacts the *url.Error's query (every parameter
	// but the registry protocol's own), a *transport.Error's message redacts it too, and
	// body read errors carry no URL. Wrapping the image to redact again would have to
	// wrap every layer and still keep the *remote.MountableLayer that lets a later push
	// mount them; following redirects in registryTransport would bypass
	// go-containerregistry's redirect checks. TestPulledLayerErrorsHideSAS fails if the
	// redaction goes.
	return img, nil
}

// ListTags returns the tags of a repository, in the registry's order. The defaults and
// errors are those of Push.
func ListTags(ctx context.Context, repo name.Repository, opts ...Option) ([]string, error) {
	o, err := makeOptions("acr.ListTags", callRead, opts)
	if err != nil {
		return nil, err
	}
	ropts, secrets := o.remoteOptions(ctx, repo.Registry)
	tags, err := remote.List(repo, ropts...)
	if err != nil {
		return nil, fmt.Errorf("listing tags of %s: %w", repo, classify(repo.RegistryStr(), redactError(err, secrets)))
	}
	return tags, nil
}

// Catalog returns the repositories of a registry. ACR lists them only to identities
// allowed registry:catalog:*, which the admin user and Azure AD principals with a
// reader role are; repository-scoped tokens are not. The defaults and errors are those
// of Push.
func Catalog(ctx context.Context, reg name.Registry, opts ...Option) ([]string, error) {
	o, err := makeOptions("acr.Catalog", callRead, opts)
	if err != nil {
		return nil, err
	}
	ropts, secrets := o.remoteOptions(ctx, reg)
	repos, err := remote.Catalog(ctx, reg, ropts...)
	if err != nil {
		return nil, fmt.Errorf("listing repositories of %s: %w", reg, classify(reg.RegistryStr(), redactError(err, secrets)))
	}
	return repos, nil
}

// remoteOptions translates the options into go-containerregistry's for one call to a
// registry. The secrets the call sends are recorded in the returned set, so that its
// errors can be redacted.
func (o *options) remoteOptions(ctx context.Context, reg name.Registry) ([]remote.Option, *secretSet) {
	secrets := &secretSet{}
	tr := newRegistryTransport(reg.RegistryStr(), o)
	tr.secrets = secrets
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithJobs(o.jobs),
		remote.WithUserAgent(o.userAgent),
		remote.WithTransport(tr),
		// Status codes and dropped connections are retried below go-containerregistry,
		// where Retry-After is honoured. go-containerregistry only starts failed blob
		// uploads over; the predicate decides when and waits, so that the wait is capped
		// and ends with ctx (go-containerregistry's own backoff sleeps through both).
		remote.WithRetryStatusCodes(),
		remote.WithRetryPredicate(o.uploadRestarter(ctx, secrets)),
		remote.WithRetryBackoff(remote.Backoff{Steps: o.attempts}),
	}
	switch {
	case o.auth == authn.Anonymous:
		ropts = append(ropts, remote.WithAuth(o.auth))
	case o.auth != nil:
		ropts = append(ropts, remote.WithAuth(&recordingAuth{inner: o.auth, secrets: secrets}))
	case o.keychain != nil:
		ropts = append(ropts, remote.WithAuthFromKeychain(recordingKeychain{inner: o.keychain, secrets: secrets}))
	default:
		kc := newKeychain(nil, o)
		ropts = append(ropts, remote.WithAuthFromKeychain(recordingKeychain{inner: kc, secrets: secrets}))
	}
	return ropts, secrets
}

// uploadRestarter returns go-containerregistry's retry predicate for one call. The
// predicate is asked about two kinds of failure:
//
//   - a request's, by go-containerregistry's retrying transport: never retried there,
//     because registryTransport has already tried it as often as WithRetry allows;
//   - a blob upload's: started over from a new upload session when its PATCH failed
//     with a transient status or a dropped connection (registryTransport does not
//     replay a PATCH into the same session), and after ACR's intermittent
//     BLOB_UPLOAD_UNKNOWN, which also shows when a commit went through but its answer
//     was lost (the retry then finds the blob in place). A request other than the
//     PATCH that still failed after its retries ends the upload.
//
// Before a restart it waits with the backoff of WithRetry, doubling with every restart
// within the call, and gives up when ctx ends.
func (o *options) uploadRestarter(ctx context.Context, secrets *secretSet) func(error) bool {
	var restarts atomic.Int64
	return func(err error) bool {
		if !restartable(err) {
			return false
		}
		n := restarts.Add(1)
		wait := backoff.Exponential(o.backoff, maxBackoff, int(n))
		o.logger.WarnContext(ctx, "starting a blob upload over", "error", secrets.redact(errString(err)), "restart", n, "wait", wait)
		return backoff.Sleep(ctx, wait) == nil
	}
}

// restartable reports whether a failed blob upload is worth starting over.
func restartable(err error) bool {
	var terr *transport.Error
	if errors.As(err, &terr) {
		for _, d := range terr.Errors {
			if d.Code == transport.BlobUploadUnknownErrorCode {
				return true
			}
		}
		return terr.Temporary() && terr.Request != nil && terr.Request.Method == http.MethodPatch
	}
	var uerr *url.Error
	return errors.As(err, &uerr) && uerr.Op == "Patch" && isTransient(err)
}

// classify turns credential rejections into *AuthError.
func classify(registry string, err error) error {
	var aerr *AuthError
	if errors.As(err, &aerr) {
		return err
	}
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
		return &AuthError{Registry: registry, StatusCode: terr.StatusCode, Err: err}
	}
	return err
}
