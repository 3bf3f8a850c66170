package sge

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hpcship/hpcship/internal/envvar"
)

// qstatJob is one <job_list> of `qstat -xml`: a job, a running array task, or a range of pending tasks.
type qstatJob struct {
	Number int64
	Name   string
	Owner  string
	// State is the <state> element ("r", "qw", "hqw", "Eqw", …); List is the job_list's state attribute
	// ("running" or "pending"), which puts transferring and error jobs in the wrong list.
	State string
	List  string
	Queue string
	Slots int
	// Tasks is an array task id or a range of pending ones ("2-10:4"); empty for other jobs.
	Tasks string
}

var errNotQstatXML = errors.New("not qstat -xml output")

// parseQstat reads `qstat -xml` output. The format is flat and machine-written, so this scans it directly
// instead of going through encoding/xml, which is ten times slower on a busy cluster's listing. Elements it
// does not know are skipped; it returns an error for output that is not a <job_info> document or breaks
// off inside one.
func parseQstat(data []byte) ([]qstatJob, error) {
	root := bytes.Index(data, []byte("<job_info"))
	if root < 0 {
		return nil, errNotQstatXML
	}
	rest := data[root:]
	if !bytes.Contains(rest, []byte("</job_info>")) {
		return nil, fmt.Errorf("qstat -xml output breaks off: %w", errNotQstatXML)
	}
	open := []byte("<job_list")
	// Room for every <job_list>, but no more than a well-formed one can take (its job number alone is 38
	// bytes of tags), so that a run of bare "<job_list>" cannot allocate ten times its size.
	jobs := make([]qstatJob, 0, min(bytes.Count(rest, open), len(rest)/64))
	for {
		i := bytes.Index(rest, open)
		if i < 0 {
			if len(jobs) == 0 {
				return nil, nil
			}
			return jobs, nil
		}
		rest = rest[i+len(open):]
		end := bytes.IndexByte(rest, '>')
		if end < 0 {
			return nil, fmt.Errorf("unterminated <job_list> tag")
		}
		attrs := rest[:end]
		rest = rest[end+1:]
		if len(attrs) > 0 && attrs[0] != ' ' && attrs[0] != '\t' && attrs[0] != '\n' && attrs[0] != '/' {
			continue // a longer element name such as <job_listing>
		}
		j := qstatJob{List: attr(attrs, "state")}
		if bytes.HasSuffix(attrs, []byte("/")) {
			continue
		}
		var err error
		if rest, err = j.children(rest); err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
}

// children reads the child elements of a job_list up to its end tag and returns what follows.
func (j *qstatJob) children(rest []byte) ([]byte, error) {
	haveNumber := false
	for {
		i := bytes.IndexByte(rest, '<')
		if i < 0 {
			return nil, fmt.Errorf("unterminated <job_list>")
		}
		rest = rest[i+1:]
		if bytes.HasPrefix(rest, []byte("/job_list>")) {
			if !haveNumber {
				return nil, fmt.Errorf("<job_list> without <JB_job_number>")
			}
			return rest[len("/job_list>"):], nil
		}
		end := bytes.IndexByte(rest, '>')
		if end < 0 {
			return nil, fmt.Errorf("unterminated tag in <job_list>")
		}
		tag := rest[:end]
		rest = rest[end+1:]
		if len(tag) == 0 || tag[0] == '/' || tag[0] == '!' || tag[0] == '?' || tag[len(tag)-1] == '/' {
			continue // a stray end tag, a comment or an empty element
		}
		name := tag
		if k := bytes.IndexAny(tag, " \t\r\n"); k >= 0 {
			name = tag[:k]
		}
		// Our elements hold text only, so the next "<" starts their end tag; anything else is nested
		// content, skipped up to the matching end tag.
		k := bytes.IndexByte(rest, '<')
		if k < 0 {
			return nil, fmt.Errorf("unterminated <%s>", name)
		}
		raw := rest[:k]
		after := rest[k:]
		if len(after) < len(name)+3 || after[1] != '/' || !bytes.Equal(after[2:2+len(name)], name) || after[2+len(name)] != '>' {
			closing := append(append([]byte("</"), name...), '>')
			e := bytes.Index(rest, closing)
			if e < 0 {
				return nil, fmt.Errorf("unterminated <%s>", name)
			}
			rest = rest[e+len(closing):]
			continue
		}
		rest = after[len(name)+3:]
		text, err := unescape(raw)
		if err != nil {
			return nil, fmt.Errorf("<%s>: %w", name, err)
		}
		switch string(name) {
		case "JB_job_number":
			n, err := strconv.ParseInt(text, 10, 64)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("job number %s is not a positive number", envvar.Clip(text))
			}
			j.Number, haveNumber = n, true
		case "JB_name":
			j.Name = text
		case "JB_owner":
			j.Owner = text
		case "state":
			j.State = text
		case "queue_name":
			j.Queue = text
		case "slots":
			n, err := strconv.Atoi(text)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("slot count %s is not a number", envvar.Clip(text))
			}
			j.Slots = n
		case "tasks":
			j.Tasks = text
		}
	}
}

// attr returns the value of attribute name in a tag's attribute text, or "".
func attr(attrs []byte, name string) string {
	key := []byte(name + "=")
	for i := 0; ; {
		k := bytes.Index(attrs[i:], key)
		if k < 0 {
			return ""
		}
		k += i
		v := attrs[k+len(key):]
		if (k == 0 || attrs[k-1] == ' ' || attrs[k-1] == '\t' || attrs[k-1] == '\n') && len(v) > 0 && (v[0] == '"' || v[0] == '\'') {
			if e := bytes.IndexByte(v[1:], v[0]); e >= 0 {
				s, err := unescape(v[1 : 1+e])
				if err != nil {
					return ""
				}
				return s
			}
			return ""
		}
		i = k + len(key)
	}
}

// unescape decodes XML character data: the five predefined entities and numeric character references.
func unescape(b []byte) (string, error) {
	if bytes.IndexByte(b, '&') < 0 {
		return string(b), nil
	}
	var sb strings.Builder
	for len(b) > 0 {
		i := bytes.IndexByte(b, '&')
		if i < 0 {
			sb.Write(b)
			break
		}
		sb.Write(b[:i])
		b = b[i+1:]
		semi := bytes.IndexByte(b, ';')
		if semi < 0 {
			return "", fmt.Errorf("unterminated entity")
		}
		ent := string(b[:semi])
		b = b[semi+1:]
		switch ent {
		case "amp":
			sb.WriteByte('&')
		case "lt":
			sb.WriteByte('<')
		case "gt":
			sb.WriteByte('>')
		case "quot":
			sb.WriteByte('"')
		case "apos":
			sb.WriteByte('\'')
		default:
			var n uint64
			var err error
			switch {
			case strings.HasPrefix(ent, "#x"):
				n, err = strconv.ParseUint(ent[2:], 16, 32)
			case strings.HasPrefix(ent, "#"):
				n, err = strconv.ParseUint(ent[1:], 10, 32)
			default:
				return "", fmt.Errorf("unknown entity %s", envvar.Clip("&"+ent+";"))
			}
			if err != nil || n > 0x10FFFF {
				return "", fmt.Errorf("bad character reference %s", envvar.Clip("&"+ent+";"))
			}
			sb.WriteRune(rune(n))
		}
	}
	return sb.String(), nil
}
