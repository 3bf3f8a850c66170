package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/hpcship/hpcship/scheduler"
	"github.com/hpcship/hpcship/scheduler/slurm/internal/squeuegen"
)

const realDoc = "../../testdata/squeue.json"

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

// gen runs `squeuebench gen` for n jobs of the real document and returns the two listings' paths.
func gen(t *testing.T, n int) (text, js string) {
	t.Helper()
	dir := t.TempDir()
	text, js = filepath.Join(dir, "jobs.txt"), filepath.Join(dir, "jobs.json")
	require.NoError(t, run(t.Context(), []string{"gen", "-from", realDoc, strconv.Itoa(n), text, js}))
	return text, js
}

// TestGen checks that gen writes the generator's two listings, whole, and that both sides of the benchmark
// look up the same job in them: the last one, an array task when n is a multiple of the document's four jobs.
func TestGen(t *testing.T) {
	real, err := os.ReadFile(realDoc)
	require.NoError(t, err)
	for _, tc := range []struct {
		n    int
		last string
	}{
		{1, "100000"},
		{3, "100002"},
		{4, "100002_1"},
		{5, "100004"},
		{12, "100010_1"},
	} {
		t.Run(strconv.Itoa(tc.n), func(t *testing.T) {
			text, js := gen(t, tc.n)
			wantText, wantJS, err := squeuegen.Listings(real, tc.n)
			require.NoError(t, err)
			gotText, err := os.ReadFile(text)
			require.NoError(t, err)
			gotJS, err := os.ReadFile(js)
			require.NoError(t, err)
			assert.Equal(t, string(wantText), string(gotText))
			assert.Equal(t, string(wantJS), string(gotJS))

			fromText, err := lastJob(text, false)
			require.NoError(t, err)
			assert.Equal(t, tc.last, fromText)
			fromJSON, err := lastJob(js, true)
			require.NoError(t, err)
			assert.Equal(t, tc.last, fromJSON)

			for _, repeat := range []string{"1", "2"} {
				require.NoError(t, run(t.Context(), []string{"ours", "-repeat", repeat, text}))
				require.NoError(t, run(t.Context(), []string{"peer", "-repeat", repeat, js}))
			}
			// Each side reads only its own format.
			require.Error(t, run(t.Context(), []string{"ours", js}))
			require.Error(t, run(t.Context(), []string{"peer", text}))
		})
	}
}

func TestArguments(t *testing.T) {
	dir := t.TempDir()
	text, js := filepath.Join(dir, "t"), filepath.Join(dir, "j")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"none", nil, "usage: squeuebench"},
		{"unknown flag", []string{"gen", "-x", "1", text, js}, "flag provided but not defined: -x"},
		{"bad repeat", []string{"ours", "-repeat", "many", text}, "invalid value"},
		{"unknown command", []string{"list", text}, `bad arguments "list ` + text + `"`},
		{"gen without -from", []string{"gen", "5", text, js}, "bad arguments"},
		{"gen without JSON", []string{"gen", "-from", realDoc, "5", text}, "bad arguments"},
		{"gen with more", []string{"gen", "-from", realDoc, "5", text, js, js}, "bad arguments"},
		{"count not a number", []string{"gen", "-from", realDoc, "five", text, js}, `bad job count "five"`},
		{"count with a suffix", []string{"gen", "-from", realDoc, "5k", text, js}, `bad job count "5k"`},
		{"count with a space", []string{"gen", "-from", realDoc, "5 6", text, js}, `bad job count "5 6"`},
		{"count zero", []string{"gen", "-from", realDoc, "0", text, js}, `bad job count "0"`},
		{"count negative", []string{"gen", "-from", realDoc, "--", "-1", text, js}, `bad job count "-1"`},
		{"ours without file", []string{"ours"}, "bad arguments"},
		{"peer with two files", []string{"peer", js, js}, "bad arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorContains(t, run(t.Context(), tc.args), tc.want)
			// Nothing is written for bad arguments.
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Empty(t, entries)
		})
	}
}

func TestGenErrors(t *testing.T) {
	t.Run("missing document", func(t *testing.T) {
		dir := t.TempDir()
		err := run(t.Context(), []string{"gen", "-from", filepath.Join(dir, "none.json"), "5",
			filepath.Join(dir, "t"), filepath.Join(dir, "j")})
		require.ErrorIs(t, err, fs.ErrNotExist)
	})
	t.Run("garbled document", func(t *testing.T) {
		from := writeFile(t, "squeue.json", `{"jobs": [{"job_id": 1`)
		dir := t.TempDir()
		err := run(t.Context(), []string{"gen", "-from", from, "5", filepath.Join(dir, "t"), filepath.Join(dir, "j")})
		require.ErrorContains(t, err, "unexpected end of JSON input")
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		assert.Empty(t, entries)
	})
	t.Run("text listing in a missing directory", func(t *testing.T) {
		dir := t.TempDir()
		err := run(t.Context(), []string{"gen", "-from", realDoc, "5", filepath.Join(dir, "none", "t"),
			filepath.Join(dir, "j")})
		require.ErrorIs(t, err, fs.ErrNotExist)
		assert.NoFileExists(t, filepath.Join(dir, "j"))
	})
	t.Run("JSON listing in a missing directory", func(t *testing.T) {
		dir := t.TempDir()
		err := run(t.Context(), []string{"gen", "-from", realDoc, "5", filepath.Join(dir, "t"),
			filepath.Join(dir, "none", "j")})
		require.ErrorIs(t, err, fs.ErrNotExist)
	})
}

// TestLookupErrors runs each side on listings it cannot look the last job up in.
func TestLookupErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none")
	for _, tc := range []struct {
		name    string
		command string
		listing string
		want    string
		lookup  bool // the error is a lookup's, not in finding the job to look up
	}{
		{"ours missing file", "ours", "", "no such file", false},
		{"ours empty listing", "ours", "\n", "not a squeue -o listing", false},
		{"ours not a listing", "ours", "100000 RUNNING\n", "not a squeue -o listing", false},
		{"ours bad job id", "ours", "x|x|N/A|RUNNING|None|hpc|vm|1|u|n\n", `"x" is not a Slurm job id`, true},
		{"ours bad line", "ours", "7|7|N/A|RUNNING\n", "want 10 fields", true},
		{"ours unknown state", "ours", "7|7|N/A|WEIRD|None|hpc|vm|1|u|n\n", "job 7: state unknown", true},
		// The last line is the end of a job name: job 7 is not listed, and Status asks sacct, which the
		// benchmark does not answer.
		{"ours job not listed", "ours", "5|5|N/A|RUNNING|None|hpc|vm|1|u|n\n7|n\n", "unexpected command sacct", true},
		{"peer missing file", "peer", "", "no such file", false},
		{"peer no job", "peer", "{\n  \"jobs\": []\n}\n", "lists no jobs", false},
		{"peer job id first", "peer", `"job_id": 7}`, "not a squeue --json listing", false},
		{"peer compact", "peer", `{"jobs": [{"job_id": 7}]}`, "not a squeue --json listing", false},
		{"peer unclosed job", "peer", "{\n  \"jobs\": [\n    {\n      \"job_id\": 7,\n", "not a squeue --json listing", false},
		{"peer garbled job", "peer", "{\n  \"jobs\": [\n    {\n      \"job_id\": x\n    }\n  ]\n}\n", "invalid character 'x'", false},
		{"peer garbled document", "peer", "{\n  \"jobs\": [\n    {\n      \"job_id\": 7\n    }\n  ]\n", "unexpected end of JSON input", true},
		{"peer job not listed", "peer", "{\n  \"other\": [\n    {\n      \"job_id\": 7\n    }\n  ]\n}\n", "job 7 not listed", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := missing
			if tc.listing != "" {
				file = writeFile(t, "listing", tc.listing)
			}
			require.ErrorContains(t, run(t.Context(), []string{tc.command, file}), tc.want)
			// The job to look up is found once, before the lookups.
			err := run(t.Context(), []string{tc.command, "-repeat", "0", file})
			if tc.lookup {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tc.want)
			}
		})
	}
}

// TestJSONLastJob reads the last job of a listing in squeue's own layout: an array task's id has its array.
func TestJSONLastJob(t *testing.T) {
	doc := map[string]any{"jobs": []any{
		map[string]any{"job_id": 5, "array_job_id": 0, "array_task_id": nil, "job_resources": map[string]any{"nodes": "a"}},
		map[string]any{"job_id": 9, "array_job_id": 7, "array_task_id": 2, "job_resources": map[string]any{"nodes": "b"}},
	}}
	js, err := json.MarshalIndent(doc, "", "  ")
	require.NoError(t, err)
	file := writeFile(t, "listing.json", string(js))
	got, err := lastJob(file, true)
	require.NoError(t, err)
	assert.Equal(t, "7_2", got)
	require.NoError(t, run(t.Context(), []string{"peer", file}))

	// squeue -o without a final newline.
	file = writeFile(t, "listing.txt", "5|5|N/A|RUNNING|None|hpc|vm|1|u|n\n7_2|7|2|PENDING|None|hpc||1|u|n")
	got, err = lastJob(file, false)
	require.NoError(t, err)
	assert.Equal(t, "7_2", got)
	require.NoError(t, run(t.Context(), []string{"ours", file}))
}

func TestFileRunner(t *testing.T) {
	file := writeFile(t, "listing", "content\n")
	out, err := fileRunner(file).Run(t.Context(), scheduler.Command{Name: "squeue", Args: []string{"-h"}})
	require.NoError(t, err)
	assert.Equal(t, "content\n", string(out.Stdout))

	_, err = fileRunner(file).Run(t.Context(), scheduler.Command{Name: "sacct"})
	require.ErrorContains(t, err, "unexpected command sacct")

	_, err = fileRunner(filepath.Join(t.TempDir(), "none")).Run(t.Context(), scheduler.Command{Name: "squeue"})
	require.ErrorIs(t, err, fs.ErrNotExist)
}

// TestMain runs the command itself when the test binary is started as it, for TestCommand.
func TestMain(m *testing.M) {
	testenv.RunAsCommand(main)
	os.Exit(m.Run())
}

// TestCommand runs the command as the benchmark script does: silent with status 0 when it works, one
// line on stderr and status 1 when it does not.
func TestCommand(t *testing.T) {
	dir := t.TempDir()
	text, js := filepath.Join(dir, "jobs.txt"), filepath.Join(dir, "jobs.json")
	for _, tc := range []struct {
		name   string
		args   string
		status int
		stderr string
	}{
		{"gen", "gen -from " + realDoc + " 6 " + text + " " + js, 0, ""},
		{"bad arguments", "ours", 1, "squeuebench: bad arguments \"ours\"\n"},
		{"missing file", "peer " + filepath.Join(dir, "none"), 1, "squeuebench: open " + filepath.Join(dir, "none") +
			": no such file or directory\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := testenv.Command(t, strings.Fields(tc.args)...)
			assert.Equal(t, tc.status, code)
			assert.Empty(t, stdout)
			assert.Equal(t, tc.stderr, stderr)
		})
	}
}
