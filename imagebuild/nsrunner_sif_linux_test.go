package imagebuild_test

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sylabs/sif/v2/pkg/sif"

	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/hpcship/hpcship/singularity"
)

// TestRunImageUnderCharliecloud takes an image whose files RUN steps made
// through the SIF builder and runs it with Charliecloud's ch-run, the squashfs
// partition mounted with squashfuse.
func TestRunImageUnderCharliecloud(t *testing.T) {
	progs := testenv.Require(t, "squashfuse", "fusermount", "ch-run")
	img, err := buildWith(t.Context(), t, `FROM base
ENV GREETING=hello
RUN mkdir -p /opt/app && echo "$GREETING from RUN" > /opt/app/msg && chmod 640 /opt/app/msg && ln -s msg /opt/app/link && touch /opt/app/old
RUN rm /opt/app/old && echo again >> /opt/app/msg
`)
	require.NoError(t, err)
	sifPath := filepath.Join(t.TempDir(), "run.sif")
	require.NoError(t, singularity.Build(t.Context(), img, sifPath, singularity.WithSourceDateEpoch(time.Unix(1_700_000_000, 0))))

	f, err := sif.LoadContainerFromPath(sifPath, sif.OptLoadWithFlag(os.O_RDONLY))
	require.NoError(t, err)
	part, err := f.GetDescriptor(sif.WithPartitionType(sif.PartPrimSys))
	require.NoError(t, err)
	off := part.Offset()
	require.NoError(t, f.UnloadContainer())

	mnt := t.TempDir()
	out, err := exec.Command(progs[0], "-o", "offset="+strconv.FormatInt(off, 10), sifPath, mnt).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() {
		for range 50 {
			if exec.Command(progs[1], "-u", mnt).Run() == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("could not unmount %s", mnt)
	})

	cmd := exec.Command(progs[2], "--unset-env=*", mnt, "--", "/bin/sh", "-c",
		"cat /opt/app/link; stat -c '%a %N' /opt/app/msg /opt/app/link; test -e /opt/app/old || echo no old")
	u, err := user.Current()
	require.NoError(t, err)
	cmd.Env = []string{"USER=" + u.Username}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	got, err := cmd.Output()
	require.NoError(t, err, "ch-run: %s", stderr.String())
	assert.Equal(t, "hello from RUN\nagain\n640 /opt/app/msg\n777 '/opt/app/link' -> 'msg'\nno old\n", string(got))
}
