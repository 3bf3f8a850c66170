package mpi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/hpcship/hpcship/internal/atomicfile"
)

// MachineFileFormat is the line format of a machine (host) file.
type MachineFileFormat int

// The machine file formats.
const (
	// HostPerLine writes each host once: what `uniq machines > u_machines` makes in the
	// seed workflow's Grid Engine job.
	HostPerLine MachineFileFormat = iota
	// HostColonSlots writes "host:N", N being how often the host was listed; Intel MPI
	// and MPICH hydra read it from -machinefile.
	HostColonSlots
	// HostSlotsEquals writes "host slots=N", Open MPI's --hostfile format.
	HostSlotsEquals
)

// HostSlots is one host and how many slots (ranks) it offers.
type HostSlots struct {
	Host  string
	Slots int
}

// CountHosts collapses a host list in which each host appears once per slot (as in
// Grid Engine's machines file) into unique hosts in the order they first appear,
// each with the number of times it was listed. A host name that is empty or contains
// white space, '#', ':' or ',' is a *SettingError: it could not be written to a
// machine file unambiguously. So is an empty list.
func CountHosts(hosts []string) ([]HostSlots, error) {
	if len(hosts) == 0 {
		return nil, &SettingError{Variable: "hosts", Reason: "at least one host is required", Err: ErrInvalidSetting}
	}
	var out []HostSlots
	index := make(map[string]int, len(hosts))
	for _, h := range hosts {
		if h == "" || strings.ContainsAny(h, " \t\r\n\v\f#:,\x00") {
			return nil, &SettingError{Variable: "host", Value: h, Err: ErrInvalidSetting,
				Reason: "host names must be non-empty without white space, '#', ':' or ','"}
		}
		if i, ok := index[h]; ok {
			out[i].Slots++
			continue
		}
		index[h] = len(out)
		out = append(out, HostSlots{Host: h, Slots: 1})
	}
	return out, nil
}

// WriteMachineFile writes a machine file for hosts (one entry per slot, duplicates
// allowed; see CountHosts) to w in the given format.
func WriteMachineFile(w io.Writer, hosts []string, format MachineFileFormat) error {
	counted, err := CountHosts(hosts)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	for _, h := range counted {
		switch format {
		case HostPerLine:
			_, err = fmt.Fprintln(bw, h.Host)
		case HostColonSlots:
			_, err = fmt.Fprintln(bw, h.Host+":"+strconv.Itoa(h.Slots))
		case HostSlotsEquals:
			_, err = fmt.Fprintln(bw, h.Host+" slots="+strconv.Itoa(h.Slots))
		default:
			return &SettingError{Variable: "MachineFileFormat", Value: strconv.Itoa(int(format)), Reason: "unknown format", Err: ErrInvalidSetting}
		}
		if err != nil {
			return fmt.Errorf("writing machine file: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing machine file: %w", err)
	}
	return nil
}

// CreateMachineFile writes a machine file to path atomically: it writes a temporary
// file in the same directory and renames it over path, so a launcher never reads a
// half-written file. The file gets mode 0644. If ctx is done before the rename, the
// temporary file is removed and path is left as it was.
func CreateMachineFile(ctx context.Context, path string, hosts []string, format MachineFileFormat) error {
	err := atomicfile.Write(ctx, path, 0o644, func(f *os.File) error {
		return WriteMachineFile(f, hosts, format)
	})
	if err != nil {
		return fmt.Errorf("creating machine file %s: %w", path, err)
	}
	return nil
}
