package qstatgen

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestListing reads a listing back with encoding/xml: jobs 1 to n in order, the first quarter running on a
// queue instance each, every tenth with its tasks.
func TestListing(t *testing.T) {
	for _, n := range []int{0, 1, 4, 41} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			var doc Doc
			require.NoError(t, xml.Unmarshal(Listing(n), &doc))
			require.Len(t, doc.Running, n/4)
			require.Len(t, doc.Pending, n-n/4)
			for i, j := range append(doc.Running, doc.Pending...) {
				num := i + 1
				want := Job{List: "pending", Number: int64(num), Name: fmt.Sprintf("rdma_%d", num),
					Owner: fmt.Sprintf("user%d", num%50), State: "qw", Slots: 32}
				if num <= n/4 {
					want.List, want.State, want.Queue = "running", "r", fmt.Sprintf("hpc.q@node%04d", num)
				}
				if num%10 == 0 {
					want.Tasks = strconv.Itoa(num%7 + 1)
				}
				assert.Equal(t, want, j)
			}
		})
	}
	// The times are where SoGE puts them: a start time for running jobs, a submission time for pending ones.
	var times struct {
		Start  []string `xml:"queue_info>job_list>JAT_start_time"`
		Submit []string `xml:"job_info>job_list>JB_submission_time"`
	}
	require.NoError(t, xml.Unmarshal(Listing(8), &times))
	assert.Equal(t, []string{"2026-11-28T16:02:46", "2026-11-28T16:02:46"}, times.Start)
	assert.Len(t, times.Submit, 6)
}
