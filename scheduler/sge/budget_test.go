package sge

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/budget"
	"github.com/hpcship/hpcship/scheduler"
)

// hostile builds random inputs from an entry point's own tokens, junk bytes and separators.
func hostile(r *rand.Rand, tokens []string, size int) []byte {
	junk := []string{" ", "\t", "\n", "\n", "\r\n", "\x00", "\xff\xfe", "&", "&#x110000;", "&#99999999999;", "<", ">", "/", "="}
	var b bytes.Buffer
	for b.Len() < size {
		if r.IntN(4) == 0 {
			b.WriteString(junk[r.IntN(len(junk))])
		} else {
			b.WriteString(tokens[r.IntN(len(tokens))])
		}
	}
	return b.Bytes()
}

// TestHostilePEHostfilesWithinBudget: ParsePEHostfile and Machinefile in every format on random and
// amplifying hostfiles. The child must stay within 256 MiB and 8 minutes (8 times the memory under -race).
func TestHostilePEHostfilesWithinBudget(t *testing.T) {
	t.Parallel()
	if !budget.Child(t, budget.Budget{Memory: 256 << 20, Time: 8 * time.Minute}) {
		return
	}
	check := func(in []byte) {
		hf, err := ParsePEHostfile(bytes.NewReader(in))
		if err != nil {
			var pe *PEHostfileError
			require.ErrorAs(t, err, &pe)
			require.Less(t, len(err.Error()), 400)
			return
		}
		for f := scheduler.MachinefileHosts; f <= scheduler.MachinefileOpenMPI; f++ {
			mf, err := hf.Machinefile(f)
			if err != nil {
				require.ErrorIs(t, err, ErrPEHostfileTooLarge)
				continue
			}
			require.LessOrEqual(t, len(mf), 16<<20)
		}
	}
	long := strings.Repeat("h", 255)
	amplifiers := []func() []byte{
		func() []byte { return []byte("h 1048576\n") },
		func() []byte { return []byte(long + " 1048576\n") },
		func() []byte { return []byte(strings.Repeat(long+" 1\n", 60000)) },
		func() []byte { return []byte(strings.Repeat("a 1\n", 1<<20)) },
		func() []byte { return []byte(strings.Repeat("a 1\n", 1<<16) + "b 1\n") },
		func() []byte { return []byte(strings.Repeat("a 9999999\n", 1000)) },
		func() []byte { return []byte("a 1 " + strings.Repeat("q", 16<<20-10) + "\n") },
		func() []byte { return bytes.Repeat([]byte{'\n'}, 16<<20+1) },
		func() []byte { return bytes.Repeat([]byte{'9'}, 20<<20) },
	}
	// One at a time, so that the budget holds one input, not all of them.
	for _, in := range amplifiers {
		check(in())
	}
	tokens := []string{"node1", "node2", long, "h", "0", "1", "16", "1048576", "1048577", "99999999999999999999", "0000001", "-1", "+1",
		"all.q@node1", "UNDEFINED", "0,0:0,1", "extra", "fe80::1", "$(x)", "a[b]"}
	r := rand.New(rand.NewPCG(3, 4))
	for range 100 {
		check(hostile(r, tokens, r.IntN(256<<10)))
	}
}

// TestHostileQstatWithinBudget: parseQstat (qstat -xml) and parseQstatJob (qstat -j -xml) on random and
// amplifying listings, within 512 MiB and 8 minutes (8 times the memory under -race). A listing is already
// in memory when it is parsed, so the budget holds the inputs too: up to 20 MiB each.
func TestHostileQstatWithinBudget(t *testing.T) {
	t.Parallel()
	if !budget.Child(t, budget.Budget{Memory: 512 << 20, Time: 8 * time.Minute}) {
		return
	}
	check := func(in []byte) {
		if _, err := parseQstat(in); err != nil {
			require.Less(t, len(err.Error()), 400)
		}
		if _, err := parseQstatJob(in); err != nil {
			require.Less(t, len(err.Error()), 2000)
		}
	}
	job := "<job_list state=\"running\"><JB_job_number>17</JB_job_number><JB_name>a&amp;b</JB_name><JB_owner>u</JB_owner><state>r</state><queue_name>all.q@vm</queue_name><slots>1</slots><tasks>2-10:4</tasks></job_list>\n"
	amplifiers := []func() []byte{
		func() []byte {
			return []byte("<job_info><queue_info>" + strings.Repeat(job, 20000) + "</queue_info></job_info>")
		},
		func() []byte { return []byte("<job_info>" + strings.Repeat("<job_list>", 1<<20) + "</job_info>") },
		func() []byte {
			return []byte("<job_info><job_list><JB_job_number>1</JB_job_number><JB_name>" + strings.Repeat("&amp;", 4<<20) + "</JB_name></job_list></job_info>")
		},
		func() []byte {
			return []byte("<job_info><job_list><JB_job_number>" + strings.Repeat("9", 16<<20) + "</JB_job_number></job_list></job_info>")
		},
		func() []byte {
			return []byte("<detailed_job_info><djob_info>" + strings.Repeat("<element><JB_job_number>1</JB_job_number><JB_ja_tasks><ulong_sublist><JAT_message_list><ulong_sublist><QIM_message>x</QIM_message></ulong_sublist></JAT_message_list></ulong_sublist></JB_ja_tasks></element>", 60000) + "</djob_info></detailed_job_info>")
		},
		func() []byte { return []byte("<detailed_job_info>" + strings.Repeat("<a>", 1<<20)) },
		func() []byte {
			return []byte("<unknown_jobs>" + strings.Repeat("<ST_name>1</ST_name>", 500000) + "</unknown_jobs>")
		},
	}
	// One at a time, so that the budget holds one input, not all of them.
	for _, in := range amplifiers {
		check(in())
	}
	tokens := []string{"<job_info>", "</job_info>", "<queue_info>", "</queue_info>", "<job_list state=\"running\">", "<job_list>", "</job_list>",
		"<JB_job_number>", "</JB_job_number>", "<state>", "</state>", "<slots>", "</slots>", "<tasks>", "</tasks>", "<JB_name>", "</JB_name>",
		"17", "0", "-1", "99999999999999999999", "r", "Eqw", "hqw", "<!-- c -->", "<x/>", "<detailed_job_info>", "<djob_info>", "<element>",
		"</element>", "<unknown_jobs>", "<ST_name>", "</ST_name>", "<?xml version='1.0'?>", job}
	r := rand.New(rand.NewPCG(5, 6))
	for range 50 {
		check(hostile(r, tokens, r.IntN(128<<10)))
	}
}

// TestHostileQacctWithinBudget: parseQacct on random and amplifying accounting output, within 256 MiB and 8
// minutes (8 times the memory under -race); inputs up to 18 MiB each.
func TestHostileQacctWithinBudget(t *testing.T) {
	t.Parallel()
	if !budget.Child(t, budget.Budget{Memory: 256 << 20, Time: 8 * time.Minute}) {
		return
	}
	check := func(in []byte) {
		if _, err := parseQacct(in); err != nil {
			require.Less(t, len(err.Error()), 400)
		}
	}
	record := "==============================================================\nqname all.q\nhostname vm\nowner u\njobname j\njobnumber 17\ntaskid 3\ngranted_pe mpi\nslots 2\nfailed 0\nexit_status 1\nstart_time Sat Nov 28 16:46:14 2026\nend_time Sat Nov 28 16:46:25 2026\nru_wallclock 11s\nmaxvmem 5.102MB\n"
	amplifiers := []func() []byte{
		func() []byte { return []byte(strings.Repeat(record, 60000)) },
		func() []byte { return []byte(strings.Repeat("=\n", 8<<20)) },
		func() []byte { return []byte("=\njobnumber 1\nstart_time " + strings.Repeat("x", 1<<20-20) + "\n") },
		func() []byte { return []byte("=\njobnumber 1\nqname " + strings.Repeat("x", 2<<20) + "\n") },
		func() []byte { return []byte("=\njobnumber 1\nmaxvmem 1" + strings.Repeat("0", 400) + "PB\n") },
	}
	// One at a time, so that the budget holds one input, not all of them.
	for _, in := range amplifiers {
		check(in())
	}
	tokens := []string{"=====", "qname", "hostname", "jobnumber", "taskid", "slots", "failed", "exit_status", "start_time", "end_time",
		"ru_wallclock", "maxvmem", " ", "17", "undefined", "-/-", "100 : assumedly after job", "137 (Killed)", "Sat Nov 28 16:46:14 2026",
		"11s", "1e400s", "NaN", "5.102MB", "1.0XB", "99999999999999999999", record}
	r := rand.New(rand.NewPCG(7, 8))
	for range 100 {
		in := hostile(r, tokens, r.IntN(256<<10))
		check(in)
	}
}
