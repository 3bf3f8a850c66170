// Package vandal has one mutant; its test removes the mutate command's work directory.
package vandal

// Two returns 2.
func Two() int { return 1 + 1 }
