package scheduler_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/scheduler"
)

func TestParsePEHostfile(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		want      scheduler.PEHostfile
		wantLine  int
		hosts     []string
		hostSlots []string
	}{
		{
			name:      "single host, as observed",
			in:        "vm 2 all.q@vm UNDEFINED\n",
			want:      scheduler.PEHostfile{{Host: "vm", Slots: 2, Queue: "all.q@vm", Processors: "UNDEFINED"}},
			hosts:     []string{"vm"},
			hostSlots: []string{"vm:2"},
		},
		{
			name: "a host in two queues, blank lines, binding",
			in:   "node1 16 hpc.q@node1 UNDEFINED\n\nnode2 16 hpc.q@node2 0,0:0,1\nnode1 4 htc.q@node1 UNDEFINED",
			want: scheduler.PEHostfile{
				{Host: "node1", Slots: 16, Queue: "hpc.q@node1", Processors: "UNDEFINED"},
				{Host: "node2", Slots: 16, Queue: "hpc.q@node2", Processors: "0,0:0,1"},
				{Host: "node1", Slots: 4, Queue: "htc.q@node1", Processors: "UNDEFINED"},
			},
			hosts:     []string{"node1", "node2"},
			hostSlots: []string{"node1:20", "node2:16"},
		},
		{name: "two fields", in: "node1 3\n", want: scheduler.PEHostfile{{Host: "node1", Slots: 3}}, hosts: []string{"node1"}, hostSlots: []string{"node1:3"}},
		{name: "empty", in: "", hosts: []string{}, hostSlots: []string{}},
		{name: "one field", in: "vm 2 all.q@vm UNDEFINED\nvm\n", wantLine: 2},
		{name: "five fields", in: "vm 2 all.q@vm UNDEFINED extra\n", wantLine: 1},
		{name: "zero slots", in: "vm 0 all.q@vm UNDEFINED\n", wantLine: 1},
		{name: "bad slots", in: "vm two all.q@vm UNDEFINED\n", wantLine: 1},
		{name: "absurd slots", in: "vm 1 all.q@vm UNDEFINED\nvm 9223372036854775807 all.q@vm UNDEFINED\n", wantLine: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := scheduler.ParsePEHostfile(strings.NewReader(tt.in))
			if tt.wantLine > 0 {
				var pe *scheduler.PEHostfileError
				require.ErrorAs(t, err, &pe)
				assert.Equal(t, tt.wantLine, pe.Line)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.hosts, append([]string{}, got.UniqueHosts()...))
			assert.Equal(t, tt.hostSlots, got.HostSlots())
		})
	}
}

func TestPEHostfileMachinefile(t *testing.T) {
	hf := scheduler.PEHostfile{{Host: "a", Slots: 2}, {Host: "b", Slots: 1}, {Host: "a", Slots: 1}}
	assert.Equal(t, "a\nb\n", string(hf.Machinefile(scheduler.MachinefileHosts)))
	assert.Equal(t, "a:3\nb:1\n", string(hf.Machinefile(scheduler.MachinefileHostSlots)))
	assert.Equal(t, "a\na\nb\na\n", string(hf.Machinefile(scheduler.MachinefileSlots)))
	assert.Equal(t, 4, hf.Slots())
}

func TestParsePEHostfileLongLine(t *testing.T) {
	_, err := scheduler.ParsePEHostfile(strings.NewReader(strings.Repeat("x", 100<<10) + " 1\n"))
	require.Error(t, err)
}

func FuzzParsePEHostfile(f *testing.F) {
	f.Add("vm 2 all.q@vm UNDEFINED\n")
	f.Add("node1 16 hpc.q@node1 UNDEFINED\nnode2 16 hpc.q@node2 0,0:0,1\nnode1 4 htc.q@node1 UNDEFINED")
	f.Fuzz(func(t *testing.T, in string) {
		hf, err := scheduler.ParsePEHostfile(strings.NewReader(in))
		if err != nil {
			return
		}
		total := 0
		for _, h := range hf {
			require.Positive(t, h.Slots)
			require.NotEmpty(t, h.Host)
			total += h.Slots
		}
		require.Equal(t, total, hf.Slots())
		require.LessOrEqual(t, len(hf.UniqueHosts()), len(hf))
		require.Len(t, hf.HostSlots(), len(hf.UniqueHosts()))
		if total <= 1<<16 {
			require.Equal(t, total, bytes.Count(hf.Machinefile(scheduler.MachinefileSlots), []byte("\n")))
		}
	})
}
