# slurm: the scheduler/slurm integration tests submit jobs to a real single-host Slurm cluster with accounting
# (munged, MariaDB, slurmdbd, slurmctld, slurmd), beside the Grid Engine cell on its own ports. The packages are
# installed by the setup script, not through packages+=, because their postinst scripts must not start
# daemons on their own. The MPI tests also need mpich (scripts/services/mpich.sh).
services+=(slurm)
start_slurm() { bash scripts/slurm-setup.sh 8; }
stop_slurm() { bash scripts/slurm-teardown.sh; }
