# imagebuild: the tests build their base image from Debian's static busybox, make xz-compressed ADD archives with xz
# (imagebuild decompresses xz through the xz program too) and push to docker-registry through internal/acrtest
# (declared in registry.sh). The benchmark (scripts/bench/imagebuild.sh) compares against gzip and pigz. An image
# built with RUN goes through the SIF builder and runs under Charliecloud's ch-run, mounted with squashfuse (fuse3
# for fusermount); the RUN benchmark (scripts/bench/imagebuild-run.sh) compares against util-linux's unshare.
packages+=(busybox-static xz-utils bzip2 zstd pigz charliecloud-runtime squashfuse fuse3 util-linux)
