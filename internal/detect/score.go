package detect

import (
	"math"
	"slices"
)

// Round rounds x to n decimal places.
func Round(x float64, n int) float64 {
	p := math.Pow(10, float64(n))
	return math.Round(x*p) / p
}

// Clamp limits x to [0, 1]; NaN becomes 0.
func Clamp(x float64) float64 {
	if math.IsNaN(x) || x < 0 {
		return 0
	}
	if x > 1 {
		return 1
	}
	return x
}

// Ramp maps x linearly from [lo, hi] onto [0, 1], clamped.
func Ramp(x, lo, hi float64) float64 {
	if hi == lo {
		if x >= hi {
			return 1
		}
		return 0
	}
	return Clamp((x - lo) / (hi - lo))
}

// Saturate maps a count onto [0, 1) with diminishing returns: k events
// give 63 %, 3k give 95 %.
func Saturate(n, k float64) float64 {
	if n <= 0 || k <= 0 {
		return 0
	}
	return 1 - math.Exp(-n/k)
}

// Median returns the median of sorted values (the mean of the two middle
// ones for an even count); 0 for none.
func Median(sorted []float64) float64 {
	n := len(sorted)
	switch {
	case n == 0:
		return 0
	case n%2 == 1:
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// Quartiles returns Q1, Q2, Q3 of sorted values the way the Go library
// montanaflynn/stats v0.7.1 computes them (and so RITA): Q2 is the median;
// Q1 and Q3 are the medians of the lower and upper halves, the middle
// element of an odd count belonging to neither.
func Quartiles(sorted []float64) (q1, q2, q3 float64) {
	n := len(sorted)
	if n == 0 {
		return 0, 0, 0
	}
	c1, c2 := n/2, n/2
	if n%2 == 1 {
		c1, c2 = (n-1)/2, (n-1)/2+1
	}
	return Median(sorted[:c1]), Median(sorted), Median(sorted[c2:])
}

// MAD returns the median absolute deviation about the median of sorted
// values (population form).
func MAD(sorted []float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	m := Median(sorted)
	dev := make([]float64, len(sorted))
	for i, v := range sorted {
		dev[i] = math.Abs(v - m)
	}
	slices.Sort(dev)
	return Median(dev)
}

// Bucketed maps v onto RITA's piecewise-linear threat scale with category
// thresholds base < low < medium < high: below base 0, then 0.2–0.4,
// 0.4–0.6 and 0.6–0.8 across the three bands (never above 0.8).
func Bucketed(v, base, low, medium, high float64) float64 {
	switch {
	case v < base:
		return 0
	case v < low:
		return 0.2 + (v-base)/(low-base)*0.2
	case v < medium:
		return 0.4 + (v-low)/(medium-low)*0.2
	}
	return 0.6 + (min(v, high)-medium)/(high-medium)*0.2
}

// Entropy returns the Shannon entropy of s in bits per byte.
func Entropy(s string) float64 {
	if s == "" {
		return 0
	}
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	n := float64(len(s))
	h := 0.0
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}
