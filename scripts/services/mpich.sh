# mpi: the real-launch tests compile a tiny MPI program with mpicc and run it under MPICH's hydra mpiexec.
packages+=(mpich libmpich-dev build-essential)
