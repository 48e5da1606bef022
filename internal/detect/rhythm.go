package detect

import (
	"math"
	"slices"
	"sort"
	"time"
)

// A rhythm is dwell's beacon score, shared by the detectors that look for
// check-ins (beacon, deadc2), built for what RITA misses: periods from
// seconds to days, jitter up to ±50 %, missed check-ins (machines off at
// night), extra connections in the same pair, and all history at once.
//
// 1. Connections closer together than a burst gap (2 s, or a tenth of the
//    median interval when that is shorter) are one check-in.
// 2. The period P is the interval that the most check-in intervals lie
//    within ±50 % of, refined as the mean of those intervals. Intervals
//    outside the band are missed check-ins or extra traffic; they lower
//    the score without hiding the beacon.
// 3. Timing: the in-band fraction f, rescaled against what random (Poisson)
//    traffic reaches with the best P (about 0.39): regularity
//    = (f − 0.4) / 0.6; plus tightness, 1 − CV/0.35 of the in-band
//    intervals (uniform ±50 % jitter has a CV of 0.29). timing = 0.8
//    regularity + 0.2 tightness.
// 4. Size: 1 − MAD/median of the connection sizes (as RITA's), 0.5 if unknown.
// 5. Longevity: how long the pair kept it up, from 0 at an hour or less
//    to 1 at two days or more (log scale), or its share of the data's span
//    when the data is shorter, or, for a short burst inside long data (a
//    few minutes of check-ins every few seconds), up to 0.3 for 30
//    in-band intervals (log scale from 3), and up to 0.45 as the
//    intervals tighten: a rhythm that regular is no accident, however
//    short, but no match for days of it. Past half an hour the credit
//    falls to 40 % at an hour, where the hours themselves are the measure. A bot hammering a login page every minute
//    for half an hour is periodic; an implant checks in for days.
//    Persistence: 0.4 × the share of P-sized slots (at least an hour)
//    between first and last check-in that hold one + 0.6 × longevity.
// 6. score = (0.55 timing + 0.1 size + 0.35 persistence) × confidence ×
//    (0.5 + 0.5 longevity), confidence = 1 − exp(−in-band intervals / 5):
//    three intervals weigh 45 %, ten 86 %, twenty 98 %.

// Rhythm is dwell's reading of one pair's connections.
type Rhythm struct {
	Conns       int
	CheckIns    int
	Intervals   int
	InBand      int
	Period      time.Duration
	Jitter      float64 // half the spread of the central 90 % of in-band intervals, relative to the period
	First, Last time.Time
	Timing      float64
	Size        float64
	Persistence float64
	Longevity   float64
	Confidence  float64
	Score       float64
}

const (
	burstGap           = 2 * time.Second
	periodBand         = 0.5  // check-in intervals within ±50 % of the period
	poissonShare       = 0.4  // in-band share random traffic reaches
	cvScale            = 0.35 // coefficient of variation that scores 0 tightness
	minRhythmIntervals = 3
)

// RhythmOf scores one pair: times in unix microseconds (ascending), sizes
// aligned with them, dataSpan the length of the data searched. ok is false
// when there are fewer than four check-ins.
func RhythmOf(times, sizes []int64, dataSpan time.Duration) (a Rhythm, ok bool) {
	a.Conns = len(times)
	if len(times) < minRhythmIntervals+1 {
		return a, false
	}
	a.First, a.Last = time.UnixMicro(times[0]).UTC(), time.UnixMicro(times[len(times)-1]).UTC()

	// 1. Check-ins.
	raw := make([]float64, 0, len(times)-1)
	for i := 1; i < len(times); i++ {
		raw = append(raw, float64(times[i]-times[i-1])/1e6)
	}
	sortedRaw := slices.Clone(raw)
	slices.Sort(sortedRaw)
	gap := math.Min(burstGap.Seconds(), Median(sortedRaw)/10)
	var starts []float64
	for i, t := range times {
		if i == 0 || float64(t-times[i-1])/1e6 > gap {
			starts = append(starts, float64(t)/1e6)
		}
	}
	a.CheckIns = len(starts)
	if len(starts) < minRhythmIntervals+1 {
		return a, false
	}
	iv := make([]float64, len(starts)-1)
	for i := 1; i < len(starts); i++ {
		iv[i-1] = starts[i] - starts[i-1]
	}
	a.Intervals = len(iv)
	slices.Sort(iv)

	// 2. Period.
	// The band is centred by bestPeriod; the period reported (and used for
	// the slots below) is the median of the intervals in it.
	inBand := inBandOf(iv, bestPeriod(iv))
	a.InBand = len(inBand)
	p := Median(inBand)
	if a.InBand == 0 || p <= 0 {
		return a, false
	}
	a.Period = time.Duration(p * float64(time.Second))
	lo, hi := inBand[int(0.05*float64(len(inBand)-1))], inBand[int(math.Ceil(0.95*float64(len(inBand)-1)))]
	a.Jitter = (hi - lo) / 2 / p

	// 3. Timing.
	f := float64(a.InBand) / float64(a.Intervals)
	regularity := Ramp(f, poissonShare, 1)
	tightness := Clamp(1 - coefVar(inBand)/cvScale)
	a.Timing = 0.8*regularity + 0.2*tightness

	// 4. Size.
	a.Size = sizeRegularity(sizes)

	// 5. Persistence.
	slot := math.Max(p*(1+periodBand), 3600)
	span := starts[len(starts)-1] - starts[0]
	slots := int(span/slot) + 1
	filled := map[int]bool{}
	for _, s := range starts {
		filled[int((s-starts[0])/slot)] = true
	}
	coverage := float64(len(filled)) / float64(slots)
	burst := (0.3 + 0.15*tightness) * Ramp(math.Log(float64(a.InBand)), math.Log(3), math.Log(30)) * (1 - 0.6*Ramp(span, 1800, 3600))
	a.Longevity = max(Clamp(math.Log(math.Max(span/3600, 1))/math.Log(48)), Clamp(span/math.Max(dataSpan.Seconds(), 1)), burst)
	a.Persistence = 0.4*coverage + 0.6*a.Longevity

	// 6. Score.
	a.Confidence = Saturate(float64(a.InBand), 5)
	a.Score = (0.55*a.Timing + 0.1*a.Size + 0.35*a.Persistence) * a.Confidence * (0.5 + 0.5*a.Longevity)
	return a, true
}

// within returns the sorted intervals within ±band of p.
func inBandOf(sorted []float64, p float64) []float64 {
	i := sort.SearchFloat64s(sorted, p*(1-periodBand))
	j := sort.Search(len(sorted), func(k int) bool { return sorted[k] > p*(1+periodBand) })
	return sorted[i:j]
}

// bestPeriod returns the period that the most intervals lie within ±band
// of. Candidates are spread over the intervals' range on a log scale;
// neighbouring candidates usually tie, and the middle of the widest
// plateau at the best count is taken, which centres the band on the
// intervals rather than on one edge of them.
func bestPeriod(sorted []float64) float64 {
	i0 := sort.Search(len(sorted), func(i int) bool { return sorted[i] > 0 })
	if i0 == len(sorted) {
		return 0
	}
	lo, hi := sorted[i0], sorted[len(sorted)-1]
	if hi <= lo {
		return lo
	}
	const steps = 400
	ratio := math.Pow(hi/lo, 1.0/steps)
	counts := make([]int, steps+1)
	cands := make([]float64, steps+1)
	best := 0
	p := lo
	for i := range counts {
		cands[i], counts[i] = p, len(inBandOf(sorted, p))
		best = max(best, counts[i])
		p *= ratio
	}
	runStart, bestStart, bestLen := -1, 0, 0
	for i := 0; i <= len(counts); i++ {
		if i < len(counts) && counts[i] == best {
			if runStart < 0 {
				runStart = i
			}
			continue
		}
		if runStart >= 0 && i-runStart > bestLen {
			bestStart, bestLen = runStart, i-runStart
		}
		runStart = -1
	}
	return math.Sqrt(cands[bestStart] * cands[bestStart+bestLen-1])
}

// coefVar returns the coefficient of variation of xs.
func coefVar(xs []float64) float64 {
	if len(xs) < 2 {
		return 0
	}
	mean := 0.0
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if mean == 0 {
		return 0
	}
	ss := 0.0
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return math.Sqrt(ss/float64(len(xs))) / mean
}

func sizeRegularity(sizes []int64) float64 {
	if len(sizes) < 3 {
		return 0.5
	}
	s := make([]float64, len(sizes))
	for i, v := range sizes {
		s[i] = float64(v)
	}
	slices.Sort(s)
	m := Median(s)
	if m < 1 {
		return 0.5
	}
	return Clamp((m - MAD(s)) / m)
}
