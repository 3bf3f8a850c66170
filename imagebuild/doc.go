// Package imagebuild assembles OCI images without a Docker daemon and without root:
// from typed steps (Build) or from a Dockerfile (ParseDockerfile, BuildDockerfile),
// on a base that is scratch, a v1.Image, an image in a registry, an OCI layout or a
// docker tarball. The result is a go-containerregistry v1.Image, which WriteLayout,
// WriteTarball and Push (or acr.Push, or the SIF builder) take as it is.
//
//	Dockerfile ──► ParseDockerfile ──► checked instructions ──┐ variables expanded with
//	(BuildKit's parser, internal)      errors name the line   │ the base image's ENV
//	                                                          ▼
//	[]Step (Workdir, Add, Copy, Env, Run, Entrypoint, ...) ──► Build, step by step:
//	                                                          │
//	   config steps (ENV, CMD, USER, ...)  ──────────────────►│ config + empty-layer history
//	   RUN ───────► Runner (WithRunner; none: ErrRunUnavailable)
//	   WORKDIR, ADD, COPY: one streaming pass per layer       │
//	     context files ─┐                                     │
//	     intel.tgz ─────┼─► tar entries ─┬─► sha256 = diffID  │
//	     (gunzip, xz,   │   sorted, PAX, └─► pgzip (1 MiB blocks, all cores)
//	     bzip2, zstd)  ─┘   clamped times,      └─► sha256 = digest ─► cache/blobs/sha256/<digest>
//	                        owners 0:0                                   │
//	                                                                     ▼
//	base v1.Image ───────────────────────────────────────► mutate.Append + config ─► v1.Image
//
// # Layers
//
// A layer is written once: its tar stream is hashed (diffID), compressed in parallel
// gzip blocks, hashed again (digest) and written to a temporary file in the cache
// directory, renamed to its digest. The layer is a v1.Layer whose digests are known,
// so nothing compresses or hashes it again, and no layer is ever held in memory.
// ADD of a local archive (tar, uncompressed or compressed with gzip, bzip2, xz or
// zstd, recognised by content) transcodes the archive's entries under the
// destination without extracting anything to disk; an entry whose name climbs out of
// the destination, or that goes through a symlink of the archive, is an
// *ArchiveEntryError matching ErrUnsafePath (symlink targets themselves are data,
// kept as they are and resolved inside the image's root). COPY never
// extracts. Host directories are walked in sorted order; hardlinks within a source
// stay hardlinks; .dockerignore applies. xz is decoded by the system's xz program
// (Debian: xz-utils), since no xz decoder is among this module's dependencies.
//
// # Reproducible by default
//
// The build's time is WithSourceDateEpoch, else $SOURCE_DATE_EPOCH, else
// 1970-01-01: it is the image's and its history's creation time, and every file's
// modification time is clamped to it. Entries are written in PAX format without
// access or change times, owner names or xattrs, and owned by 0:0 (or --chown); an
// archive's entries keep their numeric owners and its order. Building the same
// inputs twice, on any machine, gives the same image digest, for any number of
// cores (pgzip's output depends on its block size and level, not on its workers).
//
// # Cache
//
// A step is looked up by the key of the image before it, its instruction, and, for
// ADD and COPY, a fingerprint of its inputs' metadata (path, mode, size, modification
// and change times, inode); a RUN step by its command, environment, working directory
// and user. A hit reuses the layer file without reading the inputs or compressing
// anything; a miss rebuilds from that step on, since every later key covers the
// earlier ones. After a step the image's key covers the layer's content (its
// diffID), so an input touched without being changed costs one rebuild of its step
// and no more. The cache lives under os.UserCacheDir (WithCacheDir), is safe for
// concurrent builds (every file is written to a temporary name and renamed), is
// bypassed by WithoutCache, and is never pruned by this package: remove the directory
// to reclaim its space.
//
// # Dockerfile support
//
// FROM (scratch, --platform, ARG before FROM, one stage), ARG, ENV (both forms), LABEL,
// WORKDIR, ADD and COPY (files, directories, globs, --chown, --chmod), RUN (shell and
// exec forms), ENTRYPOINT and CMD (ENTRYPOINT clears an inherited CMD), USER, EXPOSE,
// VOLUME, STOPSIGNAL, SHELL and HEALTHCHECK. Variables expand as in Docker, in the
// instructions where Docker expands them. Anything else (multi-stage builds, COPY
// --from, ONBUILD, RUN --mount, here-documents, remote ADD) is a *StepError naming the
// line and matching ErrUnsupportedInstruction, before any step runs. An exec-form
// ENTRYPOINT or CMD that looks written for a shell (ENTRYPOINT ["exec", "\"$@\""]) is
// kept as written, as Docker keeps it, with a warning through WithLogger.
//
// Known differences from BuildKit: WORKDIR creates its directory owned by 0:0 even
// after USER; parent directories that ADD and COPY create are 0755 0:0; the archive
// order of an ADD archive is kept rather than sorted.
//
// # RUN
//
// RUN steps go to a Runner. Without one (WithRunner) they fail with
// ErrRunUnavailable; a Runner receives the command, the environment and the image's
// layers, and returns the changes as a layer, which it can write with
// RunRequest.WriteLayer. RUN layers are cached like the others.
//
// On Linux, NewNamespaceRunner runs RUN steps without a daemon and without root,
// in new user, mount and pid namespaces; see NamespaceRunner for what works with
// a single id mapping.
package imagebuild
