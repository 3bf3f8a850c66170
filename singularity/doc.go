// Package singularity turns OCI images into containers that Singularity and
// Apptainer run, without either binary, without root and without unpacking
// anything to disk: `singularity pull docker://myacr.azurecr.io/rdma:latest`
// as a Go call. It also inspects SIFs, moves them to and from a registry as
// `oras://` artifacts, and renders the `singularity exec` command line and
// bind-path variable that an MPI launcher puts in front of every rank.
//
// Build converts a v1.Image (from acr.Pull, imagebuild, a layout, anything
// ggcr reads); Pull fetches one by reference with any authn.Keychain, through
// a blob cache, and converts it:
//
//	registry ──► blob cache (compressed, by digest) ──► layers (tar streams)
//	                                                        │
//	              internal/rootfs.Flatten: pass 1, headers only, whiteouts applied in memory
//	                                                        ▼
//	   /.singularity.d tree, /etc/hosts, links ──► merged tree (metadata only)
//	                                                        │
//	              Tree.WalkContents: pass 2, file contents straight from the tar streams
//	                                                        ▼
//	              internal/squashfs.Writer (zlib or zstd, all cores) ──► written in place into the SIF
//	                                                        ▼
//	   sif library writes header, descriptors, definition and JSON around it ──► temp file ──► rename
//
// The output is written to a temporary file next to its path and renamed
// only when complete, and the squashfs is written directly at the offset the
// SIF library gives its partition, so the only disk a build takes is the size
// of the SIF. The SIF, as Apptainer writes it for an image pulled from a
// registry:
//
//	0      ┌──────────────────────────────────────────────────────────────┐
//	       │ launch script "#!/usr/bin/env run-singularity\n"             │ 32 bytes
//	32     │ SIF_MAGIC, version 01, arch "02" (amd64), ID, times, counts │
//	4096   ├──────────────────────────────────────────────────────────────┤
//	       │ 48 descriptors of 585 bytes: type, ID, group, offset, size, │
//	       │ name, extra (partition: fs type, part type, arch)           │
//	32176  ├──────────────────────────────────────────────────────────────┤
//	       │ 1 Def.FILE      "bootstrap: docker\nfrom: <ref>\n\n"         │
//	       │ 2 JSON.Generic  inspect-metadata.json (labels, env, scripts) │
//	       │ 3 JSON.Generic  oci-config.json (the image's config)         │
//	4 KiB  ├──────────────────────────────────────────────────────────────┤
//	aligned│ 4 FS  Squashfs / *System / amd64: the root file system,      │
//	       │   with /.singularity.d/{env,actions,runscript,labels.json…}  │
//	       └──────────────────────────────────────────────────────────────┘
//
// The legacy .simg of Singularity 2.x (WithFormat(FormatSIMG)) is the same
// squashfs after the 31-byte launch line, with no descriptors.
//
// # The /.singularity.d tree
//
// Build adds what Apptainer's builder adds, with the same bytes: the action
// scripts and env/01-base.sh, 90-environment.sh, 95-apps.sh, 99-base.sh and
// 99-runtimevars.sh from Apptainer v1.5 (under its BSD license);
// env/10-docker2singularity.sh from the image's ENV (PATH set as the image
// says, every other variable only if unset on the host, values escaped for
// double quotes: backslash, double quote, backtick and dollar; names sh
// cannot hold are left out and logged); the runscript from ENTRYPOINT and CMD
// with Apptainer's template (including the line runtimes look for to run it
// in-process); an empty startscript; labels.json (the image's labels and
// Apptainer's build labels, tab-indented); the definition file Singularity;
// the directories /dev, /proc, /sys, /root, /home, /tmp, /var/tmp and /etc
// where missing; empty /etc/hosts and /etc/resolv.conf (mode 0644; the
// runtime binds the host's); and the links /singularity, /.run, /.exec,
// /.test, /.shell and /environment. The root directory gets owner write, as
// Apptainer gives it.
//
// # What is kept
//
// Everything the layers say survives, even when built by an unprivileged
// user, because nothing touches the host's file system: owners (files of uid
// 1000 stay 1000, where rootless Apptainer maps them to 0), mode-000 files with
// their content and mode-000 directories with theirs (rootless Apptainer
// empties the first and drops the second), character and block devices and
// FIFOs (which become empty files there), setuid and setgid bits, hardlinks
// (also across layers and after the first name is deleted), symlinks, and
// xattrs. Two things squashfs cannot hold are handled visibly: an xattr
// outside the user., trusted. and security. namespaces (system.posix_acl_*,
// for example) is dropped and logged at warning level (WithLogger), as is a
// POSIX ACL PAX record; a device number beyond squashfs' 12-bit major and
// 20-bit minor fails the build, since changing it would silently make another
// device: internal/rootfs refuses it while merging, with an error naming the
// layer, the entry and the number (and an *EntryError wrapping
// ErrUnrepresentable guards the same limit when the tree is packed).
//
// # Compression
//
// The squashfs is zlib ("gzip"), which every Singularity and Apptainer reads,
// at level 6 by default (WithCompression, WithCompressionLevel). What that costs depends on the
// files: on a real 1.07 GB tree (the Go toolchain and /usr/lib/x86_64-linux-gnu,
// `scripts/bench.sh squashfs`) the squashfs was 5.5 % larger than mksquashfs'
// level 9 (what Apptainer runs) and 4.8 % larger than its level 6, for 0.27×
// the CPU time of the latter, since klauspost's zlib level 6 compresses less
// than C zlib's; on the generated benchmark tree it was 0.2 % larger than level
// 9. WithMksquashfs packs with squashfs-tools' sqfstar instead,
// fed a tar stream of the merged root, keeping the same fidelity.
//
// WithCompression(Zstd, level) writes a zstd squashfs instead (compressor 6,
// its level in compressor options after the superblock as mksquashfs writes
// them), smaller and faster to build and to read, for clusters whose runtime
// reads it: kernels since Linux 4.14, squashfuse and squashfs-tools built with
// libzstd. The README's singularity section has the time and size of each
// compressor and level against mksquashfs on the real tree.
//
// # Options
//
// Every option names the calls it applies to. A call given an option it does
// not take (WithKeychain to Build, WithCompression to PullSIF), an invalid
// value or two options that conflict fails with an *OptionError naming the
// call and the option, before doing anything.
//
// # Requirements
//
// Nothing at run time but network access to the registry for Pull, PushSIF
// and PullSIF, and sqfstar for WithMksquashfs. Running the result needs
// Singularity, Apptainer, or squashfuse plus any runtime (the tests mount the
// partition with `squashfuse -o offset=N` and run it with Charliecloud's
// ch-run).
package singularity
