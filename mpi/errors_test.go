package mpi

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestErrorsClipInput feeds a megabyte of input to every entry point that echoes input in its error: the
// message stays a line and says how long the input was.
func TestErrorsClipInput(t *testing.T) {
	huge := strings.Repeat("9", 1<<20)
	hugeName := strings.Repeat("A", 1<<20)
	errs := map[string]error{}
	_, errs["version"] = ParseVersion(huge)
	_, errs["version dots"] = ParseVersion("5." + huge)
	_, errs["fabrics"] = ParseFabrics("shm:" + huge)
	_, errs["vm size"] = AzurePreset(huge)
	errs["extra name"] = Config{Version: MustParseVersion("5.1.3.223"), Extra: map[string]string{hugeName + "-": "x"}}.Validate()
	errs["extra value"] = Config{Version: MustParseVersion("5.1.3.223"), PinDomain: "a " + huge}.Validate()
	errs["removed in 2019"] = Config{Version: MustParseVersion("2019.9"), Extra: map[string]string{"I_MPI_DAPL_" + hugeName: huge}}.Validate()
	_, errs["launch env"] = Launch{Flavor: IntelMPI, Ranks: 1, Env: []string{hugeName + "-=x"}, Command: []string{"a"}}.Argv()
	_, errs["launch option"] = Launch{Flavor: MPICH, Ranks: 1, Options: []string{"-perhost=" + huge}, Command: []string{"a"}}.Argv()
	_, errs["launch machinefile"] = Launch{Flavor: MPICH, Ranks: 1, MachineFile: "-" + huge, Command: []string{"a"}}.Argv()
	_, errs["launch bootstrap"] = Launch{Flavor: IntelMPI, Ranks: 1, Bootstrap: huge, Command: []string{"a"}}.Argv()
	for name, err := range errs {
		require.Error(t, err, name)
		assert.Less(t, len(err.Error()), 600, "%s: %.200s", name, err.Error())
		assert.True(t, strings.Contains(err.Error(), "bytes)"), "%s: %.200s", name, err.Error())
	}
	var ve *VersionError
	require.True(t, errors.As(errs["version"], &ve))
	assert.Len(t, ve.Input, 1<<20, "the typed error keeps the input for the caller")
}

// TestErrorNamesAreClipped: a name in an error is printed as it is up to 64 bytes of plain characters, and
// quoted (and cut) beyond that or when it holds a blank, quote or '='.
func TestErrorNamesAreClipped(t *testing.T) {
	at := strings.Repeat("V", 64)
	for _, tt := range []struct {
		name, want string
	}{
		{at, at},
		{at + "W", `"` + at + `"… (65 bytes)`},
		{"A B", `"A B"`},
		{"A=B", `"A=B"`},
		{`A"B`, `"A\"B"`},
		{"A\tB", `"A\tB"`},
		{"A\nB", `"A\nB"`},
		{"", ""},
	} {
		err := &SettingError{Variable: tt.name, Value: "v", Reason: "r"}
		assert.Equal(t, tt.want+`="v": r`, err.Error(), "%q", tt.name)
	}
}
