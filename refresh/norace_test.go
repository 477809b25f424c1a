//go:build !race

package refresh

// raceSlowdown stretches the time limits of tests under the race
// detector; without it, none.
const raceSlowdown = 1
