// Command squeuebench supports scripts/bench/slurm.sh: it writes squeue listings of n jobs, in the
// `squeue -o` format that Slurm.Status reads and as `squeue --json`, and looks one job up in a listing,
// either through the slurm package (Slurm.Status with a Runner that answers `squeue` with the file) or with
// encoding/json of the --json listing into structs, how a Go wrapper of `squeue --json` reads it, so that the
// script times both as whole processes.
//
//	squeuebench gen -from SQUEUE.JSON N TEXT JSON   N jobs made from a real squeue --json document
//	squeuebench ours [-repeat K] TEXT              Slurm.Status of the last listed job, K times (default 1)
//	squeuebench peer [-repeat K] JSON              json.Unmarshal and a search for the same job, K times
//
// Each lookup reads the file again, as each Status call runs squeue again.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"

	"github.com/hpcship/hpcship/scheduler"
	"github.com/hpcship/hpcship/scheduler/slurm"
	"github.com/hpcship/hpcship/scheduler/slurm/internal/squeuegen"
)

func main() {
	log.SetFlags(0)
	if err := run(context.Background(), os.Args[1:]); err != nil {
		log.Fatalf("squeuebench: %v", err)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: squeuebench gen -from SQUEUE.JSON N TEXT JSON | ours|peer [-repeat K] FILE")
	}
	fl := flag.NewFlagSet(args[0], flag.ContinueOnError)
	from := fl.String("from", "", "real squeue --json document whose jobs are repeated")
	repeat := fl.Int("repeat", 1, "lookups per process")
	if err := fl.Parse(args[1:]); err != nil {
		return err
	}
	switch {
	case args[0] == "gen" && fl.NArg() == 3 && *from != "":
		n, err := strconv.Atoi(fl.Arg(0))
		if err != nil || n < 1 {
			return fmt.Errorf("bad job count %q", fl.Arg(0))
		}
		real, err := os.ReadFile(*from)
		if err != nil {
			return err
		}
		text, js, err := squeuegen.Listings(real, n)
		if err != nil {
			return err
		}
		if err := os.WriteFile(fl.Arg(1), text, 0o644); err != nil {
			return err
		}
		return os.WriteFile(fl.Arg(2), js, 0o644)
	case (args[0] == "ours" || args[0] == "peer") && fl.NArg() == 1:
		file := fl.Arg(0)
		job, err := lastJob(file, args[0] == "peer")
		if err != nil {
			return err
		}
		for range *repeat {
			if args[0] == "ours" {
				err = ours(ctx, file, job)
			} else {
				err = peer(file, job)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("bad arguments %q", strings.Join(args, " "))
}

// lastJob is the id of the last job of a listing. It is read once, outside the timed lookups' parse, but
// inside the process on both sides.
func lastJob(file string, isJSON bool) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	if isJSON {
		i := bytes.LastIndex(data, []byte(`"job_id": `))
		if i < 0 {
			return "", fmt.Errorf("%s lists no jobs", file)
		}
		// The last job's id, and whether it is an array task, come from a parse of that job alone.
		start := bytes.LastIndex(data[:i], []byte("\n    {"))
		end := bytes.Index(data[i:], []byte("\n    }"))
		if start < 0 || end < 0 {
			return "", fmt.Errorf("%s: not a squeue --json listing", file)
		}
		var j squeuegen.Job
		if err := json.Unmarshal(data[start:i+end+len("\n    }")], &j); err != nil {
			return "", err
		}
		return j.ID(), nil
	}
	data = bytes.TrimRight(data, "\n")
	line := data[bytes.LastIndexByte(data, '\n')+1:]
	id, _, ok := bytes.Cut(line, []byte("|"))
	if !ok {
		return "", fmt.Errorf("%s: not a squeue -o listing", file)
	}
	return string(id), nil
}

// fileRunner answers every command with the file's content, read afresh.
type fileRunner string

func (f fileRunner) Run(_ context.Context, c scheduler.Command) (scheduler.Output, error) {
	if c.Name != "squeue" {
		return scheduler.Output{}, fmt.Errorf("unexpected command %s", c.Name)
	}
	data, err := os.ReadFile(string(f))
	return scheduler.Output{Stdout: data}, err
}

func ours(ctx context.Context, file, job string) error {
	s, err := slurm.New(slurm.WithRunner(fileRunner(file)))
	if err != nil {
		return err
	}
	st, err := s.Status(ctx, scheduler.JobID(job))
	if err != nil {
		return err
	}
	if st.State == scheduler.StateUnknown {
		return fmt.Errorf("job %s: state unknown", job)
	}
	return nil
}

func peer(file, job string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var doc squeuegen.Doc
	if err := json.Unmarshal(data, &doc); err != nil {
		return err
	}
	for _, j := range doc.Jobs {
		if j.ID() == job {
			return nil
		}
	}
	return fmt.Errorf("job %s not listed", job)
}
