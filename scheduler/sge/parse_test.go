package sge

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/scheduler"
	"github.com/hpcship/hpcship/scheduler/sge/internal/qstatgen"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

// testdata/qstat.xml is real SoGE 8.1.9 output: a running PE job, three running array tasks, an Eqw job
// (bad -wd) and a held one.
func TestParseQstat(t *testing.T) {
	got, err := parseQstat(readTestdata(t, "qstat.xml"))
	require.NoError(t, err)
	want := []qstatJob{
		{Number: 1, Name: "sleeper", Owner: "sgetest", State: "r", List: "running", Queue: "all.q@vm", Slots: 2},
		{Number: 2, Name: "arr", Owner: "sgetest", State: "r", List: "running", Queue: "all.q@vm", Slots: 1, Tasks: "1"},
		{Number: 2, Name: "arr", Owner: "sgetest", State: "r", List: "running", Queue: "all.q@vm", Slots: 1, Tasks: "2"},
		{Number: 2, Name: "arr", Owner: "sgetest", State: "r", List: "running", Queue: "all.q@vm", Slots: 1, Tasks: "3"},
		{Number: 4, Name: "badwd", Owner: "sgetest", State: "Eqw", List: "pending", Slots: 1},
		{Number: 3, Name: "held", Owner: "sgetest", State: "hqw", List: "pending", Slots: 1},
	}
	assert.Equal(t, want, got)
}

func TestParseQstatEdgeCases(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []qstatJob
		wantErr bool
	}{
		{name: "no jobs", in: "<?xml version='1.0'?>\n<job_info>\n  <queue_info>\n  </queue_info>\n  <job_info>\n  </job_info>\n</job_info>\n"},
		{name: "entities and -r extras", in: `<job_info><queue_info><job_list state="running"><JB_job_number>7</JB_job_number>` +
			`<JB_name>a&amp;b&#x41;&#66;</JB_name><requested_pe name="mpi">2</requested_pe><state>t</state>` +
			`<hard_request name="h_rt" resource_contribution="0.0">300</hard_request><empty/></job_list></queue_info></job_info>`,
			want: []qstatJob{{Number: 7, Name: "a&bAB", State: "t", List: "running"}}},
		{name: "-f queue list", in: `<job_info><queue_info><Queue-List><name>all.q@vm</name><job_list state="running">` +
			`<JB_job_number>9</JB_job_number><state>r</state></job_list></Queue-List></queue_info></job_info>`,
			want: []qstatJob{{Number: 9, State: "r", List: "running"}}},
		{name: "not XML", in: "error: commlib error: got select error (Connection refused)\n", wantErr: true},
		{name: "cut off", in: `<job_info><queue_info><job_list state="running"><JB_job_number>7</JB_job`, wantErr: true},
		{name: "bad number", in: `<job_info><job_list state="pending"><JB_job_number>x</JB_job_number></job_list></job_info>`, wantErr: true},
		{name: "no number", in: `<job_info><job_list state="pending"><state>qw</state></job_list></job_info>`, wantErr: true},
		{name: "bad entity", in: `<job_info><job_list><JB_job_number>1</JB_job_number><JB_name>&nope;</JB_name></job_list></job_info>`, wantErr: true},
		{name: "longer element name, empty job_list, tab and newline before attributes",
			in: `<job_info><job_listing>x</job_listing><job_list/><job_list state="x"/>` +
				"<job_list\tstate='pending'><JB_job_number>1</JB_job_number></job_list>" +
				"<job_list\nstate=\"running\"><JB_job_number>2</JB_job_number></job_list></job_info>",
			want: []qstatJob{{Number: 1, List: "pending"}, {Number: 2, List: "running"}}},
		{name: "attribute names that only end in state", in: `<job_info><job_list xstate="a" state="b"><JB_job_number>1</JB_job_number></job_list></job_info>`,
			want: []qstatJob{{Number: 1, List: "b"}}},
		{name: "unquoted and unterminated attributes", in: `<job_info><job_list state=b><JB_job_number>1</JB_job_number></job_list>` +
			`<job_list state="b><JB_job_number>2</JB_job_number></job_list></job_info>`,
			want: []qstatJob{{Number: 1}, {Number: 2}}},
		{name: "comments, stray end tags and empty elements", in: `<job_info><job_list><!-- x --></state><queue_name/>` +
			`<?pi?><JB_owner>u</JB_owner><JB_job_number>3</JB_job_number><slots>0</slots></job_list></job_info>`,
			want: []qstatJob{{Number: 3, Owner: "u"}}},
		{name: "nested content skipped", in: `<job_info><job_list><JB_job_number>4</JB_job_number><predecessor_jobs>` +
			`<ulong_sublist><PN>1</PN></ulong_sublist></predecessor_jobs><JB_name n="1">x</JB_name></job_list></job_info>`,
			want: []qstatJob{{Number: 4, Name: "x"}}},
		{name: "job number zero", in: `<job_info><job_list><JB_job_number>0</JB_job_number></job_list></job_info>`, wantErr: true},
		{name: "negative slots", in: `<job_info><job_list><JB_job_number>1</JB_job_number><slots>-1</slots></job_list></job_info>`, wantErr: true},
		{name: "unterminated tag", in: `<job_info><job_list><JB_job_number>1</JB_job_number><state</job_info>`, wantErr: true},
		{name: "unterminated job_list tag", in: `<job_info><job_list state="r"</job_info>`, wantErr: true},
		{name: "unterminated element", in: `<job_info><job_list><JB_job_number>1</JB_job_number><x><y>1</job_info>`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseQstat([]byte(tt.in))
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestQstatCharacterData decodes job names and attributes with each of XML's predefined entities and
// character references at and beyond the last code point; a job name that cannot be decoded fails the
// listing, an attribute is left empty.
func TestQstatCharacterData(t *testing.T) {
	for _, tt := range []struct {
		raw, want string
		wantErr   bool
	}{
		{raw: "plain", want: "plain"},
		{raw: "&amp;&lt;&gt;&quot;&apos;", want: `&<>"'`},
		{raw: "a&apos;b&amp;", want: "a'b&"},
		{raw: "&#65;&#x42;&#x63;", want: "ABc"},
		{raw: "&#1114111;&#x10FFFF;", want: "􏿿􏿿"},
		{raw: "&#1114112;", wantErr: true},
		{raw: "&#x110000;", wantErr: true},
		{raw: "&#x;", wantErr: true},
		{raw: "&#;", wantErr: true},
		{raw: "&#xZZ;", wantErr: true},
		{raw: "&nope;", wantErr: true},
		{raw: "&amp", wantErr: true},
	} {
		t.Run(tt.raw, func(t *testing.T) {
			in := `<job_info><job_list state="` + tt.raw + `"><JB_job_number>1</JB_job_number><JB_name>` + tt.raw +
				`</JB_name></job_list></job_info>`
			got, err := parseQstat([]byte(in))
			if tt.wantErr {
				require.Error(t, err)
				assert.Empty(t, attr([]byte(`state="`+tt.raw+`"`), "state"))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, []qstatJob{{Number: 1, Name: tt.want, List: tt.want}}, got)
		})
	}
}

func TestParseQstatJob(t *testing.T) {
	run, err := parseQstatJob(readTestdata(t, "qstatj-run.xml"))
	require.NoError(t, err)
	assert.Equal(t, qstatJobDetail{Jobs: []qstatJobInfo{{Number: 1, Name: "sleeper", Owner: "sgetest", PE: "mpi"}}}, run)

	eqw, err := parseQstatJob(readTestdata(t, "qstatj-eqw.xml"))
	require.NoError(t, err)
	require.Len(t, eqw.Jobs, 1)
	assert.Equal(t, []string{"11/28/2026 16:46:15 [1001:17953]: error: can't chdir to /nonexistent/dir: No such file or directory"}, eqw.Jobs[0].Messages)

	unknown, err := parseQstatJob(readTestdata(t, "qstatj-unknown.xml"))
	require.NoError(t, err)
	assert.Equal(t, qstatJobDetail{Unknown: []string{"999"}}, unknown)

	for _, bad := range []string{"", "Following jobs do not exist: \n999\n", "<job_info></job_info>", "<detailed_job_info><djob_info><element><JB_job_number>-1</JB_job_number></element></djob_info></detailed_job_info>"} {
		_, err := parseQstatJob([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}

func TestParseQacct(t *testing.T) {
	recs, err := parseQacct(readTestdata(t, "qacct-qdel.txt"))
	require.NoError(t, err)
	require.Len(t, recs, 1)
	want := qacctRecord{
		Queue: "all.q", Host: "vm", Owner: "sgetest", Name: "sleeper", Number: 1, ParallelEnv: "mpi", Slots: 2,
		Failed: 100, FailedText: "assumedly after job", ExitStatus: 137,
		Start:     time.Date(2026, 11, 28, 16, 46, 14, 0, time.Local),
		End:       time.Date(2026, 11, 28, 16, 46, 25, 0, time.Local),
		Wallclock: 11 * time.Second, MaxVMem: 5349834, // int64(5.102 * 1 MiB)
	}
	assert.Equal(t, want, recs[0])

	arr, err := parseQacct(readTestdata(t, "qacct-array.txt"))
	require.NoError(t, err)
	require.Len(t, arr, 3)
	for i, r := range arr {
		assert.Equal(t, i+1, r.Task)
		assert.Equal(t, i, r.ExitStatus)
	}

	// What a job that never started records: no times, no task, no parallel environment.
	never, err := parseQacct([]byte("====\njobnumber 7\ntaskid undefined\ngranted_pe NONE\nstart_time -/-\nend_time -/-\nru_wallclock 0\nmaxvmem 0.000B\n"))
	require.NoError(t, err)
	assert.Equal(t, []qacctRecord{{Number: 7}}, never)

	for _, bad := range []string{"qname all.q\n", "====\njobnumber x\n", "====\nqname all.q\n", "====\njobnumber 1\nmaxvmem 1.0XB\n", "====\njobnumber 1\nru_wallclock NaN\n",
		"====\njobnumber 1\nstart_time   yesterday\n", "====\njobnumber 1\nend_time     2026-11-28T16:46:25\n",
		"====\njobnumber 0\n", "====\njobnumber 1\nslots x\n", "====\njobnumber 1\ntaskid x\n", "====\njobnumber 1\nfailed x : y\n",
		"====\njobnumber 1\nexit_status x\n", "====\njobnumber 1\nru_wallclock -1s\n", "====\njobnumber 1\nmaxvmem -1.0MB\n"} {
		_, err := parseQacct([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}

func TestResultFromRecords(t *testing.T) {
	s, err := New()
	require.NoError(t, err)
	recs, err := parseQacct(readTestdata(t, "qacct-array.txt"))
	require.NoError(t, err)
	ref, err := parseJobID("5")
	require.NoError(t, err)
	res, err := s.result(ref, recs)
	require.NoError(t, err)
	assert.Equal(t, scheduler.StateFailed, res.State)
	assert.Equal(t, 1, res.ExitCode, "the first failed task's status")
	require.Len(t, res.Tasks, 3)
	assert.Equal(t, []scheduler.JobState{scheduler.StateDone, scheduler.StateFailed, scheduler.StateFailed},
		[]scheduler.JobState{res.Tasks[0].State, res.Tasks[1].State, res.Tasks[2].State})
	assert.Equal(t, scheduler.JobID("5.3"), res.Tasks[2].ID)

	ref, err = parseJobID("5.1")
	require.NoError(t, err)
	res, err = s.result(ref, recs)
	require.NoError(t, err)
	assert.Equal(t, scheduler.StateDone, res.State)
	assert.Equal(t, 1, res.Task)
}

func TestMapState(t *testing.T) {
	for letters, want := range map[string]scheduler.JobState{
		"qw": scheduler.StatePending, "Rq": scheduler.StatePending, "hqw": scheduler.StateHeld, "hRwq": scheduler.StateHeld,
		"r": scheduler.StateRunning, "t": scheduler.StateRunning, "Rr": scheduler.StateRunning, "hr": scheduler.StateRunning,
		"dr": scheduler.StateRunning, "s": scheduler.StateSuspended, "S": scheduler.StateSuspended, "T": scheduler.StateSuspended,
		"ts": scheduler.StateSuspended, "Eqw": scheduler.StateError, "Ehqw": scheduler.StateError, "z": scheduler.StateUnknown,
	} {
		assert.Equal(t, want, mapState(letters), letters)
	}
}

func TestTaskIn(t *testing.T) {
	assert.True(t, taskIn(4, "4"))
	assert.True(t, taskIn(6, "2-10:4"))
	assert.False(t, taskIn(4, "2-10:4"))
	assert.True(t, taskIn(3, "1-3"))
	assert.False(t, taskIn(11, "2-10:1"))
	assert.False(t, taskIn(1, "x"))
}

func TestParseIDs(t *testing.T) {
	for out, want := range map[string]scheduler.JobID{"17\n": "17", "17.1-3:1\n": "17", "note\n42\n": "42"} {
		got, err := parseSubmitID([]byte(out))
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	for _, bad := range []string{"", "Your job 3 (\"x\") has been submitted\n", "0\n"} {
		_, err := parseSubmitID([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
	for _, bad := range []scheduler.JobID{"", "x", "1.", "1.0", "-2", "1.2.3"} {
		_, err := parseJobID(bad)
		assert.Error(t, err, "%q", bad)
	}
}

func FuzzParseQstat(f *testing.F) {
	f.Add(readTestdata(f, "qstat.xml"))
	f.Add([]byte(`<job_info><job_list state="running"><JB_job_number>7</JB_job_number><JB_name>a&amp;b</JB_name></job_list></job_info>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		jobs, err := parseQstat(data)
		if err != nil {
			return
		}
		for _, j := range jobs {
			require.Positive(t, j.Number)
			require.GreaterOrEqual(t, j.Slots, 0)
		}
	})
}

func FuzzParseQstatJob(f *testing.F) {
	for _, name := range []string{"qstatj-run.xml", "qstatj-eqw.xml", "qstatj-unknown.xml"} {
		f.Add(readTestdata(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := parseQstatJob(data)
		if err != nil {
			return
		}
		for _, j := range d.Jobs {
			require.Positive(t, j.Number)
		}
	})
}

func FuzzParseQacct(f *testing.F) {
	f.Add(readTestdata(f, "qacct-qdel.txt"))
	f.Add(readTestdata(f, "qacct-array.txt"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := parseQacct(data)
		if err != nil {
			return
		}
		for _, r := range recs {
			require.Positive(t, r.Number)
			require.GreaterOrEqual(t, r.MaxVMem, int64(0))
			require.GreaterOrEqual(t, r.Wallclock, time.Duration(0))
		}
	})
}

func TestQstatListingPeerAgrees(t *testing.T) {
	data := qstatgen.Listing(1000)
	got, err := parseQstat(data)
	require.NoError(t, err)
	var peer qstatgen.Doc
	require.NoError(t, xml.Unmarshal(data, &peer))
	all := append(peer.Running, peer.Pending...)
	require.Len(t, got, len(all))
	for i, p := range all {
		assert.Equal(t, qstatJob{Number: p.Number, Name: p.Name, Owner: p.Owner, State: p.State, List: p.List,
			Queue: p.Queue, Slots: p.Slots, Tasks: p.Tasks}, got[i])
	}
}

func BenchmarkParseQstat(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		data := qstatgen.Listing(n)
		b.Run(fmt.Sprintf("jobs=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				jobs, err := parseQstat(data)
				if err != nil || len(jobs) != n {
					b.Fatalf("parsed %d jobs: %v", len(jobs), err)
				}
			}
		})
		b.Run(fmt.Sprintf("encoding-xml/jobs=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				var doc qstatgen.Doc
				if err := xml.Unmarshal(data, &doc); err != nil || len(doc.Running)+len(doc.Pending) != n {
					b.Fatalf("parsed %d jobs: %v", len(doc.Running)+len(doc.Pending), err)
				}
			}
		})
	}
}
