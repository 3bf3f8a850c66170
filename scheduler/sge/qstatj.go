package sge

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"

	"github.com/hpcship/hpcship/internal/envvar"
)

// qstatJobDetail is what this package reads from `qstat -j ID -xml`: the jobs it knows and the ids it does
// not. Unlike plain `qstat -j`, the XML form exits 0 for an unknown job.
type qstatJobDetail struct {
	Jobs    []qstatJobInfo
	Unknown []string
}

type qstatJobInfo struct {
	Number int64
	Name   string
	Owner  string
	PE     string
	// Messages are the error reasons of the job's tasks (why it sits in Eqw).
	Messages []string
}

type qstatJXML struct {
	XMLName xml.Name
	Jobs    []struct {
		Number string `xml:"JB_job_number"`
		Name   string `xml:"JB_job_name"`
		Owner  string `xml:"JB_owner"`
		PE     string `xml:"JB_pe"`
		Tasks  []struct {
			Messages []string `xml:"JAT_message_list>ulong_sublist>QIM_message"`
		} `xml:"JB_ja_tasks>ulong_sublist"`
	} `xml:"djob_info>element"`
	// The root is <unknown_jobs> when no job is known; a mixed answer nests it.
	Unknown       []string `xml:"ST_name"`
	NestedUnknown []string `xml:"unknown_jobs>ST_name"`
}

// maxQstatJobOutput bounds the `qstat -j ID -xml` output parseQstatJob reads: 16 MiB.
const maxQstatJobOutput = 16 << 20

// parseQstatJob reads `qstat -j ID -xml` output, at most 16 MiB of it.
func parseQstatJob(data []byte) (qstatJobDetail, error) {
	// encoding/xml keeps a stack entry per open element: bound the input, and with it that stack, to far
	// more than the description of one job takes.
	if len(data) > maxQstatJobOutput {
		return qstatJobDetail{}, fmt.Errorf("parsing qstat -j -xml output: %d bytes, more than %d", len(data), maxQstatJobOutput)
	}
	var doc qstatJXML
	d := xml.NewDecoder(bytes.NewReader(data))
	if err := d.Decode(&doc); err != nil {
		return qstatJobDetail{}, fmt.Errorf("parsing qstat -j -xml output: %w", err)
	}
	if doc.XMLName.Local != "detailed_job_info" && doc.XMLName.Local != "unknown_jobs" {
		return qstatJobDetail{}, fmt.Errorf("parsing qstat -j -xml output: unexpected root <%s>", doc.XMLName.Local)
	}
	var out qstatJobDetail
	for _, j := range doc.Jobs {
		n, err := strconv.ParseInt(strings.TrimSpace(j.Number), 10, 64)
		if err != nil || n < 1 {
			return qstatJobDetail{}, fmt.Errorf("parsing qstat -j -xml output: job number %s is not a positive number", envvar.Clip(j.Number))
		}
		info := qstatJobInfo{Number: n, Name: j.Name, Owner: j.Owner, PE: j.PE}
		for _, t := range j.Tasks {
			for _, m := range t.Messages {
				if m = strings.TrimSpace(m); m != "" {
					info.Messages = append(info.Messages, m)
				}
			}
		}
		out.Jobs = append(out.Jobs, info)
	}
	for _, id := range append(doc.Unknown, doc.NestedUnknown...) {
		out.Unknown = append(out.Unknown, strings.TrimSpace(id))
	}
	return out, nil
}
