// Package failing has a test that fails where integration requirements apply.
package failing

import "os"

// Integration reports whether HPCSHIP_INTEGRATION is 1.
func Integration() bool { return os.Getenv("HPCSHIP_INTEGRATION") == "1" }
