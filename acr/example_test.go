package acr_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/hpcship/hpcship/acr"
)

// Push to a registry with Azure AD credentials: whatever DefaultAzureCredential
// finds (environment service principal, workload or managed identity, Azure CLI).
//
// Compile-only: it needs an Azure identity and a real registry, and pulls from Docker
// Hub, so it has no Output line and go test does not run it. ExamplePush runs the same
// call against a local registry.
func ExamplePush_azureAD() {
	ctx := context.Background()
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		log.Fatal(err)
	}
	keychain, err := acr.NewAADKeychain(cred)
	if err != nil {
		log.Fatal(err)
	}
	ref, err := name.ParseReference("myacr.azurecr.io/rdma:latest")
	if err != nil {
		log.Fatal(err)
	}
	img, err := remote.Image(name.MustParseReference("docker.io/library/centos:7"), remote.WithContext(ctx))
	if err != nil {
		log.Fatal(err)
	}
	digest, err := acr.Push(ctx, ref, img, acr.WithKeychain(keychain), acr.WithProgress(func(p acr.Progress) {
		log.Printf("%d/%d bytes", p.Complete, p.Total)
	}))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ref.Context().Digest(digest.String()))
}

// Push a small deterministic image to a registry on this machine and print its
// digest. Hosts other than ACR login servers get no credentials unless named with
// WithHosts; this registry needs none.
func ExamplePush() {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	layer := static.NewLayer([]byte("hello from hpcship\n"), types.OCIUncompressedLayer)
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		log.Fatal(err)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://") + "/demo/hello:v1")
	if err != nil {
		log.Fatal(err)
	}
	digest, err := acr.Push(ctx, ref, img)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(digest)
	// Output: sha256:b4341237aa5157e3664ccacd35130ed7d4943dc2d190b5ca518dbc75858ad239
}

// Pull an image back and read its layers, which stream from the registry as they are
// read.
func ExamplePull() {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://") + "/demo/hello:v1")
	if err != nil {
		log.Fatal(err)
	}
	layer := static.NewLayer([]byte("hello from hpcship\n"), types.OCIUncompressedLayer)
	pushed, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := acr.Push(ctx, ref, pushed); err != nil {
		log.Fatal(err)
	}

	img, err := acr.Pull(ctx, ref)
	if err != nil {
		log.Fatal(err)
	}
	digest, err := img.Digest()
	if err != nil {
		log.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		log.Fatal(err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	content, err := io.ReadAll(rc)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(digest)
	fmt.Print(string(content))
	// Output:
	// sha256:b4341237aa5157e3664ccacd35130ed7d4943dc2d190b5ca518dbc75858ad239
	// hello from hpcship
}

func ExampleCloud_LoginServer() {
	for _, c := range []acr.Cloud{acr.AzurePublic, acr.AzureChina, acr.AzureUSGovernment} {
		ls, err := c.LoginServer("MyACR")
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ls)
	}
	_, err := acr.AzurePublic.LoginServer("my-acr")
	fmt.Println(err)
	// Output:
	// myacr.azurecr.io
	// myacr.azurecr.cn
	// myacr.azurecr.us
	// invalid registry name "my-acr": character '-' at offset 2 is not a letter or digit
}

func ExampleIsLoginServer() {
	for _, host := range []string{"myacr.azurecr.io", "myacr.azurecr.io.example.com", "ghcr.io"} {
		fmt.Println(host, acr.IsLoginServer(host))
	}
	// Output:
	// myacr.azurecr.io true
	// myacr.azurecr.io.example.com false
	// ghcr.io false
}
