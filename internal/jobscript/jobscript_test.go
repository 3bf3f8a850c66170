package jobscript

import (
	"bufio"
	"compress/gzip"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/envvar"
	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/hpcship/hpcship/scheduler"
)

// runBash runs script with bash in dir, with PATH set to path, and returns its combined output and status.
func runBash(t *testing.T, script, dir string, env ...string) (string, int) {
	t.Helper()
	bash := testenv.Require(t, "bash")[0]
	cmd := exec.CommandContext(t.Context(), bash)
	cmd.Stdin = strings.NewReader(script)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	}
	require.NoError(t, err)
	return string(out), 0
}

// TestCommandRunsProgramsNamedLikeReservedWords runs, with real bash, a command whose program has the name of
// each reserved word, from a directory on PATH: the program must run with its arguments, not the keyword.
func TestCommandRunsProgramsNamedLikeReservedWords(t *testing.T) {
	bin := t.TempDir()
	words := []string{"!", "case", "coproc", "do", "done", "elif", "else", "esac", "fi", "for", "function", "if", "in",
		"select", "then", "until", "while", "{", "}", "time", "[[", "]]"}
	for _, w := range words {
		require.NoError(t, os.WriteFile(filepath.Join(bin, w), []byte("#!/bin/sh\necho \"ran $0 $*\"\n"), 0o755))
	}
	for _, w := range words {
		t.Run(w, func(t *testing.T) {
			out, code := runBash(t, Command([]string{w, "-v", "x"})+"\n", t.TempDir(), "PATH="+bin+":/usr/bin:/bin")
			require.Equal(t, 0, code, out)
			assert.Equal(t, "ran "+filepath.Join(bin, w)+" -v x\n", out)
		})
	}
}

// TestCommandTimeIsTheProgram pins the case that matters: Command{"time", "-v", "x"} runs the program time
// found on PATH (GNU time's -v), where bash's keyword would try to run "-v" and exit 127.
func TestCommandTimeIsTheProgram(t *testing.T) {
	bin := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bin, "time"), []byte("#!/bin/sh\necho \"time program: $*\"\nexec \"$2\"\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(bin, "x"), []byte("#!/bin/sh\necho payload\n"), 0o755))
	out, code := runBash(t, Command([]string{"time", "-v", "x"})+"\n", t.TempDir(), "PATH="+bin+":/usr/bin:/bin")
	require.Equal(t, 0, code, out)
	assert.Equal(t, "time program: -v x\npayload\n", out)
}

func TestCommandQuoting(t *testing.T) {
	assert.Equal(t, `mpirun -machinefile "$HPCSHIP_MACHINEFILE" -np 2 'a b' time`,
		Command([]string{"mpirun", "-machinefile", scheduler.MachinefileArg, "-np", "2", "a b", "time"}))
	assert.Equal(t, `'time' -v x`, Command([]string{"time", "-v", "x"}))
	assert.Equal(t, `'A=b' c`, Command([]string{"A=b", "c"}), "an assignment word must not become an assignment")
}

// bashSetVariables reads the names of bash's manual lists under "The following variables are set by the
// shell" from the installed man page.
func bashSetVariables(t *testing.T) []string {
	t.Helper()
	const page = "/usr/share/man/man1/bash.1.gz"
	f, err := os.Open(page)
	if err != nil {
		testenv.Skipf(t, "bash's manual: %v; the bash package installs it", err)
		return nil
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	require.NoError(t, err)
	sc := bufio.NewScanner(z)
	var names []string
	in, afterTP := false, false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, "following variables are set by the shell"):
			in = true
		case strings.Contains(line, "following variables are used by the shell"):
			return names
		case in && line == ".TP":
			afterTP = true
			continue
		case in && afterTP && strings.HasPrefix(line, ".B "):
			// Items such as "BASH_VERSINFO[1]" describe an array's members, not a variable.
			if name := strings.TrimSpace(strings.TrimPrefix(line, ".B ")); envvar.IsName(name) {
				names = append(names, name)
			}
		}
		afterTP = false
	}
	require.NoError(t, sc.Err())
	t.Fatal("no list of variables set by the shell in " + page)
	return nil
}

func TestCheckEnvRefusesWhatBashSets(t *testing.T) {
	names := bashSetVariables(t)
	require.Contains(t, names, "PIPESTATUS")
	require.Greater(t, len(names), 40)
	for _, name := range names {
		err := CheckEnv([]string{"A=1", name + "=x"})
		var je *scheduler.JobError
		require.ErrorAs(t, err, &je, name)
		assert.Equal(t, "Env[1]", je.Field)
	}
	for _, name := range []string{"PATH", "LD_LIBRARY_PATH", "TMPDIR", "I_MPI_FABRICS", "LANG", "HOME", "HPCSHIP_OTHER"} {
		assert.NoError(t, CheckEnv([]string{name + "=x"}), name)
	}
	for _, name := range []string{"HPCSHIP_MACHINEFILE", "hpcship_status"} {
		assert.Error(t, CheckEnv([]string{name + "=x"}), name)
	}
}

// TestPipestatusIsLostOnExport shows why PIPESTATUS is refused: once a command ran, bash holds it as an array,
// and an exported array never reaches a child.
func TestPipestatusIsLostOnExport(t *testing.T) {
	j := scheduler.Job{Env: []string{"PIPESTATUS=0", "OTHER=1"}, Command: []string{"env"}}
	out, code := runBash(t, "true\n"+Setup(&j)+Payload(&j, Exit{}), t.TempDir(), "PATH=/usr/bin:/bin")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "OTHER=1\n")
	assert.NotContains(t, out, "PIPESTATUS")
}

func TestSetupKeepsOrder(t *testing.T) {
	j := scheduler.Job{Env: []string{"B=1", "A=2 3", "B=later"}, Command: []string{"sh", "-c", `echo "$A|$B"`}}
	assert.Equal(t, "\nexport B=1\nexport A='2 3'\nexport B=later\n", Setup(&j))
	out, code := runBash(t, Setup(&j)+Payload(&j, Exit{}), t.TempDir(), "PATH=/usr/bin:/bin")
	require.Equal(t, 0, code, out)
	assert.Equal(t, "2 3|later\n", out)
}

// TestPayloadExitStatus runs payloads with real bash: the job exits as its payload does, except for the
// reserved codes, which become Instead with a message saying why.
func TestPayloadExitStatus(t *testing.T) {
	reserved := Exit{Reserved: []int{99, 100}, Instead: 1, Why: "as 99 and 100 would hold the job", Comment: "99 and 100 mean something else here"}
	tests := []struct {
		name     string
		job      scheduler.Job
		exit     Exit
		wantCode int
		wantOut  string
	}{
		{name: "command succeeds", job: scheduler.Job{Command: []string{"sh", "-c", "echo ok"}}, wantOut: "ok\n"},
		{name: "command fails", job: scheduler.Job{Command: []string{"sh", "-c", "exit 3"}}, wantCode: 3},
		{name: "script without a final newline", job: scheduler.Job{Script: "echo one\nexit 4"}, wantCode: 4, wantOut: "one\n"},
		{name: "script with a final newline", job: scheduler.Job{Script: "echo one\n"}, wantOut: "one\n"},
		{name: "script ending in a comment", job: scheduler.Job{Script: "false # a comment"}, wantCode: 1},
		{name: "first reserved code", job: scheduler.Job{Command: []string{"sh", "-c", "exit 99"}}, exit: reserved, wantCode: 1,
			wantOut: "hpcship: the payload exited 99; the job exits 1 instead, as 99 and 100 would hold the job\n"},
		{name: "second reserved code", job: scheduler.Job{Command: []string{"sh", "-c", "exit 100"}}, exit: reserved, wantCode: 1,
			wantOut: "hpcship: the payload exited 100; the job exits 1 instead, as 99 and 100 would hold the job\n"},
		{name: "a code next to the reserved ones", job: scheduler.Job{Command: []string{"sh", "-c", "exit 98"}}, exit: reserved, wantCode: 98},
		{name: "a code after the reserved ones", job: scheduler.Job{Command: []string{"sh", "-c", "exit 101"}}, exit: reserved, wantCode: 101},
		{name: "success with reserved codes", job: scheduler.Job{Command: []string{"true"}}, exit: reserved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Payload(&tt.job, tt.exit)
			out, code := runBash(t, p, t.TempDir(), "PATH=/usr/bin:/bin")
			assert.Equal(t, tt.wantCode, code, p)
			assert.Equal(t, tt.wantOut, out)
			if len(tt.exit.Reserved) > 0 {
				assert.Contains(t, p, "# "+tt.exit.Comment+"\n")
			} else {
				assert.NotContains(t, p, "instead")
			}
		})
	}
}

func TestSetupSourcesThenExports(t *testing.T) {
	assert.Empty(t, Setup(&scheduler.Job{Command: []string{"true"}}), "nothing to set up")
	dir := t.TempDir()
	settings := filepath.Join(dir, "my settings.sh")
	require.NoError(t, os.WriteFile(settings, []byte("A=from-source\nB=from-source\n"), 0o644))
	j := scheduler.Job{Source: []string{settings}, Env: []string{"B=from-env"}, Command: []string{"sh", "-c", `echo "${A:-unset}|$B"`}}
	assert.Equal(t, "\nsource '"+settings+"'\nexport B=from-env\n", Setup(&j))
	out, code := runBash(t, Setup(&j)+Payload(&j, Exit{}), dir, "PATH=/usr/bin:/bin")
	require.Equal(t, 0, code, out)
	assert.Equal(t, "unset|from-env\n", out, "a sourced variable is not exported; Env is, and comes after")
	assert.Equal(t, "\nsource '"+settings+"'\n", Setup(&scheduler.Job{Source: []string{settings}}))
}

// TestTmpDir runs the TMPDIR preamble with bash: a usable TMPDIR is kept, and where there is none the job gets
// a private one that is removed when it ends.
func TestTmpDir(t *testing.T) {
	script := TmpDir() + `echo "$TMPDIR"; test -d "$TMPDIR" && test -w "$TMPDIR" && env | grep -c '^TMPDIR='` + "\n"
	given := t.TempDir()
	notDir := filepath.Join(given, "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o644))
	for _, tt := range []struct {
		name  string
		env   []string
		keeps string
	}{
		{name: "given and usable", env: []string{"TMPDIR=" + given}, keeps: given},
		{name: "unset"},
		{name: "empty", env: []string{"TMPDIR="}},
		{name: "missing", env: []string{"TMPDIR=" + filepath.Join(given, "missing")}},
		{name: "not a directory", env: []string{"TMPDIR=" + notDir}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, code := runBash(t, script, t.TempDir(), append([]string{"PATH=/usr/bin:/bin"}, tt.env...)...)
			require.Equal(t, 0, code, out)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			require.Len(t, lines, 2, out)
			assert.Equal(t, "1", lines[1], "TMPDIR is exported")
			if tt.keeps != "" {
				assert.Equal(t, tt.keeps, lines[0])
				assert.DirExists(t, tt.keeps)
				return
			}
			assert.True(t, strings.HasPrefix(lines[0], "/tmp/hpcship."), lines[0])
			assert.NoDirExists(t, lines[0], "the private TMPDIR is removed when the job ends")
		})
	}
}

func TestCheckEnvReasons(t *testing.T) {
	for kv, want := range map[string]string{
		"HPCSHIP_MACHINEFILE=x": "HPCSHIP_MACHINEFILE is reserved for the jobscript",
		"hpcship_status=x":      "hpcship_status is reserved for the jobscript",
		"PIPESTATUS=0":          "PIPESTATUS is set by bash itself; an export is lost or refused",
	} {
		var je *scheduler.JobError
		require.ErrorAs(t, CheckEnv([]string{kv}), &je, kv)
		assert.Equal(t, "Env[0]", je.Field)
		assert.Equal(t, want, je.Reason)
	}
}
