package imb

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func parseFile(t *testing.T, name string) []Benchmark {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	require.NoError(t, err)
	defer f.Close()
	got, err := Parse(f)
	require.NoError(t, err)
	return got
}

// The IMB 4.0 PingPong sample from Azure's RDMA cluster documentation (an A9 pair).
func TestParseAzureSample(t *testing.T) {
	got := parseFile(t, "azure-a9-pingpong.txt")
	require.Len(t, got, 1)
	b := got[0]
	assert.Equal(t, "PingPong", b.Name)
	assert.False(t, b.Multi)
	assert.Equal(t, 2, b.Processes)
	assert.Equal(t, 1, b.Groups)
	assert.Equal(t, 0, b.Waiting)
	assert.Equal(t, []Column{ColumnBytes, ColumnRepetitions, ColumnTime, ColumnMBytesPerSec}, b.Columns)
	assert.Equal(t, 31, b.Line)
	require.Len(t, b.Rows, 24)
	assert.Equal(t, Row{Bytes: 0, Repetitions: 1000, Time: 2.23, MBytesPerSec: 0, Line: 35}, b.Rows[0])
	assert.Equal(t, Row{Bytes: 512, Repetitions: 1000, Time: 3.09, MBytesPerSec: 157.99, Line: 45}, b.Rows[10])
	assert.Equal(t, Row{Bytes: 4194304, Repetitions: 10, Time: 1082.94, MBytesPerSec: 3693.63, Line: 58}, b.Rows[23])
	assert.Equal(t, int64(1), b.Rows[1].Bytes)
	for i := 2; i < len(b.Rows); i++ {
		assert.Equal(t, b.Rows[i-1].Bytes*2, b.Rows[i].Bytes, "row %d", i)
	}
}

// A four-rank IMB 2021 run written to IMB_output.c's formats: PingPong with two
// processes waiting, Allreduce and Barrier at 2 and 4 processes, and rows that failed.
func TestParseMultiBenchmark(t *testing.T) {
	got := parseFile(t, "pingpong-allreduce-barrier.txt")
	require.Len(t, got, 5)

	pp := got[0]
	assert.Equal(t, "PingPong", pp.Name)
	assert.Equal(t, 2, pp.Processes)
	assert.Equal(t, 2, pp.Waiting)
	require.Len(t, pp.Rows, 4)
	assert.InDelta(t, 340.88, pp.Rows[3].Time, 0)
	assert.InDelta(t, 12304.46, pp.Rows[3].MBytesPerSec, 0)

	ar2, ar4 := got[1], got[2]
	for _, ar := range []Benchmark{ar2, ar4} {
		assert.Equal(t, "Allreduce", ar.Name)
		assert.Equal(t, []Column{ColumnBytes, ColumnRepetitions, ColumnTimeMin, ColumnTimeMax, ColumnTimeAvg}, ar.Columns)
		assert.True(t, ar.Has(ColumnTimeAvg))
		assert.False(t, ar.Has(ColumnTime))
		require.Len(t, ar.Rows, 4)
		assert.Equal(t, int64(0), ar.Rows[0].Bytes)
		assert.Equal(t, int64(1000), ar.Rows[0].Repetitions)
	}
	assert.Equal(t, 2, ar2.Processes)
	assert.Equal(t, 4, ar4.Processes)
	assert.Equal(t, 0, ar4.Waiting)
	assert.InDelta(t, 3.41, ar2.Rows[2].TimeMax, 0)
	assert.InDelta(t, 5.07, ar4.Rows[2].TimeAvg, 0)

	oom := ar2.Rows[3]
	assert.Equal(t, OutOfMemory, oom.Failure)
	assert.Equal(t, int64(4194304), oom.Bytes)
	assert.Equal(t, int64(0), oom.Repetitions)
	assert.True(t, strings.HasPrefix(oom.FailureDetail, "needed X=   1.025 GB"), oom.FailureDetail)
	assert.Equal(t, TimeOut, ar4.Rows[3].Failure)
	assert.Contains(t, ar4.Rows[3].FailureDetail, "SECS_PER_SAMPLE")

	for i, procs := range map[int]int{3: 2, 4: 4} {
		br := got[i]
		assert.Equal(t, "Barrier", br.Name)
		assert.Equal(t, procs, br.Processes)
		assert.Equal(t, []Column{ColumnRepetitions, ColumnTimeMin, ColumnTimeMax, ColumnTimeAvg}, br.Columns)
		assert.False(t, br.Has(ColumnBytes))
		require.Len(t, br.Rows, 1)
		assert.Equal(t, int64(1000), br.Rows[0].Repetitions)
	}
	assert.InDelta(t, 3.49, got[4].Rows[0].TimeMax, 0)
}

func TestParseFormats(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Benchmark
	}{
		{
			name: "IMB-P2P with Msg/sec",
			in: "# Benchmarking PingPong\n# #processes = 2\n" +
				"        #bytes #repetitions      t[usec]   Mbytes/sec      Msg/sec\n" +
				"             0       100000         0.36         0.00      2770498\n",
			want: Benchmark{Name: "PingPong", Processes: 2, Groups: 1, Line: 1,
				Columns: []Column{ColumnBytes, ColumnRepetitions, ColumnTime, ColumnMBytesPerSec, ColumnMsgPerSec},
				Rows:    []Row{{Repetitions: 100000, Time: 0.36, MsgPerSec: 2770498, Line: 4}}},
		},
		{
			name: "-multi 1 with groups, blank lines and Group column",
			in: "#---\n# Benchmarking Multi-PingPong \n\n# ( 2 groups of 2 processes each running simultaneous ) \n" +
				"# Group  0:     0    1 \n#\n# Group  1:     2    3 \n#\n#---\n" +
				"        Group       #bytes #repetitions      t[usec]   Mbytes/sec\n\n" +
				"            0            0         1000         1.50         0.00\n" +
				"            1            0         1000         1.60         0.00\n\n" +
				"            0            8 int-overflow.; The production rank*size caused int overflow for given sample\n" +
				"\n# All processes entering MPI_Finalize\n",
			want: Benchmark{Name: "PingPong", Multi: true, Processes: 2, Groups: 2, Line: 2,
				Columns: []Column{ColumnGroup, ColumnBytes, ColumnRepetitions, ColumnTime, ColumnMBytesPerSec},
				Rows: []Row{
					{Group: 0, Repetitions: 1000, Time: 1.5, Line: 12},
					{Group: 1, Repetitions: 1000, Time: 1.6, Line: 13},
					{Group: 0, Bytes: 8, Failure: IntOverflow, FailureDetail: "The production rank*size caused int overflow for given sample", Line: 15},
				}},
		},
		{
			name: "Sendrecv with bandwidth, rank order, aggregate mode and CHECK defects",
			in: "# Benchmarking Sendrecv \n# #processes = 4; rank order (rowwise): \n#     0    1 \n# \n#     2    3 \n# \n" +
				"#    MODE: AGGREGATE \n#\n" +
				"       #bytes #repetitions  t_min[usec]  t_max[usec]  t_avg[usec]   Mbytes/sec      defects\n" +
				"         1024         1000         2.00         2.50         2.25       819.20         0.00\n",
			want: Benchmark{Name: "Sendrecv", Processes: 4, Groups: 1, Mode: "AGGREGATE", Line: 1,
				Columns: []Column{ColumnBytes, ColumnRepetitions, ColumnTimeMin, ColumnTimeMax, ColumnTimeAvg, ColumnMBytesPerSec, ColumnDefects},
				Rows:    []Row{{Bytes: 1024, Repetitions: 1000, TimeMin: 2, TimeMax: 2.5, TimeAvg: 2.25, MBytesPerSec: 819.2, Line: 10}}},
		},
		{
			name: "IMB-NBC overlap and Ibarrier sync form",
			in: "# Benchmarking Iallreduce \n# #processes = 2 \n" +
				"       #bytes #repetitions t_ovrl[usec] t_pure[usec]  t_CPU[usec]   overlap[%]\n" +
				"            4         1000         5.10         2.00         4.00        72.50\n",
			want: Benchmark{Name: "Iallreduce", Processes: 2, Groups: 1, Line: 1,
				Columns: []Column{ColumnBytes, ColumnRepetitions, ColumnTimeOverlap, ColumnTimePure, ColumnTimeCPU, ColumnOverlap},
				Rows:    []Row{{Bytes: 4, Repetitions: 1000, TimeOverlap: 5.1, TimePure: 2, TimeCPU: 4, Overlap: 72.5, Line: 4}}},
		},
		{
			name: "Intel MPI debug output around the table and a missing final newline",
			in: "[0] MPI startup(): Intel(R) MPI Library, Version 2021.13\n[0] MPI startup(): libfabric provider: mlx\n" +
				"# Benchmarking Barrier \n# #processes = 2 \n #repetitions  t_min[usec]  t_max[usec]  t_avg[usec]\n         1000         1.71         1.72         1.72",
			want: Benchmark{Name: "Barrier", Processes: 2, Groups: 1, Line: 3,
				Columns: []Column{ColumnRepetitions, ColumnTimeMin, ColumnTimeMax, ColumnTimeAvg},
				Rows:    []Row{{Repetitions: 1000, TimeMin: 1.71, TimeMax: 1.72, TimeAvg: 1.72, Line: 6}}},
		},
		{
			name: "table with no rows",
			in:   "# Benchmarking PingPong\n# #processes = 2\n       #bytes #repetitions      t[usec]   Mbytes/sec\n\n",
			want: Benchmark{Name: "PingPong", Processes: 2, Groups: 1, Line: 1,
				Columns: []Column{ColumnBytes, ColumnRepetitions, ColumnTime, ColumnMBytesPerSec}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.in))
			require.NoError(t, err)
			require.Len(t, got, 1)
			assert.Equal(t, tt.want, got[0])
		})
	}
}

func TestParseNothing(t *testing.T) {
	got, err := Parse(strings.NewReader("# just a preamble\nno benchmarks here\n"))
	require.NoError(t, err)
	assert.Empty(t, got)
}

func TestParseMalformed(t *testing.T) {
	head := "# Benchmarking PingPong\n# #processes = 2\n       #bytes #repetitions      t[usec]   Mbytes/sec\n"
	tests := []struct {
		name string
		in   string
		line int
		kept int // benchmarks returned before the error
	}{
		{name: "short row", in: head + "   0  1000  2.23\n", line: 4},
		{name: "long row", in: head + "   0  1000  2.23  0.00  9\n", line: 4},
		{name: "word in a number column", in: head + "   0  many  2.23  0.00\n", line: 4},
		{name: "negative size", in: head + "  -1  1000  2.23  0.00\n", line: 4},
		{name: "NaN time", in: head + "   0  1000   NaN  0.00\n", line: 4},
		{name: "infinite bandwidth", in: head + "   0  1000  2.23  +Inf\n", line: 4},
		{name: "huge size", in: head + "   99999999999999999999  1000  2.23  0.00\n", line: 4},
		{name: "failure row without size", in: head + "   out-of-mem.; needed\n", line: 4},
		{name: "unknown column", in: "# Benchmarking X\n# #processes = 2\n  #bytes #repetitions  latency\n", line: 3},
		{name: "duplicate column", in: "# Benchmarking X\n# #processes = 2\n  #bytes #bytes #repetitions\n", line: 3},
		{name: "no repetitions column", in: "# Benchmarking X\n# #processes = 2\n  #bytes t[usec]\n", line: 3},
		{name: "no process count", in: "# Benchmarking X\n #repetitions t_min[usec]\n", line: 2},
		{name: "bad process count", in: "# Benchmarking X\n# #processes = two\n", line: 2},
		{name: "zero processes", in: "# Benchmarking X\n# #processes = 0\n", line: 2},
		{name: "bad waiting count", in: "# Benchmarking X\n# ( x additional processes waiting in MPI_Barrier)\n", line: 2},
		{name: "bad group counts", in: "# Benchmarking X\n# ( 2 groups of y processes each running simultaneous )\n", line: 2},
		{name: "no name", in: "# Benchmarking \n", line: 1},
		{name: "two-word name", in: "# Benchmarking Ping Pong\n", line: 1},
		{name: "header missing before next benchmark", in: "# Benchmarking A\n# #processes = 2\n# Benchmarking B\n", line: 3},
		{name: "header missing before a complete benchmark", line: 3,
			in: "# Benchmarking A\n# #processes = 2\n# Benchmarking B\n# #processes = 2\n #repetitions t_min[usec]\n 1000 1.50\n"},
		{name: "text before the header", line: 3,
			in: "# Benchmarking A\n# #processes = 2\nmpirun: warning\n #repetitions t_min[usec]\n 1000 1.50\n"},
		{name: "output cut before the header", in: "# Benchmarking A\n# #processes = 2\n", line: 2},
		{name: "bad row after a good benchmark", in: head + "   0  1000  2.23  0.00\n\n" + head + "x\n", line: 9, kept: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.in))
			require.ErrorIs(t, err, ErrMalformed)
			var pe *ParseError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tt.line, pe.Line, "%v", err)
			assert.Len(t, got, tt.kept)
		})
	}
}

func TestParseLongLine(t *testing.T) {
	in := "# Benchmarking PingPong\n# #processes = 2\n" + strings.Repeat("x", maxLine+1) + "\n"
	_, err := Parse(strings.NewReader(in))
	require.Error(t, err)
	assert.False(t, errors.Is(err, ErrMalformed))
	assert.Contains(t, err.Error(), "after line 2")
}

func TestParseReadError(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("# Benchmarking PingPong\n"), iotest.ErrReader(boom))
	_, err := Parse(r)
	require.ErrorIs(t, err, boom)
}

// The scanner hands out one table at a time from a stream it reads in small pieces.
func TestScannerStreams(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "pingpong-allreduce-barrier.txt"))
	require.NoError(t, err)
	defer f.Close()
	s := NewScanner(iotest.OneByteReader(f))
	var names []string
	for s.Scan() {
		names = append(names, s.Benchmark().Name)
	}
	require.NoError(t, s.Err())
	assert.Equal(t, []string{"PingPong", "Allreduce", "Allreduce", "Barrier", "Barrier"}, names)
	assert.False(t, s.Scan())
	assert.Equal(t, Benchmark{}, s.Benchmark())
}

// TestRowCell: every column's cell shows the value IMB printed in it, integers as integers and the rest
// with two decimals, so that a row read with Parse prints back as IMB wrote it.
func TestRowCell(t *testing.T) {
	var header, row []string
	for c := ColumnGroup; c <= ColumnDefects; c++ {
		header = append(header, c.String())
		row = append(row, fmt.Sprintf("%d.%02d", 10*int(c), int(c)))
	}
	row[0], row[1], row[2] = "3", "4194304", "1000" // Group, #bytes, #repetitions
	in := "# Benchmarking Exchange\n# #processes = 4\n" + strings.Join(header, " ") + "\n" + strings.Join(row, " ") + "\n"
	got, err := Parse(strings.NewReader(in))
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Len(t, got[0].Rows, 1)
	r := got[0].Rows[0]
	for i, c := range got[0].Columns {
		assert.Equal(t, row[i], r.Cell(c), "%s", c)
	}

	tests := []struct {
		name string
		row  Row
		c    Column
		want string
	}{
		{name: "rounds to two decimals", row: Row{Time: 2.236}, c: ColumnTime, want: "2.24"},
		{name: "pads to two decimals", row: Row{MBytesPerSec: 3693.6}, c: ColumnMBytesPerSec, want: "3693.60"},
		{name: "zero", row: Row{}, c: ColumnTimeMax, want: "0.00"},
		{name: "large, not in exponent form", row: Row{MsgPerSec: 12345678.9}, c: ColumnMsgPerSec, want: "12345678.90"},
		{name: "large integer", row: Row{Bytes: 1 << 40}, c: ColumnBytes, want: "1099511627776"},
		{name: "failure row keeps its size", row: Row{Bytes: 8388608, Failure: OutOfMemory}, c: ColumnBytes, want: "8388608"},
		{name: "zero Column", row: Row{Defects: 1}, c: 0, want: ""},
		{name: "after the last Column", row: Row{Defects: 1}, c: ColumnDefects + 1, want: ""},
		{name: "negative Column", row: Row{Defects: 1}, c: -1, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.row.Cell(tt.c))
		})
	}
}

func TestColumnString(t *testing.T) {
	assert.Equal(t, "t[usec]", ColumnTime.String())
	assert.Equal(t, "Msg/sec", ColumnMsgPerSec.String())
	assert.Equal(t, "Column(99)", Column(99).String())
	assert.Equal(t, "Column(0)", Column(0).String(), "the zero Column is no column")
	assert.Equal(t, "Group", ColumnGroup.String())
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"azure-a9-pingpong.txt", "pingpong-allreduce-barrier.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(f, err)
		f.Add(string(b))
	}
	f.Add("# Benchmarking Multi-PingPong\n# ( 2 groups of 2 processes each running simultaneous )\n Group #bytes #repetitions t[usec]\n\n 0 0 10 1.0\n 1 8 time-out.\n")
	f.Add("# Benchmarking X\n# #processes = 2\n #repetitions\n 5\n#\n")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := Parse(strings.NewReader(in))
		if err != nil {
			var pe *ParseError
			if errors.As(err, &pe) {
				require.Positive(t, pe.Line)
				require.LessOrEqual(t, len(pe.Text), 200)
			}
		}
		for _, b := range got {
			require.NotEmpty(t, b.Name)
			require.Positive(t, b.Processes)
			require.Contains(t, b.Columns, ColumnRepetitions)
			for _, r := range b.Rows {
				require.GreaterOrEqual(t, r.Bytes, int64(0))
				require.GreaterOrEqual(t, r.Repetitions, int64(0))
				require.Greater(t, r.Line, b.Line)
			}
		}
	})
}

// TestParseBounds pins each limit of the parser at, below and above it.
func TestParseBounds(t *testing.T) {
	group := "# Benchmarking Multi-PingPong\n# ( 2 groups of 2 processes each running simultaneous )\n" +
		"        Group       #bytes #repetitions      t[usec]\n"
	plain := "# Benchmarking PingPong\n# #processes = 2\n       #bytes #repetitions      t[usec]\n"
	tests := []struct {
		name    string
		in      string
		want    []Row // of the single benchmark, Line left out
		wantErr string
	}{
		{name: "largest group of a failure row", in: group + "  2147483647  8 time-out.; took too long\n",
			want: []Row{{Group: math.MaxInt32, Bytes: 8, Failure: TimeOut, FailureDetail: "took too long"}}},
		{name: "group of a failure row beyond int32", in: group + "  2147483648  8 time-out.\n", wantErr: "group number out of range"},
		{name: "negative group of a failure row", in: group + "  -1  8 time-out.\n", wantErr: "failure row does not start with non-negative integers"},
		{name: "negative size of a failure row", in: group + "  0  -8 time-out.\n", wantErr: "failure row does not start with non-negative integers"},
		{name: "failure row of size 0", in: plain + "  0 out-of-mem.\n", want: []Row{{Failure: OutOfMemory}}},
		{name: "failure row with a word for its size", in: plain + "  x out-of-mem.\n", wantErr: "failure row does not start with non-negative integers"},
		{name: "failure row without detail", in: plain + "  4 int-overflow.\n", want: []Row{{Bytes: 4, Failure: IntOverflow}}},
		{name: "failure row's detail cut to 200 bytes", in: plain + "  4 out-of-mem.; " + strings.Repeat("d", 300) + "\n",
			want: []Row{{Bytes: 4, Failure: OutOfMemory, FailureDetail: strings.Repeat("d", 200)}}},
		{name: "group 0 and zero counts", in: group + "  0  0  0  0\n", want: []Row{{}}},
		{name: "negative group", in: group + "  -1  0  0  0\n", wantErr: "Group: not a non-negative integer"},
		{name: "negative repetitions", in: plain + "  0  -1  0\n", wantErr: "#repetitions: not a non-negative integer"},
		{name: "one process", in: "# Benchmarking PingPong\n# #processes = 1\n #bytes #repetitions\n 0 1\n", want: []Row{{Repetitions: 1}}},
		{name: "one waiting process", in: "# Benchmarking X\n# #processes = 2\n# ( 1 additional process waiting in MPI_Barrier)\n #repetitions\n 5\n",
			want: []Row{{Repetitions: 5}}},
		{name: "no process count, then rows", in: "# Benchmarking X\n #repetitions\n 5\n", wantErr: "benchmark X has no #processes line before its header"},
		{name: "no repetitions column, then rows", in: "# Benchmarking X\n# #processes = 2\n #bytes\n 5\n", wantErr: "header of benchmark X has no #repetitions column"},
		{name: "a column twice, then rows", in: "# Benchmarking X\n# #processes = 2\n #repetitions #repetitions\n 5 5\n", wantErr: "column #repetitions appears twice"},
		{name: "no name, then a table", in: "# Benchmarking \n# #processes = 2\n #repetitions\n 1\n", wantErr: "benchmark name missing or not one word"},
		{name: "two-word name, then a table", in: "# Benchmarking Ping Pong\n# #processes = 2\n #repetitions\n 1\n", wantErr: "benchmark name missing or not one word"},
		{name: "no waiting processes", in: "# Benchmarking X\n# #processes = 2\n# ( 0 additional processes waiting in MPI_Barrier)\n", wantErr: "count of waiting processes is not a positive number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				require.ErrorIs(t, err, ErrMalformed)
				assert.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Len(t, got, 1)
			for i := range got[0].Rows {
				got[0].Rows[i].Line = 0
			}
			assert.Equal(t, tt.want, got[0].Rows)
		})
	}
}

func TestParseErrorText(t *testing.T) {
	head := "# Benchmarking PingPong\n# #processes = 2\n #bytes #repetitions\n"
	for _, n := range []int{199, 200, 201, 4096} {
		bad := "x" + strings.Repeat(" y", (n-1)/2) + strings.Repeat("z", (n-1)%2)
		require.Len(t, bad, n)
		_, err := Parse(strings.NewReader(head + bad + "\n"))
		var pe *ParseError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, bad[:min(n, 200)], pe.Text, "the line is kept up to 200 bytes")
		assert.Equal(t, fmt.Sprintf("IMB output line 4: %s: %q", pe.Reason, pe.Text), err.Error())
	}
}

// TestParseRowLimit: a table may hold 65,536 rows, not one more. One parse shows both: the error names the
// row after the 65,536th, so all of those were taken.
func TestParseRowLimit(t *testing.T) {
	head := "# Benchmarking PingPong\n# #processes = 2\n #repetitions\n"
	_, err := Parse(strings.NewReader(head + strings.Repeat("1\n", maxRows+1)))
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 3+maxRows+1, pe.Line)
	assert.Contains(t, pe.Reason, "more than 65536 rows")
}

// TestParseNotes: the shortest forms of the notes IMB prints above a table, and one word short of them.
func TestParseNotes(t *testing.T) {
	for _, tt := range []struct {
		name                       string
		note                       string
		waiting, groups, processes int
	}{
		{name: "waiting", note: "# ( 3 additional processes", waiting: 3, groups: 1, processes: 2},
		{name: "waiting, one word short", note: "# ( 3 additional", groups: 1, processes: 2},
		{name: "groups", note: "# ( 2 groups of 4 processes", groups: 2, processes: 4},
		{name: "groups, one word short", note: "# ( 2 groups of 4", groups: 1, processes: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader("# Benchmarking X\n# #processes = 2\n" + tt.note + "\n #repetitions\n 5\n"))
			require.NoError(t, err)
			require.Len(t, got, 1)
			assert.Equal(t, [3]int{tt.waiting, tt.groups, tt.processes}, [3]int{got[0].Waiting, got[0].Groups, got[0].Processes})
		})
	}
}
