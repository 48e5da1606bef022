package detect

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestRandomTrafficIsNotABeacon: connections at random (Poisson) times,
// at any rate, score low.
func TestRandomTrafficIsNotABeacon(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	start := time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC).UnixMicro()
	for _, mean := range []time.Duration{time.Minute, time.Hour, 6 * time.Hour} {
		for trial := range 5 {
			var times, sizes []int64
			ts := start
			for ts < start+30*86400*1e6 {
				ts += int64(rng.ExpFloat64() * float64(mean.Microseconds()))
				times = append(times, ts)
				sizes = append(sizes, int64(300+rng.IntN(3000)))
			}
			a, ok := RhythmOf(times, sizes, 30*24*time.Hour)
			if ok && a.Score >= 0.5 {
				t.Errorf("random traffic every %v on average (trial %d) scores %.3f: %+v", mean, trial, a.Score, a)
			}
		}
	}
}
