package main

import (
	"bytes"
	"encoding/xml"
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
	"github.com/hpcship/hpcship/scheduler/sge/internal/qstatgen"
)

const realListing = "../../testdata/qstat.xml"

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func readDoc(t *testing.T, file string) qstatgen.Doc {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	var doc qstatgen.Doc
	require.NoError(t, xml.Unmarshal(data, &doc))
	return doc
}

// lookups runs both sides on a listing, with one lookup and with several.
func lookups(t *testing.T, file string) {
	t.Helper()
	for _, repeat := range []string{"1", "3"} {
		require.NoError(t, run(t.Context(), []string{"ours", "-repeat", repeat, file}))
		require.NoError(t, run(t.Context(), []string{"peer", "-repeat", repeat, file}))
	}
}

// TestGen checks that gen writes the generator's listing and that both sides find its last job, n.
func TestGen(t *testing.T) {
	for _, n := range []int{1, 4, 10} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "listing.xml")
			require.NoError(t, run(t.Context(), []string{"gen", strconv.Itoa(n), out}))
			got, err := os.ReadFile(out)
			require.NoError(t, err)
			assert.Equal(t, string(qstatgen.Listing(n)), string(got))
			assert.Equal(t, int64(n), lastJob(got))
			lookups(t, out)
		})
	}
}

// TestGenFromReal checks the listings made from the real one (four running entries: a job and three tasks
// of an array; a pending job in error and a held one): whole copies of its jobs, in its two sections, enough
// for n, each copy numbered 1000 on from the one before, every other field as in the real listing.
func TestGenFromReal(t *testing.T) {
	real := readDoc(t, realListing)
	require.Len(t, real.Running, 4)
	require.Len(t, real.Pending, 2)
	realData, err := os.ReadFile(realListing)
	require.NoError(t, err)
	header := string(realData[:bytes.Index(realData, []byte("<queue_info>"))])
	for _, tc := range []struct {
		n, copies int
	}{{1, 1}, {5, 1}, {6, 1}, {7, 2}, {12, 2}, {13, 3}} {
		t.Run(strconv.Itoa(tc.n), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "listing.xml")
			require.NoError(t, run(t.Context(), []string{"gen", "-from", realListing, strconv.Itoa(tc.n), out}))
			data, err := os.ReadFile(out)
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(string(data), header+"<queue_info>\n"), "keeps the real listing's root")
			assert.True(t, strings.HasSuffix(string(data), "\n  </job_info>\n</job_info>\n"))

			var want qstatgen.Doc
			renumber := func(jobs []qstatgen.Job, c int) []qstatgen.Job {
				var out []qstatgen.Job
				for _, j := range jobs {
					j.Number += int64(c * 1000)
					out = append(out, j)
				}
				return out
			}
			for c := range tc.copies {
				want.Running = append(want.Running, renumber(real.Running, c)...)
				want.Pending = append(want.Pending, renumber(real.Pending, c)...)
			}
			assert.Equal(t, want, readDoc(t, out))
			assert.Equal(t, strings.Count(string(data), "<job_list"), 6*tc.copies)

			// The last job not in error is the last copy of the held job.
			assert.Equal(t, int64((tc.copies-1)*1000+3), lastJob(data))
			lookups(t, out)
		})
	}
}

// TestGenFromRealCopy checks that one copy of the real listing is the real listing, byte for byte.
func TestGenFromRealCopy(t *testing.T) {
	out := filepath.Join(t.TempDir(), "listing.xml")
	require.NoError(t, run(t.Context(), []string{"gen", "-from", realListing, "6", out}))
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	want, err := os.ReadFile(realListing)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))
}

// TestGenFromRealNumbers checks that copies of a listing with large job numbers, as a real cluster's, give
// every job a number of its own: copies are numbered a power of ten apart, above every number listed.
func TestGenFromRealNumbers(t *testing.T) {
	job := func(n int) string {
		return "<job_list state=\"running\"><JB_job_number>" + strconv.Itoa(n) + "</JB_job_number><state>r</state></job_list>"
	}
	for _, tc := range []struct {
		name string
		jobs []int
		want []int64
	}{
		{"small", []int{1, 999}, []int64{1, 999, 1001, 1999}},
		{"thousand", []int{1, 1000}, []int64{1, 1000, 10001, 11000}},
		// Numbered 1000 apart, the second copy of job 1 would be job 1001.
		{"large", []int{1, 1001, 54321}, []int64{1, 1001, 54321, 100001, 101001, 154321}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var jobs strings.Builder
			for _, n := range tc.jobs {
				jobs.WriteString(job(n))
			}
			from := writeFile(t, "listing.xml", "<job_info x=\"\"><queue_info>"+jobs.String()+"</queue_info><job_info></job_info></job_info>")
			out := filepath.Join(t.TempDir(), "out")
			require.NoError(t, run(t.Context(), []string{"gen", "-from", from, strconv.Itoa(len(tc.jobs) + 1), out}))
			var got []int64
			for _, j := range readDoc(t, out).Running {
				got = append(got, j.Number)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestArguments(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"none", nil, "usage: qstatbench"},
		{"unknown flag", []string{"gen", "-x", "1", out}, "flag provided but not defined: -x"},
		{"bad repeat", []string{"peer", "-repeat", "many", out}, "invalid value"},
		{"unknown command", []string{"list", out}, `bad arguments "list ` + out + `"`},
		{"gen without output", []string{"gen", "5"}, "bad arguments"},
		{"gen with more", []string{"gen", "5", out, out}, "bad arguments"},
		{"count not a number", []string{"gen", "five", out}, `bad job count "five"`},
		{"count with a suffix", []string{"gen", "5k", out}, `bad job count "5k"`},
		{"count zero", []string{"gen", "0", out}, `bad job count "0"`},
		{"count negative", []string{"gen", "--", "-1", out}, `bad job count "-1"`},
		{"count zero from a listing", []string{"gen", "-from", realListing, "0", out}, `bad job count "0"`},
		{"ours without file", []string{"ours"}, "bad arguments"},
		{"peer with two files", []string{"peer", out, out}, "bad arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorContains(t, run(t.Context(), tc.args), tc.want)
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Empty(t, entries, "nothing written for bad arguments")
		})
	}
}

func TestGenErrors(t *testing.T) {
	t.Run("output in a missing directory", func(t *testing.T) {
		err := run(t.Context(), []string{"gen", "5", filepath.Join(t.TempDir(), "none", "out")})
		require.ErrorIs(t, err, fs.ErrNotExist)
	})
	t.Run("output from a listing in a missing directory", func(t *testing.T) {
		err := run(t.Context(), []string{"gen", "-from", realListing, "5", filepath.Join(t.TempDir(), "none", "out")})
		require.ErrorIs(t, err, fs.ErrNotExist)
	})
	t.Run("missing listing", func(t *testing.T) {
		dir := t.TempDir()
		err := run(t.Context(), []string{"gen", "-from", filepath.Join(dir, "none"), "5", filepath.Join(dir, "out")})
		require.ErrorIs(t, err, fs.ErrNotExist)
		assert.NoFileExists(t, filepath.Join(dir, "out"))
	})
	const job = "<job_list state=\"running\"><JB_job_number>1</JB_job_number></job_list>"
	for _, tc := range []struct {
		name, listing, want string
	}{
		{"empty", "", "not a qstat -xml listing"},
		{"no root", "<queue_info>" + job + "</queue_info><job_info></job_info>", "not a qstat -xml listing"},
		{"queue_info before the root", "<queue_info>" + job + "</queue_info><job_info x=\"\"><job_info></job_info></job_info>", "not a qstat -xml listing"},
		{"no queue_info", "<job_info><job_info>" + job + "</job_info></job_info>", "not a qstat -xml listing"},
		{"queue_info not closed", "<job_info><queue_info>" + job + "<job_info></job_info></job_info>", "not a qstat -xml listing"},
		{"queue_info closed first", "<job_info></queue_info><queue_info>" + job + "<job_info></job_info></job_info>", "not a qstat -xml listing"},
		{"no job_info", "<job_x><queue_info>" + job + "</queue_info></job_x>", "not a qstat -xml listing"},
		{"job_info before queue_info", "<job_info>x</job_info><queue_info>" + job + "</queue_info>", "not a qstat -xml listing"},
		{"job_info not closed", "<job_x><queue_info>" + job + "</queue_info><job_info></job_x>", "not a qstat -xml listing"},
		{"job_info closed first", "</job_info><queue_info>" + job + "</queue_info><job_info>", "not a qstat -xml listing"},
		{"no jobs", "<job_info x=\"\"><queue_info></queue_info><job_info></job_info></job_info>", "lists no jobs"},
		{"job_list not closed", "<job_info x=\"\"><queue_info><job_list></queue_info><job_info></job_info></job_info>", "lists no jobs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := writeFile(t, "listing.xml", tc.listing)
			out := filepath.Join(t.TempDir(), "out")
			err := run(t.Context(), []string{"gen", "-from", from, "5", out})
			require.ErrorContains(t, err, tc.want)
			assert.Contains(t, err.Error(), from)
			assert.NoFileExists(t, out)
		})
	}
	// The smallest listing that is one: both sections, one job in either.
	for _, listing := range []string{
		"<job_info x=\"\"><queue_info>" + job + "</queue_info><job_info></job_info></job_info>",
		"<job_info x=\"\"><queue_info></queue_info><job_info>" + job + "</job_info></job_info>",
	} {
		out := filepath.Join(t.TempDir(), "out")
		require.NoError(t, run(t.Context(), []string{"gen", "-from", writeFile(t, "listing.xml", listing), "2", out}))
		doc := readDoc(t, out)
		var numbers []int64
		for _, j := range append(doc.Running, doc.Pending...) {
			numbers = append(numbers, j.Number)
		}
		assert.Equal(t, []int64{1, 1001}, numbers)
	}
}

func TestLastJob(t *testing.T) {
	entry := func(n int, state string) string {
		return "<job_list state=\"pending\"><JB_job_number>" + strconv.Itoa(n) + "</JB_job_number><state>" + state +
			"</state></job_list>\n"
	}
	for _, tc := range []struct {
		name    string
		listing string
		want    int64
	}{
		{"none", "<job_info></job_info>", 0},
		{"one", entry(7, "qw"), 7},
		{"last", entry(7, "r") + entry(8, "hqw"), 8},
		{"last in error", entry(7, "r") + entry(8, "Eqw"), 7},
		{"all in error", entry(7, "Eqw") + entry(8, "dEr"), 0},
		{"no state", entry(7, "r") + "<job_list><JB_job_number>8</JB_job_number></job_list>", 7},
		{"no number", entry(7, "r") + "<job_list><state>r</state></job_list>", 7},
		{"empty state", entry(7, "r") + entry(8, ""), 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, lastJob([]byte(tc.listing)))
		})
	}
}

// TestLookupErrors runs each side on listings it cannot look the last job up in.
func TestLookupErrors(t *testing.T) {
	running := func(n, state string) string {
		return "    <job_list state=\"running\">\n      <JB_job_number>" + n + "</JB_job_number>\n      <JB_name>j</JB_name>\n" +
			"      <JB_owner>u</JB_owner>\n      <state>" + state + "</state>\n" +
			"      <JAT_start_time>2026-11-28T16:46:14</JAT_start_time>\n      <queue_name>all.q@vm</queue_name>\n" +
			"      <slots>1</slots>\n    </job_list>\n"
	}
	listing := func(jobs string) string {
		return "<?xml version='1.0'?>\n<job_info>\n  <queue_info>\n" + jobs + "  </queue_info>\n  <job_info>\n  </job_info>\n</job_info>\n"
	}
	for _, tc := range []struct {
		name    string
		command string
		listing string
		want    string
	}{
		{"ours missing file", "ours", "", "no such file"},
		{"peer missing file", "peer", "", "no such file"},
		{"ours garbled", "ours", listing(running("7", "r"))[:200], "job 7: "},
		{"peer garbled", "peer", listing(running("7", "r"))[:200], "XML syntax error"},
		{"ours unknown state", "ours", listing(running("7", "zz")), "job 7: state unknown"},
		{"peer no jobs", "peer", listing(""), "job 0 not listed"},
		{"peer job in another element", "peer", "<job_info><other>" + running("7", "r") + "</other></job_info>", "job 7 not listed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "none")
			if tc.listing != "" {
				file = writeFile(t, "listing.xml", tc.listing)
			}
			require.ErrorContains(t, run(t.Context(), []string{tc.command, file}), tc.want)
			// The job to look up is found once, before the lookups, which fail.
			err := run(t.Context(), []string{tc.command, "-repeat", "0", file})
			if tc.listing == "" {
				require.ErrorIs(t, err, fs.ErrNotExist)
			} else {
				require.NoError(t, err)
			}
		})
	}
	// A job listed without a number is not one.
	require.ErrorContains(t, ours(t.Context(), writeFile(t, "listing.xml", listing(running("7", "r"))), -1),
		"not a Grid Engine job id")
}

func TestFileRunner(t *testing.T) {
	file := writeFile(t, "listing", "content\n")
	out, err := fileRunner(file).Run(t.Context(), scheduler.Command{Name: "qstat", Args: []string{"-xml"}})
	require.NoError(t, err)
	assert.Equal(t, "content\n", string(out.Stdout))

	_, err = fileRunner(file).Run(t.Context(), scheduler.Command{Name: "qacct"})
	require.ErrorContains(t, err, "unexpected command qacct")

	_, err = fileRunner(filepath.Join(t.TempDir(), "none")).Run(t.Context(), scheduler.Command{Name: "qstat"})
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
	out := filepath.Join(dir, "listing.xml")
	for _, tc := range []struct {
		name   string
		args   string
		status int
		stderr string
	}{
		{"gen", "gen -from " + realListing + " 20 " + out, 0, ""},
		{"bad arguments", "ours", 1, "qstatbench: bad arguments \"ours\"\n"},
		{"missing file", "peer " + filepath.Join(dir, "none"), 1, "qstatbench: open " + filepath.Join(dir, "none") +
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
