// Quickstart runs the whole hpcship workflow on one machine, with nothing to install and no account:
//
//	registry   an in-process registry that speaks Azure Container Registry's token protocol
//	           (go-containerregistry's registry behind internal/acrtest), or -registry myacr.azurecr.io
//	intel      a generated stand-in for /opt/intel (3 MiB), or -intel /opt/intel
//	build      the seed Dockerfile's image with imagebuild: scratch (or -base centos:7), WORKDIR, the Intel
//	           tree at /opt/intel, ENV LD_LIBRARY_PATH, CMD IMB-MPI1 PingPong
//	push       acr.Push with the registry's admin user (emulated), or acr's keychain for a real registry
//	sif        singularity.Pull of the pushed image into rdma_latest.sif, as `singularity pull docker://`
//	oras       singularity.PushSIF to oras://…/rdma-sif:latest and PullSIF back, compared byte for byte
//	jobscript  rdma.job for Grid Engine (or -scheduler slurm) with the Intel MPI settings mpi gives an
//	           Azure Standard_H16r, and singularity's exec argv as the launcher's wrapper
//	job        with -submit, submitted with qsub (sbatch) and waited for; otherwise the jobscript and the
//	           command that submits it are printed
//
// Usage:
//
//	go run ./examples/quickstart [-workdir DIR] [-registry HOST] [-base REF] [-intel DIR]
//	    [-scheduler sge|slurm] [-submit] [-slots N] [-queue Q] [-image REPO:TAG]
//
// It ends with a summary: image digest, SIF path and size, the time of each stage, and the job's id and
// state. Progress bars show on a terminal, plain lines otherwise.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args, runs the workflow and returns the process's exit status: 0, 1 when a stage or the
// submitted job failed, 2 for bad flags.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "quickstart: %v\n", err)
		return 2
	}
	if _, err := quickstart(ctx, cfg, newConsole(stdout)); err != nil {
		fmt.Fprintf(stderr, "quickstart: %v\n", err)
		return 1
	}
	return 0
}
