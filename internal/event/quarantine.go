package event

import "time"

// Quarantined is a record held out of the hunt because the time it claims
// cannot be true: before any telemetry dwell accepts, in the future, or far
// from every other record of its input. One such record (a clock at 1970,
// a forged year 9999) would otherwise move every baseline and window the
// detectors keep; stored apart, it stays for the analyst to look at.
type Quarantined struct {
	Kind Kind
	// TS is the time the record claims, when a store can keep it (years 1
	// to 9999); zero otherwise.
	TS time.Time
	// Claimed is that time as read, RFC 3339 (any year).
	Claimed string
	Reason  string
	// Record is the whole record, as JSON.
	Record string
	Src    Source
}

// Representable reports whether t lies in years 1 to 9999: the range of
// RFC 3339 and of Go's JSON times, which both stores keep exactly. A time
// outside it is a decoding error, never a record.
func Representable(t time.Time) bool {
	y := t.Year()
	return y >= 1 && y <= 9999
}
