# quickstart: examples/quickstart's tests read its SIF back with unsquashfs and submit its job to the Grid
# Engine cell and the Slurm cluster (gridengine.sh, slurm.sh); the job's launcher is MPICH's mpirun there
# (mpich.sh). -registry is tested against docker-registry (registry.sh).
packages+=(squashfs-tools)
