package singularity_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/hpcship/hpcship/singularity"
)

// exampleImage is a one-layer image with a file owned by uid 1000.
func exampleImage() v1.Image {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := "hello from the container\n"
	_ = tw.WriteHeader(&tar.Header{Name: "opt/hello.txt", Mode: 0o640, Uid: 1000, Gid: 1000, Size: int64(len(body)),
		ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX})
	_, _ = io.WriteString(tw, body)
	_ = tw.Close()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	})
	if err != nil {
		log.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		log.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config = v1.Config{Env: []string{"PATH=/usr/bin:/bin", `GREETING=say "hi"`}, Cmd: []string{"/bin/cat", "/opt/hello.txt"}}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		log.Fatal(err)
	}
	return img
}

// Build writes a SIF; with WithSourceDateEpoch the same image always gives
// the same bytes.
func ExampleBuild() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "hello_latest.sif")

	err := singularity.Build(context.Background(), exampleImage(), out,
		singularity.WithSource("myacr.azurecr.io/hello:latest"),
		singularity.WithSourceDateEpoch(time.Unix(1700000000, 0)))
	if err != nil {
		log.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	fmt.Printf("%d bytes, sha256 %x\n", len(b), sha256.Sum256(b))

	info, err := singularity.Inspect(out)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(info.Definition)
	fmt.Print(info.Environment["/.singularity.d/env/10-docker2singularity.sh"])
	for _, d := range info.Descriptors {
		fmt.Println(strings.TrimSpace(fmt.Sprintln(d.ID, d.Type, d.Name, d.FSType, d.PartType, d.Arch)))
	}
	// Output:
	// 40960 bytes, sha256 d6125fb47c9cbbfe3ca198ca31806baea18a41b4eb72a2978049e5ad5ac9e367
	// bootstrap: docker
	// from: myacr.azurecr.io/hello:latest
	//
	// #!/bin/sh
	// export PATH="/usr/bin:/bin"
	// export GREETING="${GREETING:-"say \"hi\""}"
	// 1 Def.FILE
	// 2 JSON.Generic inspect-metadata.json
	// 3 JSON.Generic oci-config.json
	// 4 FS  Squashfs *System amd64
}

// Pull converts an image in a registry, here with credentials from the
// environment as Apptainer reads them; any authn.Keychain, such as acr's,
// works through WithKeychain.
func ExamplePull() {
	ref, err := name.ParseReference("myacr.azurecr.io/rdma:latest")
	if err != nil {
		log.Fatal(err)
	}
	path, err := singularity.Pull(context.Background(), ref, "",
		singularity.WithKeychain(authn.DefaultKeychain),
		singularity.WithEnvCredentials(),
		singularity.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}),
		singularity.WithProgress(func(p singularity.Progress) {
			fmt.Fprintf(os.Stderr, "\r%d/%d files, %d MB written", p.Files, p.FilesTotal, p.BytesWritten>>20)
		}))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(path) // rdma_latest.sif
}

// A SIF converted once goes to the registry, and every node pulls it ready.
func ExamplePushSIF() {
	ref, err := name.ParseReference("myacr.azurecr.io/rdma:sif")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if _, err := singularity.PushSIF(ctx, "rdma_latest.sif", ref); err != nil {
		log.Fatal(err)
	}
	// On a compute node; `apptainer pull oras://myacr.azurecr.io/rdma:sif` reads the same artifact.
	if _, err := singularity.PullSIF(ctx, ref, "/scratch/rdma_latest.sif"); err != nil {
		log.Fatal(err)
	}
}

// The container wrapper and bind path of an MPI job, as plain argv and
// KEY=VALUE for mpi's launcher and a scheduler job.
func ExampleExec() {
	argv, err := singularity.Exec{Image: "./rdma-latest.simg"}.Argv()
	if err != nil {
		log.Fatal(err)
	}
	env, err := singularity.BindPathEnv(singularity.Singularity, "/etc/rdma/dat.conf")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(argv)
	fmt.Println(env)
	argv, _ = singularity.Exec{Runtime: singularity.Apptainer, Image: "rdma_latest.sif",
		Binds: []string{"/opt/intel:/opt/intel:ro"}, CleanEnv: true}.Argv()
	fmt.Println(argv)
	// Output:
	// [singularity exec ./rdma-latest.simg]
	// SINGULARITY_BINDPATH=/etc/rdma/dat.conf
	// [apptainer exec --bind /opt/intel:/opt/intel:ro --cleanenv rdma_latest.sif]
}
