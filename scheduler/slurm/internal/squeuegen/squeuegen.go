// Package squeuegen makes the squeue listings of scheduler/slurm's status benchmark: the same n jobs as
// `squeue --json` prints them and in the `squeue -o` format that Status reads, made by repeating the jobs of a
// real `squeue --json` document (Slurm 22.05) with new ids and names.
package squeuegen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Doc is the part of `squeue --json` (Slurm 22.05, openapi/v0.0.38) that a job's status needs, as a Go
// wrapper would decode it with encoding/json.
type Doc struct {
	Jobs []Job `json:"jobs"`
}

// Job is one job of a Doc.
type Job struct {
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
}

// ID is the job's id as squeue's %i prints it: "7", or "7_2" for an array task.
func (j Job) ID() string {
	if j.ArrayTaskID != nil {
		return strconv.FormatInt(j.ArrayJobID, 10) + "_" + strconv.FormatInt(*j.ArrayTaskID, 10)
	}
	return strconv.FormatInt(j.JobID, 10)
}

// Listings returns n jobs made from the jobs of the `squeue --json` document real, as squeue prints them
// with `-o %i|%F|%K|%T|%r|%P|%N|%C|%u|%j` (text) and with --json (js). The JSON keeps every field squeue
// prints, as a wrapper has to read past them.
func Listings(real []byte, n int) (text, js []byte, err error) {
	var doc map[string]any
	if err := json.Unmarshal(real, &doc); err != nil {
		return nil, nil, err
	}
	templates, _ := doc["jobs"].([]any)
	if len(templates) == 0 {
		return nil, nil, errors.New("the squeue --json document lists no jobs")
	}
	jobs := make([]any, n)
	var b bytes.Buffer
	for i := range n {
		tmpl, ok := templates[i%len(templates)].(map[string]any)
		if !ok {
			return nil, nil, fmt.Errorf("job %d of the squeue --json document is not an object", i%len(templates))
		}
		job := make(map[string]any, len(tmpl))
		for k, v := range tmpl {
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
		raw, err := json.Marshal(map[string]any{"jobs": []any{job}})
		if err != nil {
			return nil, nil, err
		}
		var one Doc
		if err := json.Unmarshal(raw, &one); err != nil {
			return nil, nil, err
		}
		j := one.Jobs[0]
		if j.ArrayTaskID != nil {
			task = strconv.FormatInt(*j.ArrayTaskID, 10)
		}
		fmt.Fprintf(&b, "%s|%d|%s|%s|%s|%s|%s|%d|%s|%s\n", j.ID(), arrayJob, task, j.JobState, j.StateReason,
			j.Partition, j.Nodes, j.CPUs, j.UserName, j.Name)
	}
	doc["jobs"] = jobs
	if js, err = json.MarshalIndent(doc, "", "  "); err != nil {
		return nil, nil, err
	}
	return b.Bytes(), js, nil
}
