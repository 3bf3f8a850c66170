// Command qstatbench supports scripts/bench/sge.sh: it writes `qstat -xml`
// listings and looks one job up in a listing, either through the sge package
// (SGE.Status with a Runner that answers `qstat` with the file) or with
// encoding/xml into structs, how Go qstat wrappers usually read it, so that the
// script times both as whole processes.
//
//	qstatbench gen N OUT            a listing of N jobs (a quarter running), as SoGE 8.1.9 writes them
//	qstatbench gen -from FILE N OUT N jobs made by repeating FILE's jobs (a real listing) with new numbers
//	qstatbench ours [-repeat K] FILE    SGE.Status of the last job not in error, K times (default 1)
//	qstatbench peer [-repeat K] FILE    xml.Unmarshal and a search for the same job, K times
//
// Each lookup reads the file again, as each Status call runs qstat again.
package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/hpcship/hpcship/scheduler"
	"github.com/hpcship/hpcship/scheduler/sge"
	"github.com/hpcship/hpcship/scheduler/sge/internal/qstatgen"
)

func main() {
	log.SetFlags(0)
	if err := run(context.Background(), os.Args[1:]); err != nil {
		log.Fatalf("qstatbench: %v", err)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: qstatbench gen [-from FILE] N OUT | ours|peer [-repeat K] FILE")
	}
	fl := flag.NewFlagSet(args[0], flag.ContinueOnError)
	from := fl.String("from", "", "real listing whose jobs are repeated")
	repeat := fl.Int("repeat", 1, "lookups per process")
	if err := fl.Parse(args[1:]); err != nil {
		return err
	}
	switch {
	case args[0] == "gen" && fl.NArg() == 2:
		n, err := strconv.Atoi(fl.Arg(0))
		if err != nil || n < 1 {
			return fmt.Errorf("bad job count %q", fl.Arg(0))
		}
		data := qstatgen.Listing(n)
		if *from != "" {
			if data, err = fromReal(*from, n); err != nil {
				return err
			}
		}
		return os.WriteFile(fl.Arg(1), data, 0o644)
	case (args[0] == "ours" || args[0] == "peer") && fl.NArg() == 1:
		file := fl.Arg(0)
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		last := lastJob(data)
		for range *repeat {
			if args[0] == "ours" {
				err = ours(ctx, file, last)
			} else {
				err = peer(file, last)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("bad arguments %q", strings.Join(args, " "))
}

var (
	jobNumber = regexp.MustCompile(`<JB_job_number>(\d+)</JB_job_number>`)
	jobState  = regexp.MustCompile(`<state>([^<]*)</state>`)
)

// lastJob is the number of the last listed job not in an error state (Status
// would also run qstat -j for one in error).
func lastJob(data []byte) int64 {
	var last int64
	for _, e := range bytes.SplitAfter(data, []byte("</job_list>")) {
		n, st := jobNumber.FindSubmatch(e), jobState.FindSubmatch(e)
		if n != nil && st != nil && !bytes.Contains(st[1], []byte("E")) {
			last, _ = strconv.ParseInt(string(n[1]), 10, 64)
		}
	}
	return last
}

// fileRunner answers every command with the file's content, read afresh.
type fileRunner string

func (f fileRunner) Run(_ context.Context, c scheduler.Command) (scheduler.Output, error) {
	if c.Name != "qstat" {
		return scheduler.Output{}, fmt.Errorf("unexpected command %s", c.Name)
	}
	data, err := os.ReadFile(string(f))
	return scheduler.Output{Stdout: data}, err
}

func ours(ctx context.Context, file string, job int64) error {
	s, err := sge.New(sge.WithRunner(fileRunner(file)))
	if err != nil {
		return err
	}
	st, err := s.Status(ctx, scheduler.JobID(strconv.FormatInt(job, 10)))
	if err != nil {
		return err
	}
	if st.State == scheduler.StateUnknown {
		return fmt.Errorf("job %d: state unknown", job)
	}
	return nil
}

func peer(file string, job int64) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var doc qstatgen.Doc
	if err := xml.Unmarshal(data, &doc); err != nil {
		return err
	}
	for _, j := range append(doc.Running, doc.Pending...) {
		if j.Number == job {
			return nil
		}
	}
	return fmt.Errorf("job %d not listed", job)
}

// fromReal repeats the job_list elements of a real listing, in its two sections,
// until there are n, giving each copy of a job a new number: copy c of job j is
// c*stride+j, stride a power of ten above every number listed (at least 1000).
func fromReal(file string, n int) ([]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	// The root element (job_info, with attributes), then its two sections in order: the copies are
	// written between the root's start and its end.
	root := bytes.Index(data, []byte("<job_info"))
	qs, qe := bytes.Index(data, []byte("<queue_info>")), bytes.Index(data, []byte("</queue_info>"))
	js, je := bytes.Index(data, []byte("<job_info>")), bytes.LastIndex(data, []byte("</job_info>"))
	if root < 0 || qs < root || qe < qs || js < qe || je < js {
		return nil, fmt.Errorf("%s: not a qstat -xml listing", file)
	}
	elems := func(b []byte) [][]byte {
		var out [][]byte
		for {
			s := bytes.Index(b, []byte("<job_list"))
			e := bytes.Index(b, []byte("</job_list>"))
			if s < 0 || e < s {
				return out
			}
			out = append(out, b[s:e+len("</job_list>")])
			b = b[e+len("</job_list>"):]
		}
	}
	running, pending := elems(data[qs:qe]), elems(data[js:je])
	total := len(running) + len(pending)
	if total == 0 {
		return nil, fmt.Errorf("%s lists no jobs", file)
	}
	digits := 3
	for _, m := range jobNumber.FindAllSubmatch(data[qs:je], -1) {
		digits = max(digits, len(m[1]))
	}
	stride := 1
	for range digits {
		stride *= 10
	}
	var b bytes.Buffer
	b.Write(data[:qs])
	emit := func(src [][]byte, copies int) {
		for c := range copies {
			for _, e := range src {
				b.WriteString("    ")
				b.Write(jobNumber.ReplaceAllFunc(e, func(m []byte) []byte {
					old, _ := strconv.Atoi(string(jobNumber.FindSubmatch(m)[1]))
					return fmt.Appendf(nil, "<JB_job_number>%d</JB_job_number>", c*stride+old)
				}))
				b.WriteString("\n")
			}
		}
	}
	copies := (n + total - 1) / total
	b.WriteString("<queue_info>\n")
	emit(running, copies)
	b.WriteString("  </queue_info>\n  <job_info>\n")
	emit(pending, copies)
	b.WriteString("  </job_info>\n</job_info>\n")
	return b.Bytes(), nil
}
