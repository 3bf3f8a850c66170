// Package broken does not compile: its tests cannot be built.
package broken

// One returns 1.
func One() int { return "1" }
