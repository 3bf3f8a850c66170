package testenv

import (
	"fmt"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder stands in for *testing.T so the test can observe skip and fail decisions
// without ending itself.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Skip(args ...any) {
	r.skipped = true
	r.msg = args[0].(string)
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = true
	r.msg = fmt.Sprintf(format, args...)
}

func TestRequire(t *testing.T) {
	sh, err := exec.LookPath("sh")
	require.NoError(t, err)

	tests := []struct {
		name        string
		integration string
		programs    []string
		wantSkip    bool
		wantFail    bool
	}{
		{name: "present", programs: []string{"sh"}},
		{name: "missing locally skips", programs: []string{"sh", "hpcship-no-such-program"}, wantSkip: true},
		{name: "missing in integration fails", integration: "1", programs: []string{"hpcship-no-such-program"}, wantFail: true},
		{name: "other values do not count", integration: "true", programs: []string{"hpcship-no-such-program"}, wantSkip: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(IntegrationEnv, tt.integration)
			r := &recorder{TB: t}
			got := Require(r, tt.programs...)
			assert.Equal(t, tt.wantSkip, r.skipped, "skipped")
			assert.Equal(t, tt.wantFail, r.failed, "failed")
			if !tt.wantSkip && !tt.wantFail {
				assert.Equal(t, []string{sh}, got)
			} else {
				assert.Contains(t, r.msg, "hpcship-no-such-program")
			}
		})
	}
}
