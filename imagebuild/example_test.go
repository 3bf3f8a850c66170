package imagebuild_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hpcship/hpcship/imagebuild"
)

// Building from typed steps on scratch: the same inputs give the same digest on any
// machine, whatever the files' times and owners.
func ExampleBuild() {
	cache, err := os.MkdirTemp("", "imagebuild-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(cache)

	img, err := imagebuild.Build(context.Background(), imagebuild.Scratch(), []imagebuild.Step{
		imagebuild.Workdir{Path: "/app"},
		imagebuild.Copy{Sources: []string{"hello"}, Dest: ".", Chmod: "755"},
		imagebuild.Env{Vars: []imagebuild.KeyValue{{Key: "GREETING", Value: "hello"}}},
		imagebuild.Entrypoint{Args: []string{"/app/run.sh"}},
	},
		imagebuild.WithContextDir("testdata"),
		imagebuild.WithCacheDir(cache),
		imagebuild.WithSourceDateEpoch(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)),
		imagebuild.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}),
	)
	if err != nil {
		panic(err)
	}
	digest, err := img.Digest()
	if err != nil {
		panic(err)
	}
	fmt.Println(digest)
	// Output:
	// sha256:27c848995e89024e297feafb6979ce0932af1e123aa486df9c46deb239a059b3
}

// Parsing a Dockerfile shows the steps a build would run; the variables of FROM's
// image are known only when it is pulled, so here the environment is given.
func ExampleParseDockerfile() {
	df := `FROM centos:7
WORKDIR /app
ADD intel.tgz /opt/
ENV LD_LIBRARY_PATH=/opt/intel/lib:$LD_LIBRARY_PATH
ENTRYPOINT ["/opt/intel/bin/run"]
`
	d, err := imagebuild.ParseDockerfile(strings.NewReader(df))
	if err != nil {
		panic(err)
	}
	steps, err := d.Steps([]string{"LD_LIBRARY_PATH=/usr/lib64"})
	if err != nil {
		panic(err)
	}
	fmt.Println("FROM", d.Base)
	for _, s := range steps {
		fmt.Println(s)
	}
	// Output:
	// FROM centos:7
	// WORKDIR /app
	// ADD intel.tgz /opt/
	// ENV LD_LIBRARY_PATH=/opt/intel/lib:/usr/lib64
	// ENTRYPOINT ["/opt/intel/bin/run"]
}
