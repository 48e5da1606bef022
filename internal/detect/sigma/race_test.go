//go:build race

package sigma

// raceEnabled: the race detector is on (sync.Pool then drops items, so
// allocation counts mean nothing).
const raceEnabled = true
