//go:build !race

package imagebuild_test

const raceEnabled = false
