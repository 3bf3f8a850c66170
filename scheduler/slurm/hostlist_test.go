package slurm

import (
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/hpcship/hpcship/scheduler"
)

var hostlistCases = []struct {
	name string
	expr string
	want []string
}{
	{"single", "vm", []string{"vm"}},
	{"empty", "", []string{}},
	{"list", "a,b c\td\ne", []string{"a", "b", "c", "d", "e"}},
	{"separators only", " ,, ", []string{}},
	{"range", "node[1-3]", []string{"node1", "node2", "node3"}},
	{"padded", "node[08-11]", []string{"node08", "node09", "node10", "node11"}},
	{"padding from the first number", "node[8-10]", []string{"node8", "node9", "node10"}},
	{"padding wider than hi", "n[001-3]", []string{"n001", "n002", "n003"}},
	{"list in brackets", "node[01-02,07]", []string{"node01", "node02", "node07"}},
	{"mixed widths", "n[1,02,003-004]", []string{"n1", "n02", "n003", "n004"}},
	{"several expressions", "node[01-04,07],gpu[1-2]", []string{"node01", "node02", "node03", "node04", "node07", "gpu1", "gpu2"}},
	{"text between brackets", "n[1-2]-[3-4]", []string{"n1-3", "n1-4", "n2-3", "n2-4"}},
	{"two brackets", "r[1-2]n[1-2]", []string{"r1n1", "r1n2", "r2n1", "r2n2"}},
	{"two padded brackets", "rack[0-1]_blade[08-09]", []string{"rack0_blade08", "rack0_blade09", "rack1_blade08", "rack1_blade09"}},
	{"no prefix", "[1-2]", []string{"1", "2"}},
	{"digits before the bracket", "node1[0-1]", []string{"node10", "node11"}},
	{"duplicates kept", "a,a,n[1-2],n1", []string{"a", "a", "n1", "n2", "n1"}},
	{"single number", "n[5]", []string{"n5"}},
	{"one-host range", "n[3-3]", []string{"n3"}},
	{"zero", "n[0-1]", []string{"n0", "n1"}},
	{"dotted names", "ip-10-0-0-[4-5]", []string{"ip-10-0-0-4", "ip-10-0-0-5"}},
	{"big range", "n[65530-65535]", []string{"n65530", "n65531", "n65532", "n65533", "n65534", "n65535"}},
}

func TestExpandHostlist(t *testing.T) {
	for _, tc := range hostlistCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ExpandHostlist(tc.expr)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestExpandHostlistScontrol checks the cases against Slurm's own expansion where scontrol is installed.
// `scontrol show hostnames` expands without a controller.
func TestExpandHostlistScontrol(t *testing.T) {
	scontrol := testenv.Require(t, "scontrol")
	if scontrol == nil {
		return
	}
	for _, tc := range hostlistCases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.CommandContext(t.Context(), scontrol[0], "show", "hostnames", tc.expr).Output()
			require.NoError(t, err)
			got, err := ExpandHostlist(tc.expr)
			require.NoError(t, err)
			assert.Equal(t, strings.Fields(string(out)), got)
		})
	}
}

// hostlistErrorCases are rejected; slurmRejects says whether Slurm's own parser rejects them too (else it
// guesses a meaning).
var hostlistErrorCases = []struct {
	name, expr, reason string
	slurmRejects       bool
}{
	{"unclosed", "n[1-2", "'[' without ']'", false},
	{"unopened", "n1-2]", "']' without '['", false},
	{"nested", "n[1-[2]]", "brackets do not nest", true},
	{"empty brackets", "n[]", "empty brackets", true},
	{"empty item", "n[1,,2]", "a range needs a number", true},
	{"open range", "n[1-]", "a range needs a number", false},
	{"negative", "n[-1]", "a range needs a number", true},
	{"double dash", "n[1--2]", "only digits", true},
	{"backwards", "n[3-1]", "runs backwards", true},
	{"letters", "n[a-b]", "only digits", true},
	{"hex", "n[0x1]", "only digits", true},
	{"step", "n[1-9:2]", "only digits", true},
	{"blank", "n[1-2 ]", "only digits", true},
	{"suffix", "n[1-2]-ib", "text after the last bracket", true},
	{"domain", "n[1-2].internal", "text after the last bracket", true},
	{"digit suffix", "n[1-2]1", "text after the last bracket", true},
	{"too long a number", "n[1234567890123456789]", "more than 18 digits", false},
	{"too many in a range", "n[0-65536]", "more than 65536 hosts", true},
	{"too many in a product", "a[1-300]b[1-300]", "more than 65536 hosts", false},
	{"too many in all", "a[1-40000],b[1-40000]", "more than 65536 hosts", false},
	{"too long a name", strings.Repeat("x", 250) + "[100000]", "longer than 255 bytes", false},
	{"too many bytes", strings.Repeat("x", 250) + "[1-60000]," + strings.Repeat("y", 250) + "[1-60000]", "more than", false},
	{"NUL", "a\x00b", "NUL", false},
}

// TestExpandHostlistScontrolErrors checks that Slurm rejects what the table says it rejects.
func TestExpandHostlistScontrolErrors(t *testing.T) {
	scontrol := testenv.Require(t, "scontrol")
	if scontrol == nil {
		return
	}
	for _, tc := range hostlistErrorCases {
		if !tc.slurmRejects {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			out, _ := exec.CommandContext(t.Context(), scontrol[0], "show", "hostnames", tc.expr).CombinedOutput()
			assert.Contains(t, string(out), "Invalid hostlist")
		})
	}
}

func TestExpandHostlistErrors(t *testing.T) {
	for _, tc := range hostlistErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ExpandHostlist(tc.expr)
			var he *HostlistError
			require.ErrorAs(t, err, &he)
			assert.Contains(t, he.Reason, tc.reason)
			assert.Nil(t, got)
		})
	}
}

func TestParseTasksPerNode(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{in: "2", want: []int{2}},
		{in: "2(x3),1", want: []int{2, 2, 2, 1}},
		{in: "1,4(x2)", want: []int{1, 4, 4}},
		{in: "", wantErr: true},
		{in: "0", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "+1", wantErr: true},
		{in: "2(x0)", wantErr: true},
		{in: "2(x3", wantErr: true},
		{in: "2(3)", wantErr: true},
		{in: "2,,1", wantErr: true},
		{in: "1(x65537)", wantErr: true},
		{in: "1(x40000),1(x40000)", wantErr: true},
		{in: "2097152", wantErr: true},
		{in: "1048576,1", wantErr: true},
		{in: "17(x65536)", wantErr: true},
		{in: "16(x65536)", want: slices.Repeat([]int{16}, 65536)},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseTasksPerNode(tc.in)
			if tc.wantErr {
				var he *HostlistError
				require.ErrorAs(t, err, &he)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestAllocationMachinefile(t *testing.T) {
	a, err := ParseAllocation("n[1-2],m1,n1", "2(x2),3,1")
	require.NoError(t, err)
	assert.Equal(t, Allocation{{"n1", 2}, {"n2", 2}, {"m1", 3}, {"n1", 1}}, a)
	assert.Equal(t, 8, a.Tasks())
	for f, want := range map[scheduler.MachinefileFormat]string{
		scheduler.MachinefileHosts:     "n1\nn2\nm1\n",
		scheduler.MachinefileHostSlots: "n1:3\nn2:2\nm1:3\n",
		scheduler.MachinefileSlots:     "n1\nn1\nn2\nn2\nm1\nm1\nm1\nn1\n",
		scheduler.MachinefileOpenMPI:   "n1 slots=3\nn2 slots=2\nm1 slots=3\n",
	} {
		got, err := a.Machinefile(f)
		require.NoError(t, err)
		assert.Equal(t, want, string(got), f.String())
	}

	// 2^20 tasks on 255-byte hosts: 256 MiB as one host per task, refused; 2 lines otherwise.
	long := strings.Repeat("x", 254)
	a, err = ParseAllocation(long+"[1-2]", "524288(x2)")
	require.NoError(t, err)
	_, err = a.Machinefile(scheduler.MachinefileSlots)
	require.ErrorIs(t, err, ErrAllocationTooLarge)
	mf, err := a.Machinefile(scheduler.MachinefileHostSlots)
	require.NoError(t, err)
	assert.Len(t, mf, 2*(255+1+6+1))

	a, err = ParseAllocation("vm", "")
	require.NoError(t, err)
	assert.Equal(t, Allocation{{"vm", 1}}, a)

	_, err = ParseAllocation("n[1-3]", "2(x2)")
	var he *HostlistError
	require.ErrorAs(t, err, &he)
	assert.Contains(t, he.Reason, "2 task counts for 3 hosts")
	_, err = ParseAllocation("", "1")
	require.ErrorAs(t, err, &he)
	_, err = ParseAllocation("n[1-2", "")
	require.ErrorAs(t, err, &he)
	assert.Contains(t, he.Reason, "'[' without ']'", "the hostlist's own error, not a missing host")
	_, err = ParseAllocation("a:b", "1")
	require.ErrorAs(t, err, &he, "a host name the jobscript refuses")
}

func TestAllocationFromEnv(t *testing.T) {
	t.Setenv("SLURM_JOB_NODELIST", "gpu[1-2]")
	t.Setenv("SLURM_TASKS_PER_NODE", "4(x2)")
	a, err := AllocationFromEnv()
	require.NoError(t, err)
	mf, err := a.Machinefile(scheduler.MachinefileHostSlots)
	require.NoError(t, err)
	assert.Equal(t, "gpu1:4\ngpu2:4\n", string(mf))
	t.Setenv("SLURM_JOB_NODELIST", "")
	_, err = AllocationFromEnv()
	require.Error(t, err)
}

func FuzzExpandHostlist(f *testing.F) {
	for _, tc := range hostlistCases {
		f.Add(tc.expr)
	}
	f.Add("n[0-65535]")
	f.Add("a[1-9]b[1-9]c[1-9]d[1-9]e[1-9]")
	f.Add("n[1-2")
	f.Fuzz(func(t *testing.T, expr string) {
		hosts, err := ExpandHostlist(expr)
		if err != nil {
			var he *HostlistError
			if !errors.As(err, &he) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if hosts != nil {
				t.Fatalf("hosts %q with an error", hosts)
			}
			return
		}
		if len(hosts) > MaxHostlistHosts {
			t.Fatalf("%d hosts", len(hosts))
		}
		size := 0
		for _, h := range hosts {
			size += len(h)
			if h == "" || len(h) > maxHostName || strings.ContainsAny(h, ", \t\n[]\x00") {
				t.Fatalf("bad host %q", h)
			}
		}
		if size > MaxHostlistBytes {
			t.Fatalf("%d bytes", size)
		}
		// The hosts joined by commas are an expression of the same hosts.
		again, err := ExpandHostlist(strings.Join(hosts, ","))
		if err != nil || !equalStrings(again, hosts) {
			t.Fatalf("re-expanding %q: %q, %v", hosts, again, err)
		}
	})
}

func FuzzParseTasksPerNode(f *testing.F) {
	for _, s := range []string{"2", "2(x3),1", "1(x65536)", "3(x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		counts, err := ParseTasksPerNode(s)
		if err != nil {
			return
		}
		if len(counts) == 0 || len(counts) > MaxHostlistHosts {
			t.Fatalf("%d counts", len(counts))
		}
		total := 0
		for _, n := range counts {
			if n < 1 || n > maxNodeTasks {
				t.Fatalf("count %d", n)
			}
			total += n
		}
		if total > maxNodeTasks {
			t.Fatalf("%d tasks", total)
		}
	})
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestExpandHostlistAtItsBounds: what is exactly at a bound expands; one more is the error of the table
// above.
func TestExpandHostlistAtItsBounds(t *testing.T) {
	for _, tc := range []struct {
		name, expr string
		n          int
		last       string
	}{
		{"65536 hosts in a range", "n[0-65535]", 65536, "n65535"},
		{"65536 hosts in a product", "a[1-256]b[1-256]", 65536, "a256b256"},
		{"65536 hosts in all", "a[1-32768],b[1-32768]", 65536, "b32768"},
		{"a name of 255 bytes", strings.Repeat("x", 250) + "[10000]", 1, strings.Repeat("x", 250) + "10000"},
		{"18 digits", "n[123456789012345678]", 1, "n123456789012345678"},
		{"padding kept to the widest", "n[0098-0100]", 3, "n0100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ExpandHostlist(tc.expr)
			require.NoError(t, err)
			require.Len(t, got, tc.n)
			assert.Equal(t, tc.last, got[len(got)-1])
		})
	}
}

// TestAllocationMachinefileAtItsBound: 65,536 hosts of 255 bytes make a machinefile of exactly 16 MiB in
// MachinefileHosts, which is allowed; their "host:1" lines are two bytes longer each, which is not.
func TestAllocationMachinefileAtItsBound(t *testing.T) {
	a := make(Allocation, 65536)
	for i := range a {
		a[i] = NodeTasks{Host: fmt.Sprintf("%s%05d", strings.Repeat("x", 250), i), Tasks: 1}
	}
	mf, err := a.Machinefile(scheduler.MachinefileHosts)
	require.NoError(t, err)
	assert.Len(t, mf, 16<<20)
	_, err = a.Machinefile(scheduler.MachinefileHostSlots)
	require.ErrorIs(t, err, ErrAllocationTooLarge)
}
