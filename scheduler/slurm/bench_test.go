package slurm

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"

	"github.com/hpcship/hpcship/scheduler/slurm/internal/squeuegen"
)

// entries turns a decoded `squeue --json` document into what parseSqueue returns.
func entries(d squeuegen.Doc) []queueEntry {
	out := make([]queueEntry, len(d.Jobs))
	for i, j := range d.Jobs {
		e := queueEntry{ID: j.ID(), ArrayJob: j.ArrayJobID, State: j.JobState, Reason: j.StateReason,
			Partition: j.Partition, Nodes: j.Nodes, CPUs: j.CPUs, User: j.UserName, Name: j.Name}
		if j.ArrayJobID == 0 {
			e.ArrayJob = j.JobID
		}
		if j.ArrayTaskID != nil {
			e.Task = strconv.FormatInt(*j.ArrayTaskID, 10)
		}
		out[i] = e
	}
	return out
}

// statusListings returns the same n jobs as `squeue --json` prints them and in squeueFormat: the real jobs
// of testdata/squeue.json (running, held, completed, an array task), repeated with new ids and names.
func statusListings(tb testing.TB, n int) (text, js []byte) {
	tb.Helper()
	text, js, err := squeuegen.Listings(readTestdata(tb, "squeue.json"), n)
	if err != nil {
		tb.Fatal(err)
	}
	return text, js
}

// TestStatusListingsAgree checks that the benchmark's two inputs hold the same jobs.
func TestStatusListingsAgree(t *testing.T) {
	text, js := statusListings(t, 100)
	got, err := parseSqueue(text)
	if err != nil {
		t.Fatal(err)
	}
	var doc squeuegen.Doc
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatal(err)
	}
	want := entries(doc)
	if len(got) != 100 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("squeue -o and squeue --json differ:\n%v\n%v", got[:2], want[:2])
	}
}

// BenchmarkParseStatus parses the status of 1k, 10k and 100k jobs from squeueFormat output and, on the same
// 1k and 10k jobs, `squeue --json` with encoding/json; scripts/bench/slurm.sh prints the ratio.
func BenchmarkParseStatus(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		text, js := statusListings(b, n)
		b.Run(fmt.Sprintf("jobs=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				entries, err := parseSqueue(text)
				if err != nil || len(entries) != n {
					b.Fatalf("parsed %d jobs: %v", len(entries), err)
				}
			}
		})
		if n > 10000 {
			// 100k jobs of squeue --json are 240 MB: seconds per parse. The 100k row checks our linearity.
			continue
		}
		b.Run(fmt.Sprintf("encoding-json/jobs=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(js)))
			for b.Loop() {
				var doc squeuegen.Doc
				if err := json.Unmarshal(js, &doc); err != nil || len(entries(doc)) != n {
					b.Fatalf("parsed %d jobs: %v", len(doc.Jobs), err)
				}
			}
		})
	}
}
