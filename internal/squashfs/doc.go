// Package squashfs writes squashfs 4.0 images, the file system inside a SIF
// container, from entries given one by one: path, type, mode, owner, time,
// link target, device number, xattrs and a reader for the contents. It never
// reads a host directory, so owners, device nodes, mode-000 files and xattrs
// such as security.capability survive a build by an unprivileged user, and
// the SIF builder can feed it straight from flattened OCI layers.
//
// File contents stream: Add reads a file block by block (128 KiB by default),
// compresses blocks with zlib (squashfs "gzip", the compressor every
// Singularity and Apptainer installation reads) or, with
// WithCompression(Zstd, level), Zstandard, on all cores and writes them in
// order, so the image is byte-identical for any number of workers. A level
// other than mksquashfs' default (9 for gzip, 15 for zstd) is recorded in
// compressor options after the superblock, as mksquashfs records it. Memory
// holds the metadata (a few hundred bytes per entry) plus 2×workers+2 block
// buffers; packing a 1 GB tree of 20,000 files peaks at about 24 MB of RSS.
// Close writes the tables and the superblock.
//
// The image, as written (offsets grow downwards; every table is found
// through the superblock):
//
//	0      ┌────────────────────────────────────────────────────────────┐
//	       │ superblock (96 bytes): counts, block size, table offsets   │ written last
//	96     │ [compressor options: level (gzip: + window, strategies)]   │
//	       ├────────────────────────────────────────────────────────────┤
//	       │ data: each file's blocks in the order files were added,    │ streamed by Add
//	       │ zlib or stored (bit 24), all-zero blocks omitted (size 0); │
//	       │ fragment blocks packing small files and tails              │
//	       ├────────────────────────────────────────────────────────────┤
//	       │ inode table: 8 KiB metadata blocks, children before their  │ written by Close
//	       │ directory, the root last; extended inodes for > 4 GiB,     │
//	       │ hardlinks and xattrs                                       │
//	       ├────────────────────────────────────────────────────────────┤
//	       │ directory table: sorted listings, headers of <= 256 names; │
//	       │ listings > 8 KiB get an index in their directory inode     │
//	       ├────────────────────────────────────────────────────────────┤
//	       │ fragment table  ─┐                                         │
//	       │ export table     ├ metadata blocks, then a list of their   │
//	       │ uid/gid table   ─┘ u64 offsets that the superblock points  │
//	       │ xattr table: key/value blocks, id blocks, header + list    │
//	       ├────────────────────────────────────────────────────────────┤
//	       │ zero padding to a multiple of 4 KiB                        │
//	       └────────────────────────────────────────────────────────────┘
//
// Identical files are stored once (WithDeduplication): when a file's SHA-256
// matches an earlier one, the blocks just written for it are given back and
// its inode points at the earlier data. A file rejected half-way (short
// content, read error, cancelled context) is given back the same way, so it
// leaves no trace in the image.
//
// The default zlib level is 6, not mksquashfs' 9. The compressor is
// klauspost/compress's zlib, whose levels compress less than C zlib's, so our
// images are not mksquashfs' images at the same level. Measured with
// scripts/bench/squashfs.sh in one run of BENCH_RUNS=3 scripts/bench.sh
// (every section; 3 alternated runs a side on the 2-core machine with
// nothing else running, load average 2.21–2.93; the README has the table):
// on a real tree, the Go toolchain and /usr/lib/x86_64-linux-gnu (1.07 GB),
// our level-6 image was 4.8 % larger than mksquashfs' level 6 and 5.5 %
// larger than its level 9, for 3.7 and 12 times less CPU (medians of 11.7 s
// against 42.9 s, and of 11.5 s against 138.7 s); its size is nearest
// mksquashfs' level 4 (1.5 % larger), against which it used 2.0 times less
// CPU. On the generated tree (small text files, repetitive logs, random data)
// it fell between mksquashfs' level 6 (0.45 % smaller) and level 9 (0.22 %
// larger).
//
// Images are read back in tests by unsquashfs, sqfs2tar, squashfuse and the
// Linux kernel (loop mount), and by an independent reader in the tests.
package squashfs
