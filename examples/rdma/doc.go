// Command rdma runs the hpcship workflow against real Azure, one step at a time, each printed with the
// command of the hand-run workflow it replaces:
//
//	[1/9] registry     acr/arm       az acr create / az acr show --query loginServer
//	[2/9] credentials  acr, acr/arm  az acr login (Azure AD), or az acr credential show (-auth admin)
//	[3/9] build        imagebuild    docker build (the context's Dockerfile, else the seed's)
//	[4/9] push         acr           docker push
//	[5/9] pull         singularity   SINGULARITY_DOCKER_USERNAME/PASSWORD=… singularity build x.sif docker://…
//	[6/9] jobscript    scheduler/sge or scheduler/slurm, mpi: the hand-written rdma.job
//	[7/9] submit       qsub -pe mpi 32 rdma.job (or sbatch)
//	[8/9] wait         qstat, qacct (or squeue, sacct)
//	[9/9] results      mpi/imb: the IMB tables of the job's output file, printed aligned
//
// It runs on the cluster's head node (the SIF and the jobscript go to -workdir, which the nodes must see),
// authenticated to Azure Resource Manager and the registry by azidentity's default credential chain
// (environment, workload identity, managed identity, Azure CLI, …). With -auth admin, the registry is used
// with its admin user's keys, read through Resource Manager. The pull takes
// SINGULARITY_DOCKER_USERNAME/PASSWORD (APPTAINER_DOCKER_* with -runtime apptainer) from the environment
// when they are set, as Singularity does. No secret is printed.
//
// -dry-run checks the flags, parses the Dockerfile, renders and writes the jobscript, and prints every step
// with its command; it touches nothing in Azure or on the cluster. -submit=false stops after the jobscript.
// A bad command line exits 2, a failed step or job 1.
//
//	go run ./examples/rdma -subscription $SUB -resource-group hpc-rg -registry myacr -create -location westeurope -dry-run
package main
