package beacon

import (
	"errors"
	"math"
	"slices"

	"github.com/dwell-nsm/dwell/internal/detect"
)

// RITA v5.1.1's beacon score, reproduced from its published method
// (../shared/docs/RITA-SCORING.md) so that users coming from RITA can compare.
// RITA looks at the last 24 hours of the data only and needs at least four
// distinct timestamps there; that is the gap dwell's own score closes.

// RITA parameters (RITA's defaults).
const (
	ritaMinTimestamps      = 4
	ritaStrobe             = 86400 // connections in 24 h from which a pair is a strobe, not a beacon
	ritaBins               = 24
	ritaModeSensitivity    = 0.05
	ritaOutlierRemoval     = 1
	ritaBimodalMinHours    = 11
	ritaDurMinHours        = 6
	ritaDurIdealConsistent = 12
)

// RITAScore is a pair's RITA-compatible beacon score and its parts.
type RITAScore struct {
	Score     float64 // the beacon score (0–1), equal weights of the four below
	Timestamp float64 // Bowley skewness and MAD of the intervals
	DataSize  float64 // Bowley skewness and MAD of orig_ip_bytes
	Histogram float64 // 24 hourly bins: coefficient of variation or bimodal fit
	Duration  float64 // coverage of the window or consistency of hours
	Conns     int     // connections in the window
	Threat    float64 // RITA's bucketed beacon threat score (hjson thresholds 50/70/90/100)
}

var errTooFew = errors.New("RITA needs at least 4 timestamps with 3 non-zero intervals")

// RITAWindow returns RITA's beacon window for data spanning [minTS, maxTS]
// (unix seconds): the histogram window [max(minTS, maxTS-24h), maxTS], and
// the first second of the hour-aligned period whose rows RITA selects.
func RITAWindow(minTS, maxTS int64) (histMin, histMax, rowsFrom int64) {
	histMin = max(minTS, maxTS-86400)
	rowsFrom = histMin - histMin%3600
	return histMin, maxTS, rowsFrom
}

// ScoreRITA computes RITA's beacon score for one pair from its connection
// timestamps (unix seconds, ascending) and sizes (orig_ip_bytes) inside the
// window, with histMin and histMax from RITAWindow.
func ScoreRITA(ts []uint32, sizes []float64, histMin, histMax int64) (RITAScore, error) {
	if len(ts) >= ritaStrobe {
		return RITAScore{}, errors.New("a strobe (one connection a second or more): RITA does not score it as a beacon")
	}
	if countUnique(ts) < ritaMinTimestamps {
		return RITAScore{}, errTooFew
	}
	tsScore, err := ritaTimestampScore(ts)
	if err != nil {
		return RITAScore{}, err
	}
	if len(sizes) < 3 {
		return RITAScore{}, errors.New("RITA needs at least 3 sizes")
	}
	sorted := slices.Clone(sizes)
	slices.Sort(sorted)
	dsScore := ritaStatistical(sorted, 0)
	hist, totalBars, longestRun := ritaHistogram(ts, histMin, histMax)
	histScore := max(ritaCV(hist), ritaBimodal(hist, totalBars))
	durScore := 0.0
	if totalBars >= ritaDurMinHours && histMax > histMin {
		coverage := min(math.Ceil(float64(int64(ts[len(ts)-1])-int64(ts[0]))/float64(histMax-histMin)*1000)/1000, 1)
		consistency := min(math.Ceil(float64(longestRun)/ritaDurIdealConsistent*1000)/1000, 1)
		durScore = max(coverage, consistency)
	}
	score := math.Round((tsScore*0.25+dsScore*0.25+durScore*0.25+histScore*0.25)*1000) / 1000
	return RITAScore{
		Score: score, Timestamp: tsScore, DataSize: dsScore, Histogram: histScore, Duration: durScore, Conns: len(ts),
		Threat: detect.Round(detect.Bucketed(score*100, 50, 70, 90, 100), 3),
	}, nil
}

func countUnique(ts []uint32) int {
	n := 0
	for i := range ts {
		if i == 0 || ts[i] != ts[i-1] {
			n++
		}
	}
	return n
}

func ritaTimestampScore(ts []uint32) (float64, error) {
	deltas := make([]float64, 0, len(ts)-1)
	for i := 0; i+1 < len(ts); i++ {
		if d := ts[i+1] - ts[i]; d > 0 {
			deltas = append(deltas, float64(d))
		}
	}
	if len(deltas) < 3 {
		return 0, errTooFew
	}
	slices.Sort(deltas)
	return ritaStatistical(deltas, 1), nil
}

// ritaStatistical is RITA's statistical score of sorted values: the mean of
// a Bowley-skewness score and a median-absolute-deviation score.
func ritaStatistical(sorted []float64, defaultMAD float64) float64 {
	q1, q2, q3 := detect.Quartiles(sorted)
	skew := 0.0
	if den := q3 - q1; den >= 10 && q2 != q1 && q2 != q3 {
		skew = (q1 + q3 - 2*q2) / den
	}
	skewScore := 1 - math.Abs(skew)
	madScore := defaultMAD
	if median := q2; median >= 1 {
		madScore = (median - detect.MAD(sorted)) / median
	}
	if madScore < 0 || math.IsNaN(madScore) {
		madScore = 0
	}
	return math.Round((skewScore+madScore)/2*1000) / 1000
}

// ritaHistogram counts timestamps into 24 equal bins over [histMin, histMax]
// the way RITA does (earlier timestamps fall into the first bin, the last
// edge belongs to the last bin) and returns the bins, the number of
// non-empty bins and the longest run of non-empty bins, wrapping around.
func ritaHistogram(ts []uint32, histMin, histMax int64) ([]int, int, int) {
	edges := make([]float64, ritaBins+1)
	step := float64(histMax-histMin) / ritaBins
	edges[0] = float64(histMin)
	for i := 1; i < ritaBins; i++ {
		edges[i] = float64(histMin) + float64(i)*step
	}
	edges[ritaBins] = float64(histMax)
	hist := make([]int, ritaBins)
	bin := 0
	for _, t := range ts {
		for bin < ritaBins-1 && float64(t) >= edges[bin+1] {
			bin++
		}
		hist[bin]++
	}
	bars, run, longest := 0, 0, 0
	for i := 0; i < 2*ritaBins; i++ {
		if hist[i%ritaBins] > 0 {
			run++
			if i < ritaBins {
				bars++
			}
		} else {
			longest = max(longest, run)
			run = 0
		}
	}
	longest = min(max(longest, run), ritaBins)
	return hist, bars, longest
}

func ritaCV(hist []int) float64 {
	total := 0
	for _, f := range hist {
		total += f
	}
	if total == 0 {
		return 0
	}
	mean := float64(total) / float64(len(hist))
	ss := 0.0
	for _, f := range hist {
		ss += (float64(f) - mean) * (float64(f) - mean)
	}
	cv := math.Sqrt(ss/float64(len(hist))) / mean
	if cv > 1 {
		return 0
	}
	return min(math.Round((1-cv)*1000)/1000, 1)
}

func ritaBimodal(hist []int, totalBars int) float64 {
	if totalBars < ritaBimodalMinHours {
		return 0
	}
	largestBar := 0
	for _, f := range hist {
		largestBar = max(largestBar, f)
	}
	binSize := math.Ceil(float64(largestBar) * ritaModeSensitivity)
	buckets := map[int]int{}
	for _, f := range hist {
		if f > 0 {
			buckets[int(math.Floor(float64(f)/binSize)*binSize)]++
		}
	}
	first, second := 0, 0
	for _, n := range buckets {
		if n > first {
			first, second = n, first
		} else if n > second {
			second = n
		}
	}
	fit := float64(first+second) / math.Max(float64(totalBars-ritaOutlierRemoval), 1)
	return min(math.Round(fit*1000)/1000, 1)
}
