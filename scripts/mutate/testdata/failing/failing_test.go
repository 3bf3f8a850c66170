package failing

import "testing"

func TestNotIntegration(t *testing.T) {
	if Integration() {
		t.Fatal("HPCSHIP_INTEGRATION=1")
	}
}
