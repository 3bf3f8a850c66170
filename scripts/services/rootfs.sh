# rootfs: the layer-flattening tests compare Flatten's tree with what umoci (the unpacker apptainer uses) puts on disk.
packages+=(umoci)
