package jobscript

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/scheduler"
)

func TestIsHostName(t *testing.T) {
	for _, tt := range []struct {
		s    string
		want bool
	}{
		{"node-1.cluster_a", true}, {"a", true}, {"", false},
		{strings.Repeat("h", 255), true}, {strings.Repeat("h", 256), false},
		{"a", true}, {"z", true}, {"A", true}, {"Z", true}, {"0", true}, {"9", true}, {".", true}, {"_", true}, {"-", true},
		{"`", false}, {"{", false}, {"@", false}, {"[", false}, {"/", false}, {":", false}, {",", false}, {" ", false},
		{"é", false}, {"\x00", false}, {"node 1", false},
	} {
		assert.Equal(t, tt.want, IsHostName(tt.s), "%q", tt.s)
	}
}

// runMachinefile runs the machinefile block with bash on a PE_HOSTFILE holding hostfile and returns the
// machinefile, the output and the exit status.
func runMachinefile(t *testing.T, j *scheduler.Job, hostfile string) (machinefile, out string, code int) {
	t.Helper()
	dir := t.TempDir()
	hf := filepath.Join(dir, "pe_hostfile")
	require.NoError(t, os.WriteFile(hf, []byte(hostfile), 0o644))
	script := Machinefile(j, "PE_HOSTFILE") + `echo "machinefile: $HPCSHIP_MACHINEFILE"` + "\n"
	out, code = runBash(t, script, dir, "PATH=/usr/bin:/bin", "TMPDIR="+dir, "PE_HOSTFILE="+hf)
	name := j.Machinefile.Name
	if name == "" {
		name = scheduler.DefaultMachinefileName
	}
	if code == 0 {
		assert.Equal(t, "machinefile: "+filepath.Join(dir, name)+"\n", out)
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		machinefile = string(b)
	}
	return machinefile, out, code
}

// TestMachinefileFormats writes each format with bash from one allocation, a host in two queues, and checks
// that MachinefileSize gives the bytes the jobscript writes.
func TestMachinefileFormats(t *testing.T) {
	alloc := "node1 2 all.q@node1 UNDEFINED\nnode2 1 all.q@node2 UNDEFINED\n\nnode1 1 other.q@node1\nnode3 1"
	slots := map[string]int{"node1": 3, "node2": 1, "node3": 1}
	for _, tt := range []struct {
		format scheduler.MachinefileFormat
		name   string
		want   string
	}{
		{scheduler.MachinefileHosts, "", "node1\nnode2\nnode3\n"},
		{scheduler.MachinefileHostSlots, "hydra_hosts", "node1:3\nnode2:1\nnode3:1\n"},
		{scheduler.MachinefileSlots, "", "node1\nnode1\nnode2\nnode1\nnode3\n"},
		{scheduler.MachinefileOpenMPI, "ompi", "node1 slots=3\nnode2 slots=1\nnode3 slots=1\n"},
	} {
		t.Run(tt.format.String(), func(t *testing.T) {
			j := &scheduler.Job{Machinefile: scheduler.Machinefile{Format: tt.format, Name: tt.name}}
			got, out, code := runMachinefile(t, j, alloc)
			require.Equal(t, 0, code, out)
			assert.Equal(t, tt.want, got)
			var size int64
			for host, n := range slots {
				size += MachinefileSize(tt.format, host, n)
			}
			assert.Equal(t, int64(len(got)), size, "MachinefileSize")
		})
	}
	assert.Equal(t, int64(len("node1:1048576\n")), MachinefileSize(scheduler.MachinefileHostSlots, "node1", 1<<20))
	assert.Equal(t, int64(len("node1 slots=12\n")), MachinefileSize(scheduler.MachinefileOpenMPI, "node1", 12))
}

// TestMachinefileRefuses: each bound of the allocation file at and beyond its limit; a refusal ends the job
// with status 1 and says why.
func TestMachinefileRefuses(t *testing.T) {
	j := &scheduler.Job{}
	long := strings.Repeat("h", 255)
	tests := []struct {
		name     string
		hostfile string
		wantErr  string // empty: accepted
	}{
		{name: "host name of 255 bytes", hostfile: long + " 1\n"},
		{name: "host name of 256 bytes", hostfile: long + "h 1\n", wantErr: "host name longer than 255 bytes"},
		{name: "host name with a bad byte", hostfile: "node:1 1\n", wantErr: "host name holds a byte"},
		{name: "byte that is not printable ASCII", hostfile: "node\x01 1\n", wantErr: "not printable ASCII"},
		{name: "tab between fields", hostfile: "node\t1\n"},
		{name: "one field", hostfile: "node\n", wantErr: "want 2 to 4 fields, got 1"},
		{name: "four fields", hostfile: "node 1 q cpus\n"},
		{name: "five fields", hostfile: "node 1 q cpus extra\n", wantErr: "want 2 to 4 fields, got more"},
		{name: "no slots", hostfile: "node 0\n", wantErr: "slot count is not a number from 1 to 1048576"},
		{name: "one slot with leading zeros", hostfile: "node 0000001\n"},
		{name: "eight digits", hostfile: "node 00000001\n", wantErr: "slot count is not a number"},
		{name: "slots not a number", hostfile: "node x\n", wantErr: "slot count is not a number"},
		{name: "most slots", hostfile: "node 1048576\n"},
		{name: "one slot too many", hostfile: "node 1048577\n", wantErr: "slot count is not a number from 1 to 1048576"},
		{name: "most slots in all", hostfile: "a 1048575\nb 1\n"},
		{name: "one slot too many in all", hostfile: "a 1048576\nb 1\n", wantErr: "line 2: more than 1048576 slots in all"},
		{name: "blank lines only", hostfile: "\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, out, code := runMachinefile(t, j, tt.hostfile)
			if tt.wantErr == "" {
				assert.Equal(t, 0, code, out)
				return
			}
			assert.Equal(t, 1, code, out)
			assert.Contains(t, out, "hpcship: $PE_HOSTFILE: ")
			assert.Contains(t, out, tt.wantErr)
		})
	}
}

func TestMachinefileWithoutAllocation(t *testing.T) {
	dir := t.TempDir()
	out, code := runBash(t, Machinefile(&scheduler.Job{}, "PE_HOSTFILE"), dir, "PATH=/usr/bin:/bin", "TMPDIR="+dir)
	assert.Equal(t, 1, code)
	assert.Equal(t, "hpcship: no readable $PE_HOSTFILE in a parallel job\n", out)
}

// TestMachinefileSizeLimit: a machinefile that would pass 16 MiB is refused before it is written; at most
// slots, one line per slot of a 16-byte host name takes 17 MiB.
func TestMachinefileSizeLimit(t *testing.T) {
	host := strings.Repeat("h", 16)
	j := &scheduler.Job{Machinefile: scheduler.Machinefile{Format: scheduler.MachinefileSlots}}
	_, out, code := runMachinefile(t, j, host+" 1048576\n")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "the machinefile would take 17825792 bytes, more than 16777216")
	assert.Equal(t, int64(17825792), MachinefileSize(scheduler.MachinefileSlots, host, 1<<20))
}
