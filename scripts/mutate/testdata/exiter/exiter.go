// Package exiter's tests stop before they run when Off is true: its one mutant makes it so.
package exiter

import "os"

// Off reports whether HPCSHIP_FIXTURE_OFF is 1.
func Off() bool { return os.Getenv("HPCSHIP_FIXTURE_OFF") == "1" }
