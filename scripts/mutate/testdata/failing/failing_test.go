package failing

import (
	"os"
	"testing"
)

// TestNotIntegration fails under HPCSHIP_INTEGRATION=1 unless HPCSHIP_FIXTURE_ALLOW is 1 too.
func TestNotIntegration(t *testing.T) {
	if Integration() && os.Getenv("HPCSHIP_FIXTURE_ALLOW") != "1" {
		t.Fatal("HPCSHIP_INTEGRATION=1")
	}
}
