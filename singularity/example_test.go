package singularity_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
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
	fmt.Println(info.Environment["/.singularity.d/env/10-docker2singularity.sh"])
	for _, d := range info.Descriptors {
		fmt.Println(strings.TrimSpace(fmt.Sprintln(d.ID, d.Type, d.Name, d.FSType, d.PartType, d.Arch)))
	}
	// Output:
	// 40960 bytes, sha256 13bcbc5d143f9a94076276a07716ba1034701e1b6f6d1958d61f25505be8fe14
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

// localRegistry starts go-containerregistry's in-memory registry on a
// loopback port and returns its host:port; the examples use it in place of
// myacr.azurecr.io.
func localRegistry() (string, func()) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	return strings.TrimPrefix(srv.URL, "http://"), srv.Close
}

// Pull converts an image in a registry, here with credentials from the
// environment as Apptainer reads them, else from docker's config; any
// authn.Keychain, such as acr's, works through WithKeychain.
func ExamplePull() {
	host, stop := localRegistry()
	defer stop()
	ref, err := name.ParseReference(host + "/rdma:latest")
	if err != nil {
		log.Fatal(err)
	}
	if err := remote.Write(ref, exampleImage()); err != nil {
		log.Fatal(err)
	}
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	var last singularity.Progress
	path, err := singularity.Pull(context.Background(), ref, dir,
		singularity.WithKeychain(authn.DefaultKeychain),
		singularity.WithEnvCredentials(),
		singularity.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}),
		singularity.WithCacheDir(filepath.Join(dir, "cache")),
		singularity.WithProgress(func(p singularity.Progress) { last = p }))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(filepath.Base(path))
	fmt.Printf("%d/%d files\n", last.Files, last.FilesTotal)
	info, err := singularity.Inspect(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.OCIConfig.Cmd)
	// Output:
	// rdma_latest.sif
	// 1/1 files
	// [/bin/cat /opt/hello.txt]
}

// A SIF converted once goes to the registry, and every node pulls it ready.
func ExamplePushSIF() {
	host, stop := localRegistry()
	defer stop()
	ref, err := name.ParseReference(host + "/rdma:sif")
	if err != nil {
		log.Fatal(err)
	}
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	sifPath := filepath.Join(dir, "rdma_latest.sif")
	ctx := context.Background()
	err = singularity.Build(ctx, exampleImage(), sifPath,
		singularity.WithSource("myacr.azurecr.io/rdma:latest"),
		singularity.WithSourceDateEpoch(time.Unix(1700000000, 0)))
	if err != nil {
		log.Fatal(err)
	}
	digest, err := singularity.PushSIF(ctx, sifPath, ref)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("manifest", digest)

	// On a compute node; `apptainer pull oras://<registry>/rdma:sif` reads the same artifact.
	node := filepath.Join(dir, "node")
	if err := os.Mkdir(node, 0o755); err != nil {
		log.Fatal(err)
	}
	got, err := singularity.PullSIF(ctx, ref, node)
	if err != nil {
		log.Fatal(err)
	}
	a, _ := os.ReadFile(sifPath)
	b, _ := os.ReadFile(got)
	fmt.Println(filepath.Base(got), bytes.Equal(a, b))
	// Output:
	// manifest sha256:f1f7fbfe99b7ad83157fef7fdd830a809e9061664ae9559d3253bebddf28dba4
	// rdma_sif.sif true
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
