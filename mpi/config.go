package mpi

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/hpcship/hpcship/internal/envvar"
)

// Toggle is an on/off Intel MPI setting that can also be left unset, so that Intel MPI
// applies its own default. The zero Toggle is Unset.
type Toggle uint8

// Toggle values. On renders as 1 and Off as 0, spellings every Intel MPI version
// accepts (enable|yes|on|1 and disable|no|off|0).
const (
	Unset Toggle = iota
	On
	Off
)

func (t Toggle) value() string {
	if t == On {
		return "1"
	}
	return "0"
}

// intelBootstraps are the values I_MPI_HYDRA_BOOTSTRAP (and mpirun -bootstrap) take
// in Intel MPI, from the 5.1.3 Reference Manual's "Bootstrap Options". Never modified.
var intelBootstraps = []string{"ssh", "rsh", "pdsh", "pbsdsh", "fork", "persist", "slurm", "ll", "lsf", "sge", "jmi"}

// What Intel MPI 2019 and later use in place of the DAPL-era settings.
const modernFabrics = "I_MPI_FABRICS=shm:ofi with an OFI provider (Config.OFIProvider, which sets I_MPI_OFI_PROVIDER and FI_PROVIDER; e.g. mlx on InfiniBand, tcp on Ethernet)"

// Config is an Intel MPI runtime configuration: the environment that selects the
// fabric and tunes the library, checked against the Intel MPI version it is for.
// Every field but Version is optional; an unset field leaves its variable out, so
// Intel MPI applies its default.
type Config struct {
	// Version is the Intel MPI version the environment is for. It is required: it
	// decides which variables exist.
	Version Version

	// Fabrics sets I_MPI_FABRICS. Intel MPI 5.x to 2018 accept any known intra-node
	// fabric and dapl, tcp, tmi, ofa or ofi between nodes; 2019 accepts only ofi and
	// shm:ofi; 2021 and later also shm.
	Fabrics Fabrics

	// Fallback sets I_MPI_FALLBACK (5.x to 2018): Off makes a job fail rather than
	// fall back to another fabric (TCP) when the chosen one cannot start.
	Fallback Toggle
	// DAPLProvider sets I_MPI_DAPL_PROVIDER (5.x to 2018), the provider name from
	// dat.conf, e.g. ofa-v2-ib0 on Azure.
	DAPLProvider string
	// DAPLUD sets I_MPI_DAPL_UD (5.x to 2018), the DAPL unreliable-datagram path.
	DAPLUD Toggle
	// DynamicConnection sets I_MPI_DYNAMIC_CONNECTION (5.x to 2018): Off establishes
	// all connections at start-up.
	DynamicConnection Toggle
	// TranslationCache sets I_MPI_DAPL_TRANSLATION_CACHE (5.x to 2018).
	TranslationCache Toggle

	// OFIProvider sets both I_MPI_OFI_PROVIDER (Intel's selector) and FI_PROVIDER
	// (libfabric's, which Intel MPI 2019 Update 5 needed for mlx), e.g. mlx, verbs,
	// tcp. Before 2019 it needs a fabric of ofi when Fabrics is set.
	OFIProvider string

	// Debug sets I_MPI_DEBUG to this level; 0 leaves it unset (Intel MPI's default is 0).
	Debug int

	// Pin sets I_MPI_PIN.
	Pin Toggle
	// PinDomain sets I_MPI_PIN_DOMAIN, e.g. numa, omp, auto:compact.
	PinDomain string
	// PinProcessorList sets I_MPI_PIN_PROCESSOR_LIST.
	PinProcessorList string

	// Bootstrap sets I_MPI_HYDRA_BOOTSTRAP: ssh, rsh, pdsh, pbsdsh, fork, persist,
	// slurm, ll, lsf, sge or jmi.
	Bootstrap string

	// Extra holds further variables, rendered after the typed ones in name order. A
	// variable a field above sets (or an older name of it) is rejected rather than
	// silently overriding the field, and DAPL-era variables are rejected for 2019 and
	// later just like the fields.
	Extra map[string]string
}

// managed maps each variable a Config field sets, and the older names of those
// variables, to the field that sets it. Never modified.
var managed = map[string]string{
	"I_MPI_FABRICS":                 "Fabrics",
	"I_MPI_DEVICE":                  "Fabrics",
	"I_MPI_FALLBACK":                "Fallback",
	"I_MPI_FALLBACK_DEVICE":         "Fallback",
	"I_MPI_DAPL_PROVIDER":           "DAPLProvider",
	"I_MPI_DAPL_UD":                 "DAPLUD",
	"I_MPI_DYNAMIC_CONNECTION":      "DynamicConnection",
	"I_MPI_USE_DYNAMIC_CONNECTIONS": "DynamicConnection",
	"I_MPI_DAPL_TRANSLATION_CACHE":  "TranslationCache",
	"I_MPI_RDMA_TRANSLATION_CACHE":  "TranslationCache",
	"I_MPI_OFI_PROVIDER":            "OFIProvider",
	"FI_PROVIDER":                   "OFIProvider",
	"I_MPI_DEBUG":                   "Debug",
	"I_MPI_PIN":                     "Pin",
	"I_MPI_PIN_DOMAIN":              "PinDomain",
	"I_MPI_PIN_PROCESSOR_LIST":      "PinProcessorList",
	"I_MPI_HYDRA_BOOTSTRAP":         "Bootstrap",
}

// removedIn2019 reports whether Intel MPI 2019 and later no longer support the
// variable name: the DAPL, TMI and OFA families, fallback, the fabric list and the
// variables 2019 warns about at start-up.
func removedIn2019(name string) bool {
	for _, p := range []string{"I_MPI_DAPL_", "I_MPI_OFA_", "I_MPI_TMI_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	switch name {
	case "I_MPI_DAT_LIBRARY", "I_MPI_FABRICS_LIST", "I_MPI_FALLBACK", "I_MPI_FALLBACK_DEVICE",
		"I_MPI_DEVICE", "I_MPI_DYNAMIC_CONNECTION", "I_MPI_USE_DYNAMIC_CONNECTIONS",
		"I_MPI_RDMA_TRANSLATION_CACHE", "I_MPI_SCALABLE_OPTIMIZATION", "I_MPI_JOB_CONTEXT",
		"I_MPI_CAF_RUNTIME":
		return true
	}
	return false
}

// Validate checks c against its Version and returns the first problem found: a
// *VersionSupportError for a setting the version does not have, a *FabricError for an
// unknown fabric, or a *SettingError for a malformed value or a conflict.
func (c Config) Validate() error {
	if c.Version.IsZero() {
		return &SettingError{Variable: "Version", Reason: "the Intel MPI version is required", Err: ErrInvalidSetting}
	}
	if err := c.validateFabrics(); err != nil {
		return err
	}
	if err := c.validateDAPL(); err != nil {
		return err
	}
	if c.OFIProvider != "" {
		if err := checkToken("I_MPI_OFI_PROVIDER", c.OFIProvider); err != nil {
			return err
		}
		if !c.Version.LibfabricOnly() && !c.Fabrics.IsZero() && !c.Fabrics.uses(FabricOFI) {
			return &SettingError{Variable: "I_MPI_OFI_PROVIDER", Value: c.OFIProvider, Err: ErrConflict,
				Reason: "has no effect unless I_MPI_FABRICS uses ofi (it is " + c.Fabrics.String() + ")"}
		}
	}
	if c.Debug < 0 {
		return &SettingError{Variable: "I_MPI_DEBUG", Value: strconv.Itoa(c.Debug), Reason: "level must not be negative", Err: ErrInvalidSetting}
	}
	for _, s := range []struct{ name, value string }{
		{"I_MPI_PIN_DOMAIN", c.PinDomain},
		{"I_MPI_PIN_PROCESSOR_LIST", c.PinProcessorList},
	} {
		if s.value == "" {
			continue
		}
		if err := checkToken(s.name, s.value); err != nil {
			return err
		}
		if c.Pin == Off {
			return &SettingError{Variable: s.name, Value: s.value, Reason: "has no effect with I_MPI_PIN=0", Err: ErrConflict}
		}
	}
	if c.Bootstrap != "" && !slices.Contains(intelBootstraps, c.Bootstrap) {
		return &SettingError{Variable: "I_MPI_HYDRA_BOOTSTRAP", Value: c.Bootstrap, Err: ErrInvalidSetting,
			Reason: "unknown bootstrap (known: " + strings.Join(intelBootstraps, ", ") + ")"}
	}
	return c.validateExtra()
}

func (c Config) validateFabrics() error {
	f := c.Fabrics
	if f.IsZero() {
		return nil
	}
	for _, x := range []Fabric{f.Intra, f.Inter} {
		if x == "" {
			return &FabricError{Input: f.String(), Reason: "intra-node and inter-node fabric must both be set"}
		}
		if !knownFabric(x) {
			return &FabricError{Input: f.String(), Name: string(x),
				Reason: "unknown fabric " + clip(string(x)) + " (known: shm, dapl, tcp, tmi, ofa, ofi)"}
		}
	}
	v := c.Version
	if !v.LibfabricOnly() {
		if f.Inter == FabricSHM && f.Intra != FabricSHM {
			return &SettingError{Variable: "I_MPI_FABRICS", Value: f.String(), Err: ErrInvalidSetting,
				Reason: "shm works only within a node, so it cannot be the inter-node fabric"}
		}
		return nil
	}
	for _, old := range []Fabric{FabricDAPL, FabricTCP, FabricTMI, FabricOFA} {
		if f.uses(old) {
			return &VersionSupportError{Variable: "I_MPI_FABRICS", Value: f.String(), Version: v, Replacement: modernFabrics}
		}
	}
	switch {
	case f == Fabrics{Intra: FabricOFI, Inter: FabricOFI}, f == Fabrics{Intra: FabricSHM, Inter: FabricOFI}:
		return nil
	case f == Fabrics{Intra: FabricSHM, Inter: FabricSHM} && v.Major() >= 2021:
		return nil
	}
	allowed := "ofi or shm:ofi"
	if v.Major() >= 2021 {
		allowed = "ofi, shm:ofi or shm"
	}
	return &SettingError{Variable: "I_MPI_FABRICS", Value: f.String(), Err: ErrInvalidSetting,
		Reason: "Intel MPI " + v.String() + " accepts only " + allowed}
}

func (c Config) validateDAPL() error {
	type setting struct {
		name, value string
		set         bool
		replacement string
		needsDAPL   bool
	}
	settings := []setting{
		{"I_MPI_FALLBACK", c.Fallback.value(), c.Fallback != Unset,
			"I_MPI_FABRICS=shm:ofi with a fixed Config.OFIProvider (2019 and later have no other fabric to fall back to)", false},
		{"I_MPI_DAPL_PROVIDER", c.DAPLProvider, c.DAPLProvider != "", modernFabrics, true},
		{"I_MPI_DAPL_UD", c.DAPLUD.value(), c.DAPLUD != Unset, modernFabrics, true},
		{"I_MPI_DYNAMIC_CONNECTION", c.DynamicConnection.value(), c.DynamicConnection != Unset,
			modernFabrics + "; Intel MPI 2019 and later document no connection-mode variable", false},
		{"I_MPI_DAPL_TRANSLATION_CACHE", c.TranslationCache.value(), c.TranslationCache != Unset, modernFabrics, true},
	}
	for _, s := range settings {
		if !s.set {
			continue
		}
		if c.Version.LibfabricOnly() {
			return &VersionSupportError{Variable: s.name, Value: s.value, Version: c.Version, Replacement: s.replacement}
		}
		if s.name == "I_MPI_DAPL_PROVIDER" {
			if err := checkToken(s.name, s.value); err != nil {
				return err
			}
		}
		if s.needsDAPL && !c.Fabrics.IsZero() && !c.Fabrics.uses(FabricDAPL) {
			return &SettingError{Variable: s.name, Value: s.value, Err: ErrConflict,
				Reason: "has no effect unless I_MPI_FABRICS uses dapl (it is " + c.Fabrics.String() + ")"}
		}
	}
	return nil
}

func (c Config) validateExtra() error {
	for _, name := range slices.Sorted(maps.Keys(c.Extra)) {
		value := c.Extra[name]
		if !envvar.IsName(name) {
			return &SettingError{Variable: name, Value: value, Reason: "not a valid environment variable name", Err: ErrInvalidSetting}
		}
		if strings.ContainsRune(value, 0) {
			return &SettingError{Variable: name, Value: value, Reason: "value contains a NUL byte", Err: ErrInvalidSetting}
		}
		if c.Version.LibfabricOnly() && removedIn2019(name) {
			return &VersionSupportError{Variable: name, Value: value, Version: c.Version, Replacement: modernFabrics}
		}
		if field, ok := managed[name]; ok {
			return &SettingError{Variable: name, Value: value, Err: ErrConflict,
				Reason: "set by Config." + field + "; set that field instead of Extra"}
		}
	}
	return nil
}

// Env validates c and renders its environment as KEY=VALUE strings in a fixed
// order: I_MPI_FABRICS, I_MPI_FALLBACK, I_MPI_DAPL_PROVIDER, I_MPI_DAPL_UD,
// I_MPI_DYNAMIC_CONNECTION, I_MPI_DAPL_TRANSLATION_CACHE, I_MPI_OFI_PROVIDER,
// FI_PROVIDER, I_MPI_DEBUG, I_MPI_PIN, I_MPI_PIN_DOMAIN, I_MPI_PIN_PROCESSOR_LIST,
// I_MPI_HYDRA_BOOTSTRAP, then Extra sorted by name. Unset fields are left out. The
// same Config always renders the same slice.
func (c Config) Env() ([]string, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var env []string
	add := func(name, value string, set bool) {
		if set {
			env = append(env, name+"="+value)
		}
	}
	add("I_MPI_FABRICS", c.Fabrics.String(), !c.Fabrics.IsZero())
	add("I_MPI_FALLBACK", c.Fallback.value(), c.Fallback != Unset)
	add("I_MPI_DAPL_PROVIDER", c.DAPLProvider, c.DAPLProvider != "")
	add("I_MPI_DAPL_UD", c.DAPLUD.value(), c.DAPLUD != Unset)
	add("I_MPI_DYNAMIC_CONNECTION", c.DynamicConnection.value(), c.DynamicConnection != Unset)
	add("I_MPI_DAPL_TRANSLATION_CACHE", c.TranslationCache.value(), c.TranslationCache != Unset)
	add("I_MPI_OFI_PROVIDER", c.OFIProvider, c.OFIProvider != "")
	add("FI_PROVIDER", c.OFIProvider, c.OFIProvider != "")
	add("I_MPI_DEBUG", strconv.Itoa(c.Debug), c.Debug != 0)
	add("I_MPI_PIN", c.Pin.value(), c.Pin != Unset)
	add("I_MPI_PIN_DOMAIN", c.PinDomain, c.PinDomain != "")
	add("I_MPI_PIN_PROCESSOR_LIST", c.PinProcessorList, c.PinProcessorList != "")
	add("I_MPI_HYDRA_BOOTSTRAP", c.Bootstrap, c.Bootstrap != "")
	for _, name := range slices.Sorted(maps.Keys(c.Extra)) {
		add(name, c.Extra[name], true)
	}
	return env, nil
}

// checkToken rejects values that would not survive being passed as one -genv
// argument or one line of a job script: empty, or containing white space or control
// characters.
func checkToken(name, value string) error {
	if value == "" {
		return &SettingError{Variable: name, Value: value, Reason: "empty value", Err: ErrInvalidSetting}
	}
	for _, r := range value {
		if r <= ' ' || r == 0x7f {
			return &SettingError{Variable: name, Value: value, Reason: "value contains white space or a control character", Err: ErrInvalidSetting}
		}
	}
	return nil
}
