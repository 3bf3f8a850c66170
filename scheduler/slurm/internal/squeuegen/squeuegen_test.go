package squeuegen

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readReal(t *testing.T) []byte {
	t.Helper()
	real, err := os.ReadFile("../../testdata/squeue.json")
	require.NoError(t, err)
	return real
}

func int64p(v int64) *int64 { return &v }

func TestID(t *testing.T) {
	for _, tc := range []struct {
		name string
		job  Job
		want string
	}{
		{"plain", Job{JobID: 7, ArrayJobID: 0}, "7"},
		{"array task", Job{JobID: 9, ArrayJobID: 7, ArrayTaskID: int64p(2)}, "7_2"},
		{"task zero", Job{JobID: 7, ArrayJobID: 7, ArrayTaskID: int64p(0)}, "7_0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.job.ID())
		})
	}
}

// TestListingsText checks the squeue -o listing line by line: the real document's four jobs (running, held,
// completed, and task 1 of an array) repeated with ids from 100000 and names that hold a '|'.
func TestListingsText(t *testing.T) {
	text, _, err := Listings(readReal(t), 5)
	require.NoError(t, err)
	want := "100000|100000|N/A|RUNNING|None|hpc|vm|1|slurmtest|job 0|of 5\n" +
		"100001|100001|N/A|PENDING|JobHeldUser|hpc||1|slurmtest|job 1|of 5\n" +
		"100002|100002|N/A|COMPLETED|None|hpc|vm|1|slurmtest|job 2|of 5\n" +
		"100002_1|100002|1|COMPLETED|None|hpc|vm|1|slurmtest|job 3|of 5\n" +
		"100004|100004|N/A|RUNNING|None|hpc|vm|1|slurmtest|job 4|of 5\n"
	assert.Equal(t, want, string(text))
}

// TestListingsJSON reads the --json listing back, as Doc and as a whole document: the same jobs as the text
// listing, every field of the real document kept, only ids and names changed.
func TestListingsJSON(t *testing.T) {
	real := readReal(t)
	var realDoc map[string]any
	require.NoError(t, json.Unmarshal(real, &realDoc))
	templates := realDoc["jobs"].([]any)
	for _, n := range []int{0, 1, 4, 5, 9} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			text, js, err := Listings(real, n)
			require.NoError(t, err)
			lines := strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
			if n == 0 {
				assert.Empty(t, text)
				lines = nil
			}
			require.Len(t, lines, n)

			var doc Doc
			require.NoError(t, json.Unmarshal(js, &doc))
			require.Len(t, doc.Jobs, n)
			var whole map[string]any
			require.NoError(t, json.Unmarshal(js, &whole))
			assert.Equal(t, realDoc["meta"], whole["meta"])
			assert.Equal(t, realDoc["errors"], whole["errors"])
			jobs := whole["jobs"].([]any)
			require.Len(t, jobs, n)
			for i, j := range doc.Jobs {
				tmpl := templates[i%len(templates)].(map[string]any)
				id := int64(100000 + i)
				assert.Equal(t, id, j.JobID)
				assert.Equal(t, "job "+strconv.Itoa(i)+"|of "+strconv.Itoa(n), j.Name)
				assert.Equal(t, tmpl["job_state"], j.JobState)
				assert.Equal(t, tmpl["user_name"], j.UserName)
				arrayJob, task := id, "N/A"
				if j.ArrayTaskID != nil {
					arrayJob, task = id-*j.ArrayTaskID, strconv.FormatInt(*j.ArrayTaskID, 10)
					assert.Equal(t, arrayJob, j.ArrayJobID)
				} else {
					assert.Equal(t, tmpl["array_job_id"], float64(j.ArrayJobID))
				}
				// The text line says the same as the JSON job.
				assert.Equal(t, strings.Join([]string{j.ID(), strconv.FormatInt(arrayJob, 10), task, j.JobState,
					j.StateReason, j.Partition, j.Nodes, strconv.Itoa(j.CPUs), j.UserName, j.Name}, "|"), lines[i])

				// Every other field is the template's.
				job := jobs[i].(map[string]any)
				for k, v := range tmpl {
					switch k {
					case "job_id", "name", "array_job_id":
					default:
						assert.Equal(t, v, job[k], "job %d field %s", i, k)
					}
				}
				assert.Len(t, job, len(tmpl))
			}
		})
	}
	// The array task's template has the array's id apart from its own.
	_, js, err := Listings(real, 4)
	require.NoError(t, err)
	var doc Doc
	require.NoError(t, json.Unmarshal(js, &doc))
	assert.Equal(t, "100002_1", doc.Jobs[3].ID())
	assert.Equal(t, int64(100003), doc.Jobs[3].JobID)
	assert.Contains(t, string(js), "\n  \"jobs\": [\n    {\n", "indented as squeue indents it")
}

func TestListingsErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		n    int
		want string
	}{
		{"not JSON", `{"jobs": [`, 1, "unexpected end of JSON input"},
		{"not an object", `[1]`, 1, "cannot unmarshal array"},
		{"no jobs key", `{"meta": {}}`, 1, "lists no jobs"},
		{"no jobs", `{"jobs": []}`, 1, "lists no jobs"},
		{"jobs not a list", `{"jobs": {"job_id": 1}}`, 1, "lists no jobs"},
		{"job not an object", `{"jobs": [1]}`, 1, "job 0 of the squeue --json document is not an object"},
		{"second job not an object", `{"jobs": [{}, "x"]}`, 2, "job 1 of the squeue --json document is not an object"},
		{"wrong field type", `{"jobs": [{"cpus": "many"}]}`, 1, "cannot unmarshal string"},
		{"wrong task type", `{"jobs": [{"array_task_id": "1"}]}`, 1, "cannot unmarshal string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text, js, err := Listings([]byte(tc.doc), tc.n)
			require.ErrorContains(t, err, tc.want)
			assert.Nil(t, text)
			assert.Nil(t, js)
		})
	}
	// A job that is not an object is only an error when it is used.
	text, _, err := Listings([]byte(`{"jobs": [{"job_id": 1}, "x"]}`), 1)
	require.NoError(t, err)
	assert.Equal(t, "100000|100000|N/A|||||0||job 0|of 1\n", string(text))
}
