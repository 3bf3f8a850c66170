package jobscript

import (
	"fmt"
	"strings"

	"github.com/hpcship/hpcship/scheduler"
)

// The bounds on an allocation file and the machinefile written from it, the same in the jobscript's reader
// and in Go (scheduler/sge's ParsePEHostfile): far above any real cluster, low enough that a corrupt or
// hostile file cannot make either exhaust memory or disk.
const (
	// MaxHostfileBytes bounds the allocation file: 16 MiB.
	MaxHostfileBytes = 16 << 20
	// MaxHostLines bounds the lines that name a host (a host in several queues has several): 65,536.
	MaxHostLines = 1 << 16
	// MaxHostfileFields bounds the fields of one line together, blanks between them not counted: 64 KiB.
	MaxHostfileFields = 64 << 10
	// MaxHostName bounds a host name, which is made of ASCII letters, digits, '.', '_' and '-'.
	MaxHostName = 255
	// MaxSlotDigits and MaxSlots bound a slot count and the sum of all of them: 1,048,576.
	MaxSlotDigits = 7
	MaxSlots      = 1 << 20
	// MaxMachinefileBytes bounds the machinefile in any format: 16 MiB.
	MaxMachinefileBytes = 16 << 20
)

// IsHostName reports whether s is a host name the machinefile can hold: 1 to 255 ASCII letters, digits, '.',
// '_' and '-'.
func IsHostName(s string) bool {
	if s == "" || len(s) > MaxHostName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// MachinefileSize returns how many bytes a machinefile in format f takes for a host with the given slots.
func MachinefileSize(f scheduler.MachinefileFormat, host string, slots int) int64 {
	digits := int64(len(fmt.Sprint(slots)))
	switch f {
	case scheduler.MachinefileHostSlots:
		return int64(len(host)) + 1 + digits + 1
	case scheduler.MachinefileSlots:
		return (int64(len(host)) + 1) * int64(slots)
	case scheduler.MachinefileOpenMPI:
		return int64(len(host)) + int64(len(" slots=")) + digits + 1
	}
	return int64(len(host)) + 1
}

// Machinefile returns the block of a parallel job's jobscript that writes its machinefile to
// $TMPDIR/<Job.Machinefile.Name> in Job.Machinefile.Format and exports its path as HPCSHIP_MACHINEFILE.
// It reads the allocation from the file named by the environment variable hostsVar (Grid Engine's
// PE_HOSTFILE): lines of "host slots [queue [processors]]", blank lines skipped, a host's slots added up over
// its lines. A missing or unreadable file, or one outside the bounds above (a byte that is not printable
// ASCII, more than 65,536 lines of hosts, fewer than 2 or more than 4 fields, fields above 64 KiB on a
// line, a bad host name, a slot count that is not 1 to 1,048,576, more
// slots in all, a machinefile above 16 MiB) ends the job with status 1 and the reason on stderr.
func Machinefile(j *scheduler.Job, hostsVar string) string {
	name := j.Machinefile.Name
	if name == "" {
		name = scheduler.DefaultMachinefileName
	}
	f := j.Machinefile.Format
	r := strings.NewReplacer(
		"%FORMAT%", f.String(),
		"%VAR%", hostsVar,
		"%NAME%", name,
		"%MAXFILE%", fmt.Sprint(MaxHostfileBytes),
		"%MAXHOST%", fmt.Sprint(MaxHostName),
		"%MAXFIELDS%", fmt.Sprint(MaxHostfileFields),
		"%MAXLINES%", fmt.Sprint(MaxHostLines),
		"%MAXDIGITS%", fmt.Sprint(MaxSlotDigits),
		"%MAXSLOTS%", fmt.Sprint(MaxSlots),
		"%MAXOUT%", fmt.Sprint(MaxMachinefileBytes),
	)
	var size, line string
	switch f {
	case scheduler.MachinefileHostSlots:
		size = `${#hpcship_host} + 2 + ${#hpcship_n}`
		line = `printf '%s:%s\n' "$hpcship_host" "$hpcship_n"`
	case scheduler.MachinefileSlots:
		size = `(${#hpcship_host} + 1) * hpcship_n`
	case scheduler.MachinefileOpenMPI:
		size = `${#hpcship_host} + 8 + ${#hpcship_n}`
		line = `printf '%s slots=%s\n' "$hpcship_host" "$hpcship_n"`
	default:
		size = `${#hpcship_host} + 1`
		line = `printf '%s\n' "$hpcship_host"`
	}
	var b strings.Builder
	b.WriteString(r.Replace(`
# The machinefile (%FORMAT%), from $%VAR%: "host slots [queue [processors]]" lines, at most
# %MAXFILE% bytes, %MAXLINES% hosts and %MAXSLOTS% slots in all. $TMPDIR/machines exists only where the parallel
# environment runs startmpi.sh.
export HPCSHIP_MACHINEFILE="$TMPDIR/%NAME%"
hpcship_hostfile=${%VAR%:-}
hpcship_fail() {
	echo "hpcship: \$%VAR%: $*" >&2
	exit 1
}
if [ ! -r "$hpcship_hostfile" ]; then
	echo "hpcship: no readable \$%VAR% in a parallel job" >&2
	exit 1
fi
hpcship_size=$(wc -c <"$hpcship_hostfile") || exit 1
[ "$hpcship_size" -le %MAXFILE% ] || hpcship_fail "$hpcship_size bytes, more than %MAXFILE%"
if LC_ALL=C grep -aq '[^	 -~]' "$hpcship_hostfile"; then
	hpcship_fail "holds a byte that is not printable ASCII"
fi
hpcship_hosts=()
hpcship_lines=()
declare -A hpcship_host_slots=()
hpcship_lineno=0
hpcship_entries=0
hpcship_total=0
while read -r hpcship_host hpcship_n hpcship_queue hpcship_cpus hpcship_extra || [ -n "$hpcship_host" ]; do
	hpcship_lineno=$((hpcship_lineno + 1))
	[ -n "$hpcship_host" ] || continue
	hpcship_entries=$((hpcship_entries + 1))
	[ "$hpcship_entries" -le %MAXLINES% ] || hpcship_fail "line $hpcship_lineno: more than %MAXLINES% lines of hosts"
	[ -n "$hpcship_n" ] || hpcship_fail "line $hpcship_lineno: want 2 to 4 fields, got 1"
	[ -z "$hpcship_extra" ] || hpcship_fail "line $hpcship_lineno: want 2 to 4 fields, got more"
	hpcship_size=$((${#hpcship_host} + ${#hpcship_n} + ${#hpcship_queue} + ${#hpcship_cpus}))
	[ "$hpcship_size" -le %MAXFIELDS% ] || hpcship_fail "line $hpcship_lineno: fields of $hpcship_size bytes, more than %MAXFIELDS%"
	case $hpcship_host in
	*[!a-zA-Z0-9._-]*) hpcship_fail "line $hpcship_lineno: host name holds a byte other than letters, digits, '.', '_' and '-'" ;;
	esac
	[ "${#hpcship_host}" -le %MAXHOST% ] || hpcship_fail "line $hpcship_lineno: host name longer than %MAXHOST% bytes"
	case $hpcship_n in
	*[!0-9]*) hpcship_fail "line $hpcship_lineno: slot count is not a number from 1 to %MAXSLOTS%" ;;
	esac
	if [ "${#hpcship_n}" -gt %MAXDIGITS% ] || [ $((10#$hpcship_n)) -lt 1 ] || [ $((10#$hpcship_n)) -gt %MAXSLOTS% ]; then
		hpcship_fail "line $hpcship_lineno: slot count is not a number from 1 to %MAXSLOTS%"
	fi
	hpcship_n=$((10#$hpcship_n))
	hpcship_total=$((hpcship_total + hpcship_n))
	[ "$hpcship_total" -le %MAXSLOTS% ] || hpcship_fail "line $hpcship_lineno: more than %MAXSLOTS% slots in all"
	[ -n "${hpcship_host_slots[$hpcship_host]+set}" ] || hpcship_hosts+=("$hpcship_host")
	hpcship_host_slots[$hpcship_host]=$((${hpcship_host_slots[$hpcship_host]:-0} + hpcship_n))
`))
	if f == scheduler.MachinefileSlots {
		// Slots keeps the allocation's line order, so the lines are kept as they come.
		b.WriteString("\thpcship_lines+=(\"$hpcship_host\" \"$hpcship_n\")\n")
	}
	b.WriteString(`done <"$hpcship_hostfile"
hpcship_size=0
for hpcship_host in "${hpcship_hosts[@]}"; do
	hpcship_n=${hpcship_host_slots[$hpcship_host]}
	hpcship_size=$((hpcship_size + ` + size + `))
done
`)
	b.WriteString(r.Replace(`[ "$hpcship_size" -le %MAXOUT% ] || hpcship_fail "the machinefile would take $hpcship_size bytes, more than %MAXOUT%"
`))
	if f == scheduler.MachinefileSlots {
		b.WriteString(`for ((hpcship_i = 0; hpcship_i < ${#hpcship_lines[@]}; hpcship_i += 2)); do
	hpcship_host=${hpcship_lines[hpcship_i]}
	for ((hpcship_k = 0; hpcship_k < hpcship_lines[hpcship_i + 1]; hpcship_k++)); do
		printf '%s\n' "$hpcship_host"
	done
done >"$HPCSHIP_MACHINEFILE" || exit 1
`)
		return b.String()
	}
	b.WriteString(`for hpcship_host in "${hpcship_hosts[@]}"; do
	hpcship_n=${hpcship_host_slots[$hpcship_host]}
	` + line + `
done >"$HPCSHIP_MACHINEFILE" || exit 1
`)
	return b.String()
}
