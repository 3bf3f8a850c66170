package imb_test

import (
	"fmt"
	"log"
	"strings"

	"github.com/hpcship/hpcship/mpi/imb"
)

func ExampleParse() {
	out := `# Benchmarking PingPong
# #processes = 2
#---------------------------------------------------
       #bytes #repetitions      t[usec]   Mbytes/sec
            0         1000         2.23         0.00
          512         1000         3.09       157.99
      4194304           10      1082.94      3693.63

# Benchmarking Barrier
# #processes = 2
 #repetitions  t_min[usec]  t_max[usec]  t_avg[usec]
         1000         1.71         1.72         1.72
`
	benchmarks, err := imb.Parse(strings.NewReader(out))
	if err != nil {
		log.Fatal(err)
	}
	for _, b := range benchmarks {
		for _, r := range b.Rows {
			if b.Has(imb.ColumnTime) {
				fmt.Printf("%s %d bytes: %.2f usec, %.2f MB/s\n", b.Name, r.Bytes, r.Time, r.MBytesPerSec)
			} else {
				fmt.Printf("%s on %d processes: %.2f usec max\n", b.Name, b.Processes, r.TimeMax)
			}
		}
	}
	// Output:
	// PingPong 0 bytes: 2.23 usec, 0.00 MB/s
	// PingPong 512 bytes: 3.09 usec, 157.99 MB/s
	// PingPong 4194304 bytes: 1082.94 usec, 3693.63 MB/s
	// Barrier on 2 processes: 1.72 usec max
}

// A table's rows print back as IMB wrote them, column by column.
func ExampleRow_Cell() {
	out := `# Benchmarking Allreduce
# #processes = 4
       #bytes #repetitions  t_min[usec]  t_max[usec]  t_avg[usec]
         1024         1000         4.10        5.20         4.65
`
	benchmarks, err := imb.Parse(strings.NewReader(out))
	if err != nil {
		log.Fatal(err)
	}
	b := benchmarks[0]
	for _, r := range b.Rows {
		var cells []string
		for _, c := range b.Columns {
			cells = append(cells, c.String()+"="+r.Cell(c))
		}
		fmt.Println(strings.Join(cells, " "))
	}
	// Output:
	// #bytes=1024 #repetitions=1000 t_min[usec]=4.10 t_max[usec]=5.20 t_avg[usec]=4.65
}
