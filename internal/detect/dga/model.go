// Package dga finds domain generation algorithms (T1568.002): one host
// asking for many distinct, random-looking names under many registered
// domains, most of them answered NXDOMAIN, as malware does when it tries
// today's list of generated names to find the one its operator
// registered. The few that resolve are named in the finding: they are the
// live command and control.
//
// "Random-looking" is judged by a character model built offline from an
// English word list and shipped in model_table.go (go generate; gen/):
// the mean log probability of a label's characters, each after the one
// before, placed between where English words and random strings fall.
package dga

//go:generate go run ./gen -words /usr/share/dict/american-english -out model_table.go

import "strings"

// Randomness says how far a label (one part of a name, without dots) is
// from an English word towards a random string: 0 for words, 1 for
// random strings of host-name characters, in between by the mean log
// probability of its characters (model_table.go).
func Randomness(label string) float64 {
	label = strings.ToLower(label)
	if label == "" {
		return 0
	}
	prev, sum := 0, 0.0
	for i := 0; i < len(label); i++ {
		c := strings.IndexByte(alphabet, label[i])
		if c < 2 {
			return 1 // not a host-name character
		}
		sum += float64(logProb[prev][c]) / 1000
		prev = c
	}
	sum += float64(logProb[prev][1]) / 1000
	mean := sum / float64(len(label)+1)
	r := (wordMean - mean) / (wordMean - randomMean)
	return min(max(r, 0), 1)
}
