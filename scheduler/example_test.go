package scheduler_test

import (
	"fmt"
	"log"
	"strings"

	"github.com/hpcship/hpcship/scheduler"
)

// Reading the allocation of a parallel job from $PE_HOSTFILE, as a Go program running inside the job
// would (os.Open(os.Getenv("PE_HOSTFILE"))), and writing it for mpirun.
func ExampleParsePEHostfile() {
	const peHostfile = "node1 16 hpc.q@node1 UNDEFINED\nnode2 16 hpc.q@node2 UNDEFINED\n"
	hf, err := scheduler.ParsePEHostfile(strings.NewReader(peHostfile))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(hf.Slots(), "slots")
	fmt.Println(hf.UniqueHosts())
	fmt.Print(string(hf.Machinefile(scheduler.MachinefileHostSlots)))
	// Output:
	// 32 slots
	// [node1 node2]
	// node1:16
	// node2:16
}
