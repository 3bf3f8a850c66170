# e2e: the end-to-end test (e2e/) compiles an MPI program with mpicc, builds an image of it, its libraries and
# Debian's static busybox (with a RUN step), pushes it to docker-registry behind the ACR emulation, pulls it as
# a SIF and submits a job to the Grid Engine cell (gridengine.sh) that mounts the SIF with squashfuse, as the
# cell's unprivileged submit user, and runs two MPICH ranks in it through Charliecloud's ch-run.
packages+=(mpich libmpich-dev build-essential busybox-static docker-registry squashfuse fuse3 charliecloud-runtime)

# squashfuse run by an unprivileged user opens /dev/fuse itself. udev makes the device 0666 (its
# 50-udev-default.rules); a container without udev leaves it 0600, root only. Give it udev's mode for the run.
services+=(fuse)
fuse_mode=
start_fuse() {
	[ -c /dev/fuse ] || {
		echo "/dev/fuse is missing: the kernel's fuse module is not loaded" >&2
		return 1
	}
	fuse_mode=$(stat -c %a /dev/fuse)
	[ "$fuse_mode" = 666 ] || chmod 0666 /dev/fuse
}
stop_fuse() {
	if [ -n "$fuse_mode" ] && [ "$fuse_mode" != 666 ]; then
		chmod "$fuse_mode" /dev/fuse
	fi
}
