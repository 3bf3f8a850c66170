package sge

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hpcship/hpcship/internal/envvar"
	"github.com/hpcship/hpcship/internal/jobscript"
	"github.com/hpcship/hpcship/scheduler"
)

// maxJobName is SoGE's limit on -N.
const maxJobName = 512

// validate checks j against scheduler.Job's rules and Grid Engine's, including what survives a #$ line:
// qsub splits it at blanks, strips quotes, ends it at "#" and knows no backslash escapes.
func (s *SGE) validate(j *scheduler.Job) error {
	if err := j.Validate(); err != nil {
		return err
	}
	bad := func(field, format string, args ...any) error {
		return &scheduler.JobError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if j.Name != "" {
		if err := checkJobName(j.Name); err != nil {
			return bad("Name", "%s", err)
		}
	}
	if j.ParallelEnv != "" {
		if err := checkWord(j.ParallelEnv, `/:@\,`); err != nil {
			return bad("ParallelEnv", "%s", err)
		}
	}
	if s.o.cycleCloud {
		if j.Queue == "" {
			return bad("Queue", "CycleCloud needs exactly one queue per job")
		}
		if err := checkWord(j.Queue, `/:@\*?[]!,`); err != nil {
			return bad("Queue", "CycleCloud needs one plain queue name: %s", err)
		}
		for _, a := range j.Native {
			if a == "-q" || a == "-soft" || a == "-masterq" {
				return bad("Native", "CycleCloud takes the queue from Queue only, not %s", a)
			}
		}
	} else if j.Queue != "" {
		if err := checkWord(j.Queue, ""); err != nil {
			return bad("Queue", "%s", err)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(j.Resources)) {
		v := j.Resources[k]
		if err := checkWord(k, `/:@\*?,=`); err != nil {
			return bad("Resources", "name %s: %s", envvar.Clip(k), err)
		}
		if err := checkWord(v, ","); err != nil {
			return bad("Resources["+k+"]", "%s", err)
		}
	}
	for _, p := range []struct{ field, value, forbidden string }{
		{"WorkDir", j.WorkDir, ""},
		// -o and -e take "[[host]:]path,…".
		{"Stdout", j.Stdout, ":,"},
		{"Stderr", j.Stderr, ":,"},
		{"Shell", j.Shell, ":,"},
		{"Project", j.Project, `/:@\*?,`},
		{"Account", j.Account, ","},
	} {
		if p.value == "" {
			continue
		}
		if err := checkWord(p.value, p.forbidden); err != nil {
			return bad(p.field, "%s", err)
		}
	}
	if err := jobscript.CheckEnv(j.Env); err != nil {
		return err
	}
	for i, id := range j.HoldJobs {
		if err := checkWord(string(id), ","); err != nil {
			return bad(fmt.Sprintf("HoldJobs[%d]", i), "%s", err)
		}
	}
	if j.Script != "" {
		for n, line := range strings.Split(j.Script, "\n") {
			if strings.HasPrefix(line, "#$") {
				return bad("Script", "line %d starts with #$, which qsub would read as a directive", n+1)
			}
		}
	}
	return nil
}

// checkWord accepts printable ASCII without blanks, quotes, "#" or "\" (which a #$ line would split, strip,
// cut or misread) and without the extra forbidden bytes.
func checkWord(s, forbidden string) error {
	if s == "" {
		return fmt.Errorf("empty")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c <= ' ' || c >= 0x7f:
			return fmt.Errorf("byte %#x at %d: only printable ASCII without blanks is allowed", c, i)
		case strings.IndexByte(`"'#\`, c) >= 0 || strings.IndexByte(forbidden, c) >= 0:
			return fmt.Errorf("%q at %d is not allowed", c, i)
		}
	}
	return nil
}

// checkJobName applies SoGE's rules for -N (sge_types(5), verify_str_key): printable ASCII, none of
// / : @ \ * ?, no leading digit, not NONE, ALL or TEMPLATE, at most 512 bytes.
func checkJobName(s string) error {
	if len(s) > maxJobName {
		return fmt.Errorf("%d bytes, more than Grid Engine's %d", len(s), maxJobName)
	}
	if err := checkWord(s, `/:@\*?`); err != nil {
		return err
	}
	if s[0] >= '0' && s[0] <= '9' {
		return fmt.Errorf("starts with a digit")
	}
	for _, kw := range []string{"NONE", "ALL", "TEMPLATE"} {
		if strings.EqualFold(s, kw) {
			return fmt.Errorf("%s is a reserved word", kw)
		}
	}
	return nil
}
