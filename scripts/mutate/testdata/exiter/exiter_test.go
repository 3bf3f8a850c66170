package exiter

import (
	"os"
	"testing"
)

// TestMain exits 0 without running the tests when Off says so.
func TestMain(m *testing.M) {
	if Off() {
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestOn(t *testing.T) {
	if Off() {
		t.Fatal("off")
	}
}
