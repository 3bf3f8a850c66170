# singularity: SIFs built by an unprivileged user are read back with unsquashfs,
# mounted with squashfuse at the partition's offset and run with Charliecloud's
# ch-run; the test images are made of Debian's static busybox.
packages+=(charliecloud-runtime busybox-static squashfs-tools squashfuse fuse3)
