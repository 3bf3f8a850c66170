package slurm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
)

// squeueJSON is the part of `squeue --json` (Slurm 22.05, openapi/v0.0.38) that Status needs, as a Go
// wrapper would decode it with encoding/json.
type squeueJSON struct {
	Jobs []struct {
		JobID       int64  `json:"job_id"`
		ArrayJobID  int64  `json:"array_job_id"`
		ArrayTaskID *int64 `json:"array_task_id"`
		JobState    string `json:"job_state"`
		StateReason string `json:"state_reason"`
		Partition   string `json:"partition"`
		Nodes       string `json:"nodes"`
		CPUs        int    `json:"cpus"`
		UserName    string `json:"user_name"`
		Name        string `json:"name"`
	} `json:"jobs"`
}

// entries turns the decoded JSON into what parseSqueue returns.
func (d squeueJSON) entries() []queueEntry {
	out := make([]queueEntry, len(d.Jobs))
	for i, j := range d.Jobs {
		e := queueEntry{ID: strconv.FormatInt(j.JobID, 10), ArrayJob: j.ArrayJobID, State: j.JobState,
			Reason: j.StateReason, Partition: j.Partition, Nodes: j.Nodes, CPUs: j.CPUs, User: j.UserName, Name: j.Name}
		if j.ArrayJobID == 0 {
			e.ArrayJob = j.JobID
		}
		if j.ArrayTaskID != nil {
			e.Task = strconv.FormatInt(*j.ArrayTaskID, 10)
			e.ID = strconv.FormatInt(j.ArrayJobID, 10) + "_" + e.Task
		}
		out[i] = e
	}
	return out
}

// statusListings returns the same n jobs as `squeue --json` prints them and in squeueFormat. The jobs are
// the real ones of testdata/squeue.json (running, held, completed, an array task), repeated with new ids
// and names; the JSON keeps every field squeue prints, as a wrapper has to read past them.
func statusListings(tb testing.TB, n int) (text, js []byte) {
	tb.Helper()
	var doc map[string]any
	if err := json.Unmarshal(readTestdata(tb, "squeue.json"), &doc); err != nil {
		tb.Fatal(err)
	}
	templates := doc["jobs"].([]any)
	jobs := make([]any, n)
	var b bytes.Buffer
	for i := range n {
		job := map[string]any{}
		for k, v := range templates[i%len(templates)].(map[string]any) {
			job[k] = v
		}
		id := int64(100000 + i)
		job["job_id"] = id
		job["name"] = fmt.Sprintf("job %d|of %d", i, n)
		arrayJob, task := id, "N/A"
		if t, ok := job["array_task_id"].(float64); ok {
			arrayJob = id - int64(t)
			job["array_job_id"] = arrayJob
		}
		jobs[i] = job
		e := squeueJSON{}
		raw, _ := json.Marshal(map[string]any{"jobs": []any{job}})
		if err := json.Unmarshal(raw, &e); err != nil {
			tb.Fatal(err)
		}
		j := e.Jobs[0]
		sid := strconv.FormatInt(id, 10)
		if j.ArrayTaskID != nil {
			task = strconv.FormatInt(*j.ArrayTaskID, 10)
			sid = strconv.FormatInt(arrayJob, 10) + "_" + task
		}
		fmt.Fprintf(&b, "%s|%d|%s|%s|%s|%s|%s|%d|%s|%s\n", sid, arrayJob, task, j.JobState, j.StateReason,
			j.Partition, j.Nodes, j.CPUs, j.UserName, j.Name)
	}
	doc["jobs"] = jobs
	js, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	return b.Bytes(), js
}

// TestStatusListingsAgree checks that the benchmark's two inputs hold the same jobs.
func TestStatusListingsAgree(t *testing.T) {
	text, js := statusListings(t, 100)
	got, err := parseSqueue(text)
	if err != nil {
		t.Fatal(err)
	}
	var doc squeueJSON
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatal(err)
	}
	want := doc.entries()
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
				var doc squeueJSON
				if err := json.Unmarshal(js, &doc); err != nil || len(doc.entries()) != n {
					b.Fatalf("parsed %d jobs: %v", len(doc.Jobs), err)
				}
			}
		})
	}
}
