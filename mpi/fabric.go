package mpi

import (
	"strings"
)

// Fabric is one Intel MPI communication fabric, as named in I_MPI_FABRICS.
type Fabric string

// The fabrics Intel MPI has known. Only FabricSHM and FabricOFI exist in Intel MPI
// 2019 and later; the rest are DAPL-era (4.x, 5.x, 2017, 2018).
const (
	FabricSHM  Fabric = "shm"  // shared memory, intra-node only
	FabricDAPL Fabric = "dapl" // Direct Access Programming Library (Azure Network Direct VMs)
	FabricTCP  Fabric = "tcp"  // TCP sockets
	FabricTMI  Fabric = "tmi"  // Tag Matching Interface (PSM, MXM)
	FabricOFA  Fabric = "ofa"  // OpenFabrics verbs
	FabricOFI  Fabric = "ofi"  // OpenFabrics Interfaces, i.e. libfabric
)

func knownFabric(f Fabric) bool {
	switch f {
	case FabricSHM, FabricDAPL, FabricTCP, FabricTMI, FabricOFA, FabricOFI:
		return true
	}
	return false
}

// Fabrics is an I_MPI_FABRICS value: the fabric used between ranks on the same node
// (Intra) and between nodes (Inter). A single fabric for both, such as "ofi", has
// Intra == Inter. The zero Fabrics leaves I_MPI_FABRICS unset.
type Fabrics struct {
	Intra Fabric
	Inter Fabric
}

// ParseFabrics parses an I_MPI_FABRICS value, "<fabric>" or "<intra>:<inter>", such
// as "shm:dapl" or "ofi". Names are matched case-insensitively. An unknown name is a
// *FabricError wrapping ErrUnknownFabric. Whether the pair suits a given Intel MPI
// version is checked by Config.Validate, not here.
func ParseFabrics(s string) (Fabrics, error) {
	names := strings.Split(s, ":")
	if len(names) > 2 {
		return Fabrics{}, &FabricError{Input: s, Reason: "want <fabric> or <intra-node fabric>:<inter-node fabric>"}
	}
	fs := make([]Fabric, len(names))
	for i, n := range names {
		f := Fabric(strings.ToLower(n))
		if f == "" {
			return Fabrics{}, &FabricError{Input: s, Reason: "empty fabric name"}
		}
		if !knownFabric(f) {
			return Fabrics{}, &FabricError{Input: s, Name: n,
				Reason: "unknown fabric " + clip(n) + " (known: shm, dapl, tcp, tmi, ofa, ofi)"}
		}
		fs[i] = f
	}
	if len(fs) == 1 {
		return Fabrics{Intra: fs[0], Inter: fs[0]}, nil
	}
	return Fabrics{Intra: fs[0], Inter: fs[1]}, nil
}

// String returns the I_MPI_FABRICS value: "<intra>:<inter>", or a single name when
// both are the same.
func (f Fabrics) String() string {
	if f.Intra == f.Inter {
		return string(f.Intra)
	}
	return string(f.Intra) + ":" + string(f.Inter)
}

// IsZero reports whether f is unset.
func (f Fabrics) IsZero() bool { return f == Fabrics{} }

func (f Fabrics) uses(x Fabric) bool { return f.Intra == x || f.Inter == x }
