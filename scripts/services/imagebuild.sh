# imagebuild: the tests build their base image from Debian's static busybox, make xz-compressed ADD archives with xz
# (imagebuild decompresses xz through the xz program too) and push to docker-registry through internal/acrtest
# (declared in registry.sh). The benchmark (scripts/bench/imagebuild.sh) compares against gzip and pigz.
packages+=(busybox-static xz-utils bzip2 zstd pigz)
