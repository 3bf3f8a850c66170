// Package notests has no tests.
package notests

// One returns 1.
func One() int { return 1 }
