package acrtest_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/acrtest"
	"github.com/hpcship/hpcship/internal/testenv"
)

// TestNewOutsideATest starts registries the way a program does, pushes and pulls with the admin user,
// and checks that Close stops the proxy, the registry and removes their files.
func TestNewOutsideATest(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []acrtest.Option
	}{
		{"in memory", []acrtest.Option{acrtest.WithInMemoryRegistry()}},
		{"docker-registry", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts == nil {
				testenv.Require(t, "docker-registry")
			}
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp) // where New keeps the registry's files
			r, err := acrtest.New(t.Context(), tc.opts...)
			require.NoError(t, err)
			t.Cleanup(r.Close) // in case the test fails before its own Close

			user, password := r.AdminCredentials()
			ref, err := name.ParseReference(r.LoginServer() + "/demo/app:v1")
			require.NoError(t, err)
			img, err := random.Image(1024, 2)
			require.NoError(t, err)
			auth := remote.WithAuth(&authn.Basic{Username: user, Password: password})
			require.NoError(t, remote.Write(ref, img, auth, remote.WithContext(t.Context())))
			got, err := remote.Image(ref, auth, remote.WithContext(t.Context()))
			require.NoError(t, err)
			want, err := img.Digest()
			require.NoError(t, err)
			gotDigest, err := got.Digest()
			require.NoError(t, err)
			assert.Equal(t, want, gotDigest)

			// A new directory of the registry's exists while it runs, and none after Close.
			created, err := filepath.Glob(filepath.Join(tmp, "acrtest-*"))
			require.NoError(t, err)
			require.Len(t, created, 1)
			backend := r.Backend()

			r.Close()
			r.Close() // a second Close does nothing
			_, err = os.Stat(created[0])
			assert.ErrorIs(t, err, os.ErrNotExist, "the registry's directory is removed")
			for _, addr := range []string{r.LoginServer(), backend} {
				if addr == "" {
					continue
				}
				conn, err := net.DialTimeout("tcp", addr, time.Second)
				if err == nil {
					conn.Close()
				}
				assert.Error(t, err, "nothing listens on %s after Close", addr)
			}
		})
	}
}

// TestNewLogsHelperMisuse checks that New reports misuse of the test helpers through the logger, having
// no test to fail.
func TestNewLogsHelperMisuse(t *testing.T) {
	var buf bytes.Buffer
	r, err := acrtest.New(t.Context(), acrtest.WithInMemoryRegistry(),
		acrtest.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
	require.NoError(t, err)
	defer r.Close()
	assert.Empty(t, r.AccessToken("not a scope"))
	r.SetFaultRate(2)
	assert.Contains(t, buf.String(), "level=ERROR")
	assert.Contains(t, buf.String(), "fault rate must be within [0, 1], got 2")
}

func TestNewRejectsBadOptions(t *testing.T) {
	_, err := acrtest.New(t.Context(), acrtest.WithAdmin("", ""))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "admin user and password must not be empty")
}

// TestNewCancelled: a start cut short by its context fails with the context's error, and removes the
// registry's files.
func TestNewCancelled(t *testing.T) {
	testenv.Require(t, "docker-registry")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r, err := acrtest.New(ctx)
	require.ErrorIs(t, err, context.Canceled)
	assert.Nil(t, r)
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, left, "the registry's files are removed")
}

// orphanEnv tells a re-executed test binary to be the process TestRegistryDiesWithItsTest kills.
const orphanEnv = "HPCSHIP_ACRTEST_KILLED_PARENT"

// TestRegistryDiesWithItsTest kills a test process that runs a registry, as a timeout or ^C does, and
// checks that its docker-registry goes too rather than staying behind on the machine.
func TestRegistryDiesWithItsTest(t *testing.T) {
	if os.Getenv(orphanEnv) == "1" {
		r, err := acrtest.New(t.Context())
		require.NoError(t, err)
		fmt.Println(r.Backend())
		select {} // until killed
	}
	testenv.Require(t, "docker-registry")
	tmp := t.TempDir()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestRegistryDiesWithItsTest$", "-test.count=1")
	cmd.Env = append(os.Environ(), orphanEnv+"=1", "TMPDIR="+tmp)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	backend, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("the child printed no address: %v", err)
	}
	backend = strings.TrimSpace(backend)
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	// Should the registry outlive the test process, stop it here, found by the directory it runs in.
	t.Cleanup(func() { killRunningIn(t, tmp) })

	assert.Eventually(t, func() bool {
		conn, err := net.DialTimeout("tcp", backend, time.Second)
		if err == nil {
			conn.Close()
		}
		return err != nil
	}, 20*time.Second, 20*time.Millisecond, "docker-registry still listens on %s after its test process was killed", backend)
}

// killRunningIn kills the processes whose command line names a path under dir.
func killRunningIn(t *testing.T, dir string) {
	cmdlines, err := filepath.Glob("/proc/[0-9]*/cmdline")
	require.NoError(t, err)
	for _, path := range cmdlines {
		b, err := os.ReadFile(path)
		if err != nil || !bytes.Contains(b, []byte(dir+"/")) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		if err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
