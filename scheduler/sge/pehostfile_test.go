package sge_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/hpcship/hpcship/scheduler"
	"github.com/hpcship/hpcship/scheduler/sge"
)

func TestParsePEHostfile(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		want      sge.PEHostfile
		wantLine  int
		tooLarge  bool
		hosts     []string
		hostSlots []string
	}{
		{
			name:      "single host, as observed",
			in:        "vm 2 all.q@vm UNDEFINED\n",
			want:      sge.PEHostfile{{Host: "vm", Slots: 2, Queue: "all.q@vm", Processors: "UNDEFINED"}},
			hosts:     []string{"vm"},
			hostSlots: []string{"vm:2"},
		},
		{
			name: "a host in two queues, blank lines, binding, tabs",
			in:   "node1 16 hpc.q@node1 UNDEFINED\n\nnode2\t16 hpc.q@node2 0,0:0,1\nnode1 4 htc.q@node1 UNDEFINED",
			want: sge.PEHostfile{
				{Host: "node1", Slots: 16, Queue: "hpc.q@node1", Processors: "UNDEFINED"},
				{Host: "node2", Slots: 16, Queue: "hpc.q@node2", Processors: "0,0:0,1"},
				{Host: "node1", Slots: 4, Queue: "htc.q@node1", Processors: "UNDEFINED"},
			},
			hosts:     []string{"node1", "node2"},
			hostSlots: []string{"node1:20", "node2:16"},
		},
		{name: "two fields", in: "node1 3\n", want: sge.PEHostfile{{Host: "node1", Slots: 3}}, hosts: []string{"node1"}, hostSlots: []string{"node1:3"}},
		{name: "leading zeros", in: "node1 0000008\n", want: sge.PEHostfile{{Host: "node1", Slots: 8}}, hosts: []string{"node1"}, hostSlots: []string{"node1:8"}},
		{name: "empty", in: "", hosts: []string{}, hostSlots: []string{}},
		{name: "one field", in: "vm 2 all.q@vm UNDEFINED\nvm\n", wantLine: 2},
		{name: "five fields", in: "vm 2 all.q@vm UNDEFINED extra\n", wantLine: 1},
		{name: "zero slots", in: "vm 0 all.q@vm UNDEFINED\n", wantLine: 1},
		{name: "bad slots", in: "vm two all.q@vm UNDEFINED\n", wantLine: 1},
		{name: "signed slots", in: "vm +2 all.q@vm UNDEFINED\n", wantLine: 1},
		{name: "eight digits", in: "vm 00000001\n", wantLine: 1},
		{name: "absurd slots", in: "vm 1 all.q@vm UNDEFINED\nvm 9223372036854775807 all.q@vm UNDEFINED\n", wantLine: 2},
		{name: "slots above the bound", in: "vm 1048577\n", wantLine: 1},
		{name: "slots in all above the bound", in: "a 1048576\nb 1\n", wantLine: 2, tooLarge: true},
		{name: "carriage return", in: "vm 2\r\n", wantLine: 1},
		{name: "NUL", in: "vm 2 q\x00\n", wantLine: 1},
		{name: "host with a colon", in: "fe80::1 2\n", wantLine: 1},
		{name: "host with a dollar", in: "$(reboot) 2\n", wantLine: 1},
		{name: "long host", in: strings.Repeat("h", 256) + " 1\n", wantLine: 1},

		// At each bound, and one above it.
		{name: "slots at the bound", in: "vm 1048576\n", want: sge.PEHostfile{{Host: "vm", Slots: 1048576}},
			hosts: []string{"vm"}, hostSlots: []string{"vm:1048576"}},
		{name: "slots in all at the bound", in: "a 1048575\nb 1\n", want: sge.PEHostfile{{Host: "a", Slots: 1048575}, {Host: "b", Slots: 1}},
			hosts: []string{"a", "b"}, hostSlots: []string{"a:1048575", "b:1"}},
		{name: "seven digits", in: "vm 0000001\n", want: sge.PEHostfile{{Host: "vm", Slots: 1}}, hosts: []string{"vm"}, hostSlots: []string{"vm:1"}},
		{name: "host of 255 bytes", in: strings.Repeat("h", 255) + " 1\n", want: sge.PEHostfile{{Host: strings.Repeat("h", 255), Slots: 1}},
			hosts: []string{strings.Repeat("h", 255)}, hostSlots: []string{strings.Repeat("h", 255) + ":1"}},
		{name: "fields of 64 KiB", in: "h 1 " + strings.Repeat("q", 65536-2) + "\n",
			want: sge.PEHostfile{{Host: "h", Slots: 1, Queue: strings.Repeat("q", 65536-2)}}, hosts: []string{"h"}, hostSlots: []string{"h:1"}},
		{name: "fields of 64 KiB and a byte", in: "h 1 " + strings.Repeat("q", 65536-1) + "\n", wantLine: 1, tooLarge: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sge.ParsePEHostfile(strings.NewReader(tt.in))
			if tt.wantLine > 0 {
				var pe *sge.PEHostfileError
				require.ErrorAs(t, err, &pe)
				assert.Equal(t, tt.wantLine, pe.Line)
				assert.Equal(t, tt.tooLarge, errors.Is(err, sge.ErrPEHostfileTooLarge))
				assert.Less(t, len(err.Error()), 300)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.hosts, append([]string{}, got.UniqueHosts()...))
			assert.Equal(t, tt.hostSlots, got.HostSlots())
		})
	}
}

// TestParsePEHostfileReadError: a hostfile that cannot be read to its end is an error, not the hosts read
// so far.
func TestParsePEHostfileReadError(t *testing.T) {
	broken := errors.New("input/output error")
	hf, err := sge.ParsePEHostfile(io.MultiReader(strings.NewReader("node1 2 all.q@node1 UNDEFINED\n"), iotest.ErrReader(broken)))
	require.ErrorIs(t, err, broken)
	assert.Nil(t, hf)
}

func TestPEHostfileMachinefile(t *testing.T) {
	hf := sge.PEHostfile{{Host: "a", Slots: 2}, {Host: "b", Slots: 1}, {Host: "a", Slots: 1}}
	for f, want := range map[scheduler.MachinefileFormat]string{
		scheduler.MachinefileHosts:     "a\nb\n",
		scheduler.MachinefileHostSlots: "a:3\nb:1\n",
		scheduler.MachinefileSlots:     "a\na\nb\na\n",
		scheduler.MachinefileOpenMPI:   "a slots=3\nb slots=1\n",
	} {
		got, err := hf.Machinefile(f)
		require.NoError(t, err)
		assert.Equal(t, want, string(got), f.String())
	}
	assert.Equal(t, 4, hf.Slots())
	_, err := hf.Machinefile(scheduler.MachinefileFormat(9))
	require.Error(t, err)
	_, err = sge.PEHostfile{{Host: "a b", Slots: 1}}.Machinefile(scheduler.MachinefileHosts)
	require.Error(t, err)
}

// TestPEHostfileLines: 65,536 lines of hosts are the most a file may hold.
func TestPEHostfileLines(t *testing.T) {
	in := strings.Repeat("h 1\n", 65536)
	hf, err := sge.ParsePEHostfile(strings.NewReader(in))
	require.NoError(t, err)
	assert.Len(t, hf, 65536)
	_, err = sge.ParsePEHostfile(strings.NewReader(in + "\n\nh 1\n"))
	var pe *sge.PEHostfileError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 65539, pe.Line)
	require.ErrorIs(t, err, sge.ErrPEHostfileTooLarge)
}

// TestPEHostfileMachinefileChecksItsHosts: a PEHostfile built in code, not parsed, gets the parser's bounds
// from Machinefile.
func TestPEHostfileMachinefileChecksItsHosts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		hf       sge.PEHostfile
		line     int
		tooLarge bool
	}{
		{"at the bounds", sge.PEHostfile{{Host: "a", Slots: 1048575}, {Host: "b", Slots: 1}}, 0, false},
		{"no slots", sge.PEHostfile{{Host: "a", Slots: 1}, {Host: "b", Slots: 0}}, 2, false},
		{"slots of a line above the bound", sge.PEHostfile{{Host: "a", Slots: 1048577}}, 1, false},
		{"slots in all above the bound", sge.PEHostfile{{Host: "a", Slots: 1048576}, {Host: "b", Slots: 1}}, 2, true},
		{"empty host", sge.PEHostfile{{Host: "", Slots: 1}}, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mf, err := tc.hf.Machinefile(scheduler.MachinefileHostSlots)
			if tc.line == 0 {
				require.NoError(t, err)
				assert.Equal(t, "a:1048575\nb:1\n", string(mf))
				return
			}
			var pe *sge.PEHostfileError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tc.line, pe.Line)
			assert.Equal(t, tc.tooLarge, errors.Is(err, sge.ErrPEHostfileTooLarge))
		})
	}
}

// TestPEHostfileMachinefileBound: 552 bytes of hostfile used to make Machinefile(MachinefileSlots) allocate
// 2 GiB. Now the parser bounds the slots in all, and Machinefile refuses, before allocating, a file the
// bounds allow but that would exceed 16 MiB.
func TestPEHostfileMachinefileBound(t *testing.T) {
	var in strings.Builder
	for i := range 4 {
		fmt.Fprintf(&in, "%s%d 1000000\n", strings.Repeat("h", 120), i)
	}
	require.Less(t, in.Len(), 552)
	_, err := sge.ParsePEHostfile(strings.NewReader(in.String()))
	require.ErrorIs(t, err, sge.ErrPEHostfileTooLarge)

	hf, err := sge.ParsePEHostfile(strings.NewReader(strings.Repeat("h", 250) + " 1000000\n"))
	require.NoError(t, err)
	_, err = hf.Machinefile(scheduler.MachinefileSlots)
	require.ErrorIs(t, err, sge.ErrPEHostfileTooLarge)
	mf, err := hf.Machinefile(scheduler.MachinefileHostSlots)
	require.NoError(t, err)
	assert.Len(t, mf, 251+8)

	_, err = sge.ParsePEHostfile(strings.NewReader(strings.Repeat("\n", 16<<20+1)))
	require.ErrorIs(t, err, sge.ErrPEHostfileTooLarge)
}

// TestJobscriptReaderMatchesParsePEHostfile runs the jobscript's $PE_HOSTFILE reader with real bash on
// hostile and ordinary files: it must accept what ParsePEHostfile accepts, write what Machinefile renders,
// and refuse the rest with status 1 and the reason on stderr.
func TestJobscriptReaderMatchesParsePEHostfile(t *testing.T) {
	bash := testenv.Require(t, "bash")[0]
	s, err := sge.New()
	require.NoError(t, err)
	inputs := map[string]string{
		"observed":                        "vm 2 all.q@vm UNDEFINED\n",
		"two queues":                      "node1 4 hpc.q@node1 UNDEFINED\nnode2 08 hpc.q@node2 UNDEFINED\n\nnode1 2 htc.q@node1 0,1:0,2\n",
		"unterminated":                    "node1 1 all.q@node1 UNDEFINED\nnode2 1",
		"tabs and blanks":                 "  node1\t3  \n\t\n",
		"zero slots":                      "vm 0 all.q@vm UNDEFINED\n",
		"extra field":                     "vm 2 all.q@vm UNDEFINED extra\n",
		"one field":                       "vm\n",
		"overflow":                        "vm 9223372036854775808\n",
		"wraps negative":                  "vm 18446744073709551617\n",
		"eight digits":                    "vm 00000001\n",
		"huge count":                      "vm 999999\nvm2 999999\n",
		"carriage return":                 "vm 2\r\n",
		"NUL":                             "vm 2 q\x00x\n",
		"non-ASCII host":                  "nöde 2\n",
		"command in host":                 "$(touch${IFS}pwned) 2\n",
		"subscript host":                  "a[$(touch${IFS}pwned)] 2\n",
		"machinefile too large for slots": strings.Repeat("h", 250) + " 1000000\n",
		"empty":                           "",
	}
	for name, in := range inputs {
		for _, f := range []scheduler.MachinefileFormat{scheduler.MachinefileHosts, scheduler.MachinefileHostSlots, scheduler.MachinefileSlots, scheduler.MachinefileOpenMPI} {
			t.Run(name+"/"+f.String(), func(t *testing.T) {
				dir := t.TempDir()
				hostfile := filepath.Join(dir, "pe_hostfile")
				require.NoError(t, os.WriteFile(hostfile, []byte(in), 0o644))
				script, err := s.Jobscript(scheduler.Job{ParallelEnv: "mpi", Slots: 1, Machinefile: scheduler.Machinefile{Format: f},
					Command: []string{"cat", scheduler.MachinefileArg}})
				require.NoError(t, err)
				cmd := exec.CommandContext(t.Context(), bash)
				cmd.Stdin = strings.NewReader(string(script))
				cmd.Dir = dir
				cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PE_HOSTFILE=" + hostfile, "TMPDIR=" + dir}
				var stdout, stderr strings.Builder
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				runErr := cmd.Run()

				want, err := parseAndRender(in, f)
				assert.NoFileExists(t, filepath.Join(dir, "pwned"))
				if err != nil {
					var exit *exec.ExitError
					require.ErrorAs(t, runErr, &exit, "bash accepted what Go refused (%v): %q", err, stdout.String())
					assert.Equal(t, 1, exit.ExitCode())
					assert.Contains(t, stderr.String(), "hpcship: $PE_HOSTFILE: ")
					return
				}
				require.NoError(t, runErr, "bash refused what Go accepted: %s", stderr.String())
				assert.Equal(t, string(want), stdout.String())
			})
		}
	}
}

func parseAndRender(in string, f scheduler.MachinefileFormat) ([]byte, error) {
	hf, err := sge.ParsePEHostfile(strings.NewReader(in))
	if err != nil {
		return nil, err
	}
	return hf.Machinefile(f)
}

// Reading the allocation of a parallel job from $PE_HOSTFILE, as a Go program running inside the job
// would (os.Open(os.Getenv("PE_HOSTFILE"))), and writing it for mpirun.
func ExampleParsePEHostfile() {
	const peHostfile = "node1 16 hpc.q@node1 UNDEFINED\nnode2 16 hpc.q@node2 UNDEFINED\n"
	hf, err := sge.ParsePEHostfile(strings.NewReader(peHostfile))
	if err != nil {
		fmt.Println(err)
		return
	}
	mf, err := hf.Machinefile(scheduler.MachinefileHostSlots)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(hf.Slots(), "slots")
	fmt.Println(hf.UniqueHosts())
	fmt.Print(string(mf))
	// Output:
	// 32 slots
	// [node1 node2]
	// node1:16
	// node2:16
}

func FuzzParsePEHostfile(f *testing.F) {
	f.Add("vm 2 all.q@vm UNDEFINED\n")
	f.Add("node1 16 hpc.q@node1 UNDEFINED\nnode2 16 hpc.q@node2 0,0:0,1\nnode1 4 htc.q@node1 UNDEFINED")
	f.Add("h 1000000\n")
	f.Fuzz(func(t *testing.T, in string) {
		hf, err := sge.ParsePEHostfile(strings.NewReader(in))
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
		require.LessOrEqual(t, total, 1<<20)
		require.LessOrEqual(t, len(hf.UniqueHosts()), len(hf))
		require.Len(t, hf.HostSlots(), len(hf.UniqueHosts()))
		mf, err := hf.Machinefile(scheduler.MachinefileSlots)
		if err != nil {
			require.ErrorIs(t, err, sge.ErrPEHostfileTooLarge)
			return
		}
		require.LessOrEqual(t, len(mf), 16<<20)
		require.Equal(t, total, strings.Count(string(mf), "\n"))
	})
}
