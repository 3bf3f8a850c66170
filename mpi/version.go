package mpi

import (
	"strconv"
	"strings"
)

// Version is an Intel MPI Library version: the classic 4.x/5.x numbering
// ("5.1.3.223") or the year numbering used from 2017 on ("2018.4.274", "2019.9",
// "2021.13"). Parse one with ParseVersion; the zero Version means "not set".
type Version struct {
	// parts holds the dot-separated numbers, e.g. [5 1 3 223]; parts[0] is the major
	// version (5, 2018, 2021, ...).
	parts [4]int
	n     int
	text  string
}

// ParseVersion parses an Intel MPI version of one to four dot-separated decimal
// numbers. The major version must be 4 or 5, or a year from 2017 on (Intel MPI 2016
// is numbered 5.1, and releases went from 2019 to 2021 with no 2020). The text is kept as given, so "5.0.3.048" still names the
// directory /opt/intel/impi/5.0.3.048.
func ParseVersion(s string) (Version, error) {
	if s == "" {
		return Version{}, &VersionError{Input: s, Reason: "empty"}
	}
	fields := strings.Split(s, ".")
	if len(fields) > 4 {
		return Version{}, &VersionError{Input: s, Reason: "more than four dot-separated numbers"}
	}
	v := Version{n: len(fields), text: s}
	for i, f := range fields {
		if f == "" {
			return Version{}, &VersionError{Input: s, Reason: "empty number between dots"}
		}
		if len(f) > 9 {
			return Version{}, &VersionError{Input: s, Reason: "number " + clip(f) + " is too long"}
		}
		for _, c := range f {
			if c < '0' || c > '9' {
				return Version{}, &VersionError{Input: s, Reason: "number " + clip(f) + " is not decimal digits"}
			}
		}
		v.parts[i], _ = strconv.Atoi(f) // nine digits always fit
	}
	switch major := v.parts[0]; {
	case major == 4 || major == 5:
	case major < 4:
		return Version{}, &VersionError{Input: s, Reason: "Intel MPI before 4.0 selected fabrics with I_MPI_DEVICE and is not supported"}
	case major == 2016:
		return Version{}, &VersionError{Input: s, Reason: "Intel MPI 2016 is numbered 5.1.x (e.g. 5.1.3.223)"}
	case major == 2020:
		return Version{}, &VersionError{Input: s, Reason: "there is no Intel MPI 2020: releases went from 2019 (with updates) to 2021"}
	case major >= 2017 && major <= 2099:
	default:
		return Version{}, &VersionError{Input: s, Reason: "major version must be 4, 5 or a year from 2017 on"}
	}
	return v, nil
}

// MustParseVersion is ParseVersion for constants known to be valid; it panics on error.
func MustParseVersion(s string) Version {
	v, err := ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

// String returns the version exactly as it was parsed.
func (v Version) String() string { return v.text }

// IsZero reports whether v is the zero Version, i.e. not set.
func (v Version) IsZero() bool { return v.n == 0 }

// Major returns the first number: 4, 5, 2017, 2018, 2019, 2021, ...
func (v Version) Major() int { return v.parts[0] }

// Minor returns the second number, or 0 if the version has only one. For the year
// numbering this is the update (2018.4 is 2018 Update 4) or, from 2021 on, the
// minor release (2021.13).
func (v Version) Minor() int { return v.parts[1] }

// Compare returns -1, 0 or +1 as v is older than, the same as, or newer than w,
// comparing the numbers one by one (missing numbers count as 0).
func (v Version) Compare(w Version) int {
	for i := range v.parts {
		switch {
		case v.parts[i] < w.parts[i]:
			return -1
		case v.parts[i] > w.parts[i]:
			return 1
		}
	}
	return 0
}

// AtLeast reports whether v is major.minor or newer.
func (v Version) AtLeast(major, minor int) bool {
	return v.parts[0] > major || v.parts[0] == major && v.parts[1] >= minor
}

// LibfabricOnly reports whether v is Intel MPI 2019 or later, which talks to the
// network only through libfabric (I_MPI_FABRICS=ofi, shm:ofi or shm) and has none of
// the DAPL, TMI and OFA settings.
func (v Version) LibfabricOnly() bool { return v.parts[0] >= 2019 }
