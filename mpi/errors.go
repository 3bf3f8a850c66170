package mpi

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hpcship/hpcship/internal/envvar"
)

// clip quotes input for an error message, cut to its first 64 bytes and its length: every error here
// echoes input that way, so that a megabyte of input gives a line of message.
func clip(s string) string { return envvar.Clip(s) }

// clipName is clip for names printed unquoted when they are short.
func clipName(s string) string {
	if len(s) <= 64 && !strings.ContainsAny(s, " \t\n\"=") {
		return s
	}
	return clip(s)
}

// Sentinel errors for the cases callers branch on. The typed errors below wrap them,
// so errors.Is works on every error this package returns.
var (
	// ErrUnsupportedByVersion reports a setting the chosen Intel MPI version does not
	// have, such as a DAPL-era variable on Intel MPI 2019 or later.
	ErrUnsupportedByVersion = errors.New("not supported by this Intel MPI version")
	// ErrUnknownFabric reports a fabric name outside shm, dapl, tcp, tmi, ofa and ofi.
	ErrUnknownFabric = errors.New("unknown fabric")
	// ErrInvalidSetting reports a value that is malformed or out of range.
	ErrInvalidSetting = errors.New("invalid setting")
	// ErrConflict reports two settings that would both set the same thing.
	ErrConflict = errors.New("conflicting settings")
	// ErrUnsupportedFlag reports a launcher option the chosen MPI flavour does not
	// accept, such as Intel MPI's -perhost for MPICH hydra.
	ErrUnsupportedFlag = errors.New("option not supported by this MPI flavour")
	// ErrUnknownVMSize reports an Azure VM size no preset covers.
	ErrUnknownVMSize = errors.New("unknown Azure VM size")
)

// VersionError reports an Intel MPI version string that could not be parsed. Its message quotes at most the
// first 64 bytes of Input.
type VersionError struct {
	Input  string // the string given to ParseVersion
	Reason string // what is wrong with it
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("parsing Intel MPI version %s: %s", clip(e.Input), e.Reason)
}

// Unwrap returns ErrInvalidSetting.
func (e *VersionError) Unwrap() error { return ErrInvalidSetting }

// FabricError reports an I_MPI_FABRICS value that names an unknown fabric or is not
// of the form <fabric> or <intra>:<inter>.
type FabricError struct {
	Input  string // the whole value
	Name   string // the offending fabric name, if one is to blame
	Reason string
}

func (e *FabricError) Error() string {
	return fmt.Sprintf("parsing I_MPI_FABRICS %s: %s", clip(e.Input), e.Reason)
}

// Unwrap returns ErrUnknownFabric when a name is to blame, ErrInvalidSetting otherwise.
func (e *FabricError) Unwrap() error {
	if e.Name != "" {
		return ErrUnknownFabric
	}
	return ErrInvalidSetting
}

// VersionSupportError reports a variable (or a value of one) that the configured
// Intel MPI version does not support, and what to use instead.
type VersionSupportError struct {
	Variable    string  // the environment variable, e.g. I_MPI_FALLBACK
	Value       string  // the value that was asked for
	Version     Version // the configured Intel MPI version
	Replacement string  // the modern way to get the same effect
}

func (e *VersionSupportError) Error() string {
	return fmt.Sprintf("%s=%s is not supported by Intel MPI %s; use %s instead",
		clipName(e.Variable), clipName(e.Value), e.Version, e.Replacement)
}

// Unwrap returns ErrUnsupportedByVersion.
func (e *VersionSupportError) Unwrap() error { return ErrUnsupportedByVersion }

// SettingError reports an invalid value or a conflict between settings. Err is
// ErrInvalidSetting or ErrConflict.
type SettingError struct {
	Variable string // the environment variable or launcher option concerned
	Value    string
	Reason   string
	Err      error
}

func (e *SettingError) Error() string {
	return fmt.Sprintf("%s=%s: %s", clipName(e.Variable), clip(e.Value), e.Reason)
}

// Unwrap returns e.Err.
func (e *SettingError) Unwrap() error { return e.Err }

// FlagError reports a launcher option that the chosen MPI flavour does not accept.
type FlagError struct {
	Flavor Flavor // the launcher flavour
	Flag   string // the option, e.g. -perhost
	Reason string // why, and what to use instead
}

func (e *FlagError) Error() string {
	return fmt.Sprintf("%s launcher: %s: %s", e.Flavor, clipName(e.Flag), e.Reason)
}

// Unwrap returns ErrUnsupportedFlag.
func (e *FlagError) Unwrap() error { return ErrUnsupportedFlag }

// UnknownVMSizeError reports a VM size that matches no Azure preset.
type UnknownVMSizeError struct {
	Size  string   // the size as given
	Known []string // the families presets exist for
}

func (e *UnknownVMSizeError) Error() string {
	return fmt.Sprintf("no preset for Azure VM size %s (RDMA-capable families with presets: %s)",
		clip(e.Size), strings.Join(e.Known, ", "))
}

// Unwrap returns ErrUnknownVMSize.
func (e *UnknownVMSizeError) Unwrap() error { return ErrUnknownVMSize }

// PresetError reports a preset that cannot serve the requested MPI version or setup.
// Err is ErrUnsupportedByVersion (wrong Intel MPI version for the family) or
// ErrInvalidSetting (an impossible request, such as UCX on a Network Direct VM).
type PresetError struct {
	Family string
	Reason string
	Err    error
}

func (e *PresetError) Error() string {
	return fmt.Sprintf("Azure %s preset: %s", e.Family, e.Reason)
}

// Unwrap returns e.Err.
func (e *PresetError) Unwrap() error { return e.Err }
