package slurm

import (
	"fmt"
	"strings"

	"github.com/hpcship/hpcship/internal/jobscript"
	"github.com/hpcship/hpcship/scheduler"
)

// maxDirectiveValue bounds one #SBATCH value; sbatch keeps long values whole (a 300-byte job name was
// kept), but no option needs more than a path.
const maxDirectiveValue = 4096

// resourceOptions are the sbatch long options Job.Resources may set, each a request for resources: the
// node count and layout, generic resources, features, memory and CPUs per task, QOS and reservations.
func isResourceOption(name string) bool {
	switch name {
	case "nodes", "ntasks-per-node", "ntasks-per-socket", "ntasks-per-core", "cpus-per-task", "gres",
		"gpus", "gpus-per-node", "gpus-per-task", "constraint", "mem", "mem-per-cpu", "mem-per-gpu",
		"licenses", "qos", "reservation", "nodelist", "exclude", "cluster-constraint", "tmp", "switches",
		"distribution", "time-min", "begin", "deadline", "priority", "nice", "comment", "wckey":
		return true
	}
	return false
}

// validate checks j against scheduler.Job's rules and what survives an #SBATCH line.
func (s *Slurm) validate(j *scheduler.Job) error {
	if err := j.Validate(); err != nil {
		return err
	}
	bad := func(field, format string, args ...any) error {
		return &scheduler.JobError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	for _, p := range []struct{ field, value string }{
		{"Name", j.Name},
		{"Queue", j.Queue},
		{"ParallelEnv", j.ParallelEnv},
		{"WorkDir", j.WorkDir},
		{"Stdout", j.Stdout},
		{"Stderr", j.Stderr},
		{"Shell", j.Shell},
		{"Account", j.Account},
	} {
		if p.value == "" {
			continue
		}
		if err := checkDirectiveValue(p.value); err != nil {
			return bad(p.field, "%s", err)
		}
	}
	if j.Queue != "" && strings.ContainsAny(j.Queue, " \t") {
		return bad("Queue", "a partition name has no blanks")
	}
	if j.Shell != "" && strings.ContainsAny(j.Shell, " \t") {
		// The #! line splits at the first blank.
		return bad("Shell", "the path of the #! interpreter has no blanks")
	}
	if j.Project != "" {
		return bad("Project", "Slurm has no projects; use Account")
	}
	if j.JoinOutput && j.Stderr != "" {
		return bad("Stderr", "JoinOutput sends stderr to Stdout; Stderr must be empty")
	}
	for k, v := range j.Resources {
		if !isResourceOption(k) {
			return bad("Resources", "%q is not an sbatch resource option (such as nodes, ntasks-per-node, gres, constraint)", k)
		}
		if err := checkDirectiveValue(v); err != nil {
			return bad("Resources["+k+"]", "%s", err)
		}
	}
	for i, a := range j.Native {
		if err := checkDirectiveValue(a); err != nil {
			return bad(fmt.Sprintf("Native[%d]", i), "%s", err)
		}
	}
	if len(j.Native) > 0 && !strings.HasPrefix(j.Native[0], "-") {
		return bad("Native[0]", "must be an option, starting with '-'")
	}
	for i, id := range j.HoldJobs {
		if !isJobNumber(string(id)) {
			return bad(fmt.Sprintf("HoldJobs[%d]", i), "%q is not a Slurm job id", id)
		}
	}
	if err := jobscript.CheckEnv(j.Env); err != nil {
		return err
	}
	if j.Script != "" {
		for n, line := range strings.Split(j.Script, "\n") {
			if strings.HasPrefix(line, "#SBATCH") || strings.HasPrefix(line, "#SLURM") {
				return bad("Script", "line %d starts with %.7s, which sbatch could read as a directive", n+1, line)
			}
		}
	}
	return nil
}

// checkDirectiveValue accepts what an #SBATCH line carries as one argument once quoted (see quoteDirective):
// sbatch splits the line at blanks outside quotes, ends it at a newline, refuses a carriage return and takes
// an argument that starts with ':' as a heterogeneous-job separator. Control bytes are refused as well.
func checkDirectiveValue(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty")
	case len(s) > maxDirectiveValue:
		return fmt.Errorf("%d bytes, more than %d", len(s), maxDirectiveValue)
	case s[0] == ':':
		return fmt.Errorf("starts with ':', which sbatch reads as a job separator")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			return fmt.Errorf("control byte %#x at %d", c, i)
		}
	}
	return nil
}

// quoteDirective quotes one argument for an #SBATCH line as sbatch's get_argument reads it: single quotes
// group (blanks and '#' inside are kept), and a backslash escapes the next byte, inside quotes too.
func quoteDirective(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' || s[i] == '\'' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('\'')
	return b.String()
}

func isJobNumber(s string) bool {
	if s == "" || len(s) > 18 || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
