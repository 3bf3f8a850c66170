# imagebuild: the tests build their base image from Debian's static busybox, make xz-compressed ADD archives with xz
# (imagebuild decompresses xz through the xz program too) and push to docker-registry through internal/acrtest
# (declared in registry.sh). The benchmark (scripts/bench/imagebuild.sh) compares against gzip and pigz. An image
# built with RUN goes through the SIF builder and runs under Charliecloud's ch-run, mounted with squashfuse (fuse3
# for fusermount); the RUN benchmark (scripts/bench/imagebuild-run.sh) compares against util-linux's unshare.
packages+=(busybox-static xz-utils bzip2 zstd pigz charliecloud-runtime squashfuse fuse3 util-linux)

# RUN as an unprivileged user with subordinate ids: newuidmap and newgidmap (uidmap), and a range of 65,536 ids in
# /etc/subuid and /etc/subgid for the test user sgetest (created if missing), after every range already there.
# Idempotent; nothing to stop. The tests also run as nobody, who has no range.
packages+=(uidmap)
services+=(imagebuild_subids)
start_imagebuild_subids() {
	id sgetest >/dev/null 2>&1 || useradd --system --no-create-home sgetest
	local f next
	for f in /etc/subuid /etc/subgid; do
		touch "$f"
		grep -q '^sgetest:' "$f" && continue
		next=$(awk -F: 'BEGIN {n = 100000} NF == 3 && $2 + $3 > n {n = $2 + $3} END {print n}' "$f")
		echo "sgetest:$next:65536" >>"$f"
	done
}
stop_imagebuild_subids() { :; }
