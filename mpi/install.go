package mpi

import "path"

// Installation says where Intel MPI is installed on the nodes (and, in the hybrid
// model, at the same path inside the container image), so a job script can source
// its environment script and name its programs.
//
// The layout depends on the version, as EasyBuild's impi easyblock records it:
// 5.x to 2018 keep programs in <root>/bin64 next to mpivars.sh; 2019 in
// <root>/intel64/bin; oneAPI 2021 and later in <root>/bin with the environment
// script at <root>/env/vars.sh.
type Installation struct {
	// Version is the installed Intel MPI version.
	Version Version
	// Root is the installation directory. Empty means DefaultRoot(Version).
	Root string
}

// DefaultRoot returns where Intel's installers put a version by default:
// /opt/intel/impi/<version> up to 2019, /opt/intel/oneapi/mpi/<version> for 2021 and
// later. The seed workflow's 5.1.3.223 lives in /opt/intel/impi/5.1.3.223.
func DefaultRoot(v Version) string {
	if v.Major() >= 2021 {
		return path.Join("/opt/intel/oneapi/mpi", v.String())
	}
	return path.Join("/opt/intel/impi", v.String())
}

func (i Installation) root() string {
	if i.Root != "" {
		return i.Root
	}
	return DefaultRoot(i.Version)
}

// BinDir returns the directory holding mpirun and the IMB benchmarks.
func (i Installation) BinDir() string {
	switch {
	case i.Version.Major() >= 2021:
		return path.Join(i.root(), "bin")
	case i.Version.Major() == 2019:
		return path.Join(i.root(), "intel64", "bin")
	default:
		return path.Join(i.root(), "bin64")
	}
}

// MPIVars returns the script a job sources to put this Intel MPI on PATH and
// LD_LIBRARY_PATH: <bin>/mpivars.sh up to 2019, <root>/env/vars.sh from 2021 on.
// For the seed workflow it is /opt/intel/impi/5.1.3.223/bin64/mpivars.sh.
func (i Installation) MPIVars() string {
	if i.Version.Major() >= 2021 {
		return path.Join(i.root(), "env", "vars.sh")
	}
	return path.Join(i.BinDir(), "mpivars.sh")
}

// Program returns the path of a program in BinDir, e.g. Program("IMB-MPI1").
func (i Installation) Program(name string) string {
	return path.Join(i.BinDir(), name)
}
