//go:build race

package imagebuild_test

// raceEnabled reports that the tests run under the race detector, which makes
// compression an order of magnitude slower.
const raceEnabled = true
