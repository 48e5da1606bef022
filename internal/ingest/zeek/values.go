package zeek

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

var (
	errEmptyNumber = errors.New("empty number")
	errBadNumber   = errors.New("not a number")
	errRange       = errors.New("out of range")
)

// parseDecimal reads a non-negative decimal "123" or "123.456789" into whole
// units and nanoseconds, rounding to the microsecond (Zeek's precision).
// Forms it does not handle (exponents, signs) fall back to strconv.
func parseDecimal(s string) (sec int64, nsec int64, err error) {
	if s == "" {
		return 0, 0, errEmptyNumber
	}
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if i >= 18 {
			return 0, 0, errRange
		}
		sec = sec*10 + int64(s[i]-'0')
	}
	if i == 0 && (len(s) < 2 || s[0] != '.') {
		return parseDecimalSlow(s)
	}
	if i == len(s) {
		return sec, 0, nil
	}
	if s[i] != '.' {
		return parseDecimalSlow(s)
	}
	i++
	var frac int64
	digits := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if digits < 9 {
			frac = frac*10 + int64(s[i]-'0')
			digits++
		} else if digits == 9 {
			// One extra digit decides rounding at the nanosecond; further digits
			// cannot change the microsecond.
			if s[i] >= '5' {
				frac++
			}
			digits++
		}
	}
	if i != len(s) {
		return parseDecimalSlow(s)
	}
	for d := min(digits, 9); d < 9; d++ {
		frac *= 10
	}
	return sec, roundMicro(frac), nil
}

// roundMicro rounds nanoseconds (0..1e9] to whole microseconds; the result
// may be 1e9, which callers normalise through time.Unix.
func roundMicro(ns int64) int64 { return (ns + 500) / 1000 * 1000 }

func parseDecimalSlow(s string) (int64, int64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, 0, errBadNumber
	}
	if f < 0 || f >= 1e17 {
		return 0, 0, errRange
	}
	sec := math.Floor(f)
	return int64(sec), roundMicro(int64(math.Round((f - sec) * 1e9))), nil
}

// parseEpoch parses Zeek's time: seconds since 1970 with a fraction.
func parseEpoch(s string) (time.Time, error) {
	sec, nsec, err := parseDecimal(s)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(sec, nsec).UTC(), nil
}

// parseTime parses a timestamp as Zeek writes it, epoch seconds, or as
// ISO 8601 ("2024-04-19T08:00:01.123456Z", the form of
// LogAscii::json_timestamps = JSON::TS_ISO8601 and of converters),
// rounded to the microsecond.
func parseTime(s string) (time.Time, error) {
	t, err := parseTimeAny(s)
	if err == nil && !event.Representable(t) {
		return time.Time{}, fmt.Errorf("time %s is out of range (years 1 to 9999)", s)
	}
	return t, err
}

func parseTimeAny(s string) (time.Time, error) {
	if t, err := parseEpoch(s); err == nil {
		return t, nil
	}
	if len(s) >= 19 && s[4] == '-' && (s[10] == 'T' || s[10] == ' ') {
		iso := s
		if iso[10] == ' ' {
			iso = iso[:10] + "T" + iso[11:]
		}
		if t, err := time.Parse(time.RFC3339Nano, iso); err == nil {
			return event.Micro(t.Add(500 * time.Nanosecond)), nil
		}
		if t, err := time.Parse("2006-01-02T15:04:05.999999999", iso); err == nil {
			return event.Micro(t.Add(500 * time.Nanosecond)), nil // no zone: UTC, as Zeek logs
		}
	}
	return time.Time{}, fmt.Errorf("not a time (epoch seconds or ISO 8601)")
}

// parseInterval parses Zeek's interval: seconds with a fraction. Negative
// intervals happen (clock steps) and are kept.
func parseInterval(s string) (time.Duration, error) {
	neg := false
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	}
	sec, nsec, err := parseDecimal(s)
	if err != nil {
		return 0, err
	}
	if sec > math.MaxInt64/int64(time.Second)-1 {
		return 0, errRange
	}
	d := time.Duration(sec)*time.Second + time.Duration(nsec)
	if neg {
		d = -d
	}
	return d, nil
}

// parseCount parses Zeek's count, an unsigned 64-bit integer. A number with a
// zero fraction ("12.0", as some JSON encoders write) is accepted.
func parseCount(s string) (uint64, error) {
	if s == "" {
		return 0, errEmptyNumber
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			if c == '.' && strings.Trim(s[i+1:], "0") == "" && i > 0 {
				return n, nil
			}
			return 0, errBadNumber
		}
		if n > (math.MaxUint64-9)/10 {
			return strconv.ParseUint(s, 10, 64)
		}
		n = n*10 + uint64(c-'0')
	}
	return n, nil
}

func parsePort(s string) (uint64, error) {
	n, err := parseCount(s)
	if err != nil {
		return 0, err
	}
	if n > 65535 {
		return 0, fmt.Errorf("port %d %w", n, errRange)
	}
	return n, nil
}

func parseBool(s string) (bool, error) {
	switch s {
	case "T", "true", "1":
		return true, nil
	case "F", "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("not a bool")
}

func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("not an IP address")
	}
	return a.Unmap(), nil
}

// unescapeZeek decodes the \xHH escapes Zeek's ASCII writer uses for
// separators and non-printable bytes. Other backslashes are kept as they are.
func unescapeZeek(s string) string {
	i := strings.Index(s, `\x`)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i >= 0 {
		b.WriteString(s[:i])
		if i+3 < len(s) {
			hi, ok1 := unhex(s[i+2])
			lo, ok2 := unhex(s[i+3])
			if ok1 && ok2 {
				b.WriteByte(hi<<4 | lo)
				s = s[i+4:]
				i = strings.Index(s, `\x`)
				continue
			}
		}
		b.WriteString(`\x`)
		s = s[i+2:]
		i = strings.Index(s, `\x`)
	}
	b.WriteString(s)
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func (t ftype) String() string {
	switch t {
	case fTime:
		return "time"
	case fString:
		return "string"
	case fAddr:
		return "addr"
	case fPort:
		return "port"
	case fCount:
		return "count"
	case fInterval:
		return "interval"
	case fBool:
		return "bool"
	case fStrings:
		return "set/vector of string"
	case fAddrs:
		return "set/vector of addr"
	case fIntervals:
		return "vector of interval"
	}
	return "?"
}
