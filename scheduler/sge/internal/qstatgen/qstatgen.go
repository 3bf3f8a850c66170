// Package qstatgen makes the `qstat -xml` listings of scheduler/sge's parser benchmark and status benchmark
// (scripts/bench/sge.sh), and holds the peer they are compared with: encoding/xml into structs, how Go qstat
// wrappers usually read a listing.
package qstatgen

import (
	"fmt"
	"strings"
)

// Listing returns `qstat -xml -u '*'` output for n jobs numbered from 1, as SoGE 8.1.9 writes them: a quarter
// running, the rest pending, every tenth with a tasks element.
func Listing(n int) []byte {
	var b strings.Builder
	b.WriteString("<?xml version='1.0'?>\n<job_info  xmlns:xsd=\"http://arc.liv.ac.uk/repos/darcs/sge/source/dist/util/resources/schemas/qstat/qstat.xsd\">\n  <queue_info>\n")
	job := func(i int, list, state, when, queue string) {
		fmt.Fprintf(&b, "    <job_list state=%q>\n      <JB_job_number>%d</JB_job_number>\n      <JAT_prio>0.50500</JAT_prio>\n"+
			"      <JB_name>rdma_%d</JB_name>\n      <JB_owner>user%d</JB_owner>\n      <state>%s</state>\n"+
			"      <%s>2026-11-28T16:02:46</%[6]s>\n      <queue_name>%s</queue_name>\n      <slots>32</slots>\n",
			list, i, i, i%50, state, when, queue)
		if i%10 == 0 {
			fmt.Fprintf(&b, "      <tasks>%d</tasks>\n", i%7+1)
		}
		b.WriteString("    </job_list>\n")
	}
	for i := 1; i <= n/4; i++ {
		job(i, "running", "r", "JAT_start_time", fmt.Sprintf("hpc.q@node%04d", i))
	}
	b.WriteString("  </queue_info>\n  <job_info>\n")
	for i := n/4 + 1; i <= n; i++ {
		job(i, "pending", "qw", "JB_submission_time", "")
	}
	b.WriteString("  </job_info>\n</job_info>\n")
	return []byte(b.String())
}

// Doc is a listing decoded with encoding/xml: its running jobs, then its pending ones.
type Doc struct {
	Running []Job `xml:"queue_info>job_list"`
	Pending []Job `xml:"job_info>job_list"`
}

// Job is one job_list element of a Doc.
type Job struct {
	List   string `xml:"state,attr"`
	Number int64  `xml:"JB_job_number"`
	Name   string `xml:"JB_name"`
	Owner  string `xml:"JB_owner"`
	State  string `xml:"state"`
	Queue  string `xml:"queue_name"`
	Slots  int    `xml:"slots"`
	Tasks  string `xml:"tasks"`
}
