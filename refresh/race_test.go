//go:build race

package refresh

// raceSlowdown stretches the time limits of tests: the race detector
// makes code several times slower.
const raceSlowdown = 5
