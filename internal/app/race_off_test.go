//go:build !race

package app

// raceDetector is true when the tests run under the race detector.
const raceDetector = false
