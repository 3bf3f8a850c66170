# squashfs: the writer's images are read back with unsquashfs and mksquashfs (squashfs-tools),
# sqfs2tar (squashfs-tools-ng), squashfuse with fusermount3 (fuse3), and the kernel through
# mount -o loop (mount, from util-linux, is always there).
packages+=(squashfs-tools squashfs-tools-ng squashfuse fuse3)
