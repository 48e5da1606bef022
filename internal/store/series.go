package store

import (
	"errors"
	"sort"
	"strconv"
	"strings"
)

// ParsePoints appends the comma-separated "ms[:size]" points of s to times
// (as microseconds) and sizes (0 when absent): the text form in which
// the SQL backends send a series, far cheaper through their drivers than
// lists of values.
func ParsePoints(times, sizes []int64, s string) ([]int64, []int64, error) {
	for len(s) > 0 {
		i := strings.IndexByte(s, ',')
		if i < 0 {
			i = len(s)
		}
		p := s[:i]
		var size int64
		if j := strings.IndexByte(p, ':'); j >= 0 {
			// A size beyond int64 (a forged count the store kept) saturates.
			v, err := strconv.ParseInt(p[j+1:], 10, 64)
			if err != nil && !errors.Is(err, strconv.ErrRange) {
				return times, sizes, err
			}
			p, size = p[:j], v
		}
		ms, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return times, sizes, err
		}
		times, sizes = append(times, ms*1000), append(sizes, size)
		if i == len(s) {
			break
		}
		s = s[i+1:]
	}
	return times, sizes, nil
}

// SortSeries puts a series in (time, size) order; it usually arrives in
// order already, as ingest stores records in time order.
func SortSeries(s *Series) {
	sorted := true
	for i := 1; i < len(s.Times) && sorted; i++ {
		sorted = s.Times[i-1] < s.Times[i] || (s.Times[i-1] == s.Times[i] && s.Sizes[i-1] <= s.Sizes[i])
	}
	if !sorted {
		sort.Sort(seriesOrder{s})
	}
}

type seriesOrder struct{ s *Series }

func (o seriesOrder) Len() int { return len(o.s.Times) }
func (o seriesOrder) Less(i, j int) bool {
	t := o.s.Times
	return t[i] < t[j] || (t[i] == t[j] && o.s.Sizes[i] < o.s.Sizes[j])
}
func (o seriesOrder) Swap(i, j int) {
	o.s.Times[i], o.s.Times[j] = o.s.Times[j], o.s.Times[i]
	o.s.Sizes[i], o.s.Sizes[j] = o.s.Sizes[j], o.s.Sizes[i]
}
