package console

import (
	"cmp"
	"fmt"
	"html"
	"html/template"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/detect"
)

// Plots are drawn here as SVG, in the page: nothing to load, nothing that
// runs, readable when printed. Every text from the data is escaped.

const (
	plotWidth = 900
	labelW    = 150 // the left column of row labels
	rowH      = 22
)

// palette gives each detector a colour (by its order of appearance).
func palette(i int) string {
	return []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"}[i%10]
}

// span is the time axis of a plot.
type span struct{ from, to time.Time }

func (s span) x(t time.Time) float64 {
	d := s.to.Sub(s.from)
	if d <= 0 {
		return labelW
	}
	return labelW + float64(plotWidth-labelW-10)*float64(t.Sub(s.from))/float64(d)
}

// axis draws date ticks under a plot of height h.
func (s span) axis(b *strings.Builder, h int) {
	days := s.to.Sub(s.from).Hours() / 24
	step := 1
	for _, st := range []int{1, 2, 7, 14, 30, 61, 91, 182, 365, 730} {
		step = st
		if days/float64(st) <= 8 {
			break
		}
	}
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#888"/>`, labelW, h, plotWidth-10, h)
	for t := s.from.Truncate(24 * time.Hour); !t.After(s.to); t = t.AddDate(0, 0, step) {
		if t.Before(s.from) {
			continue
		}
		x := s.x(t)
		if x > plotWidth-40 {
			break // its date would run off the plot
		}
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#888"/><text x="%.1f" y="%d" font-size="11" text-anchor="middle" fill="#444">%s</text>`,
			x, h, x, h+4, x, h+16, t.Format("2006-01-02"))
	}
}

// timeline plots an incident's findings from its dwell start to its last
// sighting: a row per detector, a bar per finding from its first to its
// last time, a dot where it began.
func timeline(inc *correlate.Incident) template.HTML {
	if len(inc.Findings) == 0 {
		return ""
	}
	s := span{inc.DwellStart, inc.LastSeen}
	for _, f := range inc.Findings {
		s.from = minTime(s.from, f.FirstSeen)
		s.to = maxTime(s.to, f.LastSeen)
	}
	if !s.to.After(s.from) {
		s.to = s.from.Add(time.Hour)
	}
	var rows []string
	for _, f := range inc.Findings {
		if !slices.Contains(rows, f.Detector) {
			rows = append(rows, f.Detector)
		}
	}
	h := len(rows)*rowH + 10
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="plot" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="findings over time, by detector">`,
		plotWidth, h+24, plotWidth, h+24)
	fmt.Fprintf(&b, `<title>Findings from %s to %s, one row per detector</title>`, s.from.UTC().Format(time.DateTime), s.to.UTC().Format(time.DateTime))
	for i, r := range rows {
		y := 5 + i*rowH
		fmt.Fprintf(&b, `<text x="4" y="%d" font-size="12" fill="#222">%s</text>`, y+15, html.EscapeString(r))
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#eee"/>`, labelW, y+rowH/2, plotWidth-10, y+rowH/2)
	}
	for _, f := range inc.Findings {
		i := slices.Index(rows, f.Detector)
		y := 5 + i*rowH
		x1, x2 := s.x(f.FirstSeen), s.x(f.LastSeen)
		c := palette(i)
		title := html.EscapeString(fmt.Sprintf("%s %.2f %s: %s → %s", f.Detector, f.Score, f.Severity, f.FirstSeen.UTC().Format(time.DateTime),
			f.LastSeen.UTC().Format(time.DateTime)))
		fmt.Fprintf(&b, `<g><title>%s</title><rect x="%.1f" y="%d" width="%.1f" height="8" fill="%s" fill-opacity="0.6"/><circle cx="%.1f" cy="%d" r="4" fill="%s"/></g>`,
			title, x1, y+7, math.Max(x2-x1, 2), c, x1, y+11, c)
	}
	s.axis(&b, h)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // G203: built here with every text escaped
}

// bytesOut plots the bytes sent to each destination per day, the five
// largest destinations, on the same days as the timeline.
func bytesOut(inc *correlate.Incident) template.HTML {
	ts := slices.Clone(inc.BytesOut)
	ts = slices.DeleteFunc(ts, func(t correlate.Transfer) bool { return len(t.PerDay) == 0 })
	if len(ts) == 0 {
		return ""
	}
	slices.SortFunc(ts, func(a, b correlate.Transfer) int { return cmp.Compare(b.Bytes, a.Bytes) })
	ts = ts[:min(5, len(ts))]
	s := span{}
	var peak uint64
	for _, t := range ts {
		for _, d := range t.PerDay {
			day, err := time.Parse(time.DateOnly, d.Day)
			if err != nil {
				continue
			}
			if s.from.IsZero() || day.Before(s.from) {
				s.from = day
			}
			s.to = maxTime(s.to, day.Add(24*time.Hour))
			peak = max(peak, d.Bytes)
		}
	}
	if peak == 0 || s.from.IsZero() {
		return ""
	}
	const barH = 40
	h := len(ts)*(barH+8) + 6
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="plot" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="bytes out per day per destination">`,
		plotWidth, h+24, plotWidth, h+24)
	fmt.Fprintf(&b, `<title>Bytes sent per day to the %d largest destinations (peak %s a day)</title>`, len(ts), detect.HumanBytes(peak))
	dayW := s.x(s.from.Add(24*time.Hour)) - s.x(s.from)
	for i, t := range ts {
		y := 4 + i*(barH+8)
		label := t.Dst.String()
		if t.Domain != "" {
			label = t.Domain
		}
		fmt.Fprintf(&b, `<text x="4" y="%d" font-size="12" fill="#222">%s</text><text x="4" y="%d" font-size="10" fill="#666">%s</text>`,
			y+16, html.EscapeString(clip(label, 22)), y+30, html.EscapeString(detect.HumanBytes(t.Bytes)))
		for _, d := range t.PerDay {
			day, err := time.Parse(time.DateOnly, d.Day)
			if err != nil {
				continue
			}
			bh := float64(barH) * float64(d.Bytes) / float64(peak)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`,
				s.x(day), float64(y+barH)-bh, math.Max(dayW-1, 1), math.Max(bh, 1), palette(i), html.EscapeString(label), d.Day, detect.HumanBytes(d.Bytes))
		}
	}
	s.axis(&b, h)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // G203: built here with every text escaped
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// checkIns plots the times of a pair's connections: the day across, the
// time of day up. A beacon is a row of dots at the same height, or a
// slanted one when its period is not a day's divisor; people's traffic
// is a band in working hours.
func checkIns(ts []time.Time) template.HTML {
	if len(ts) < 2 {
		return ""
	}
	s := span{ts[0].Truncate(24 * time.Hour), ts[len(ts)-1].Truncate(24 * time.Hour).Add(24 * time.Hour)}
	const h = 240
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="plot" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="check-in times: day across, time of day up">`,
		plotWidth, h+24, plotWidth, h+24)
	fmt.Fprintf(&b, `<title>%d connections: the day across, the time of day (UTC) up</title>`, len(ts))
	for _, hr := range []int{0, 6, 12, 18, 24} {
		y := float64(h) - float64(h-10)*float64(hr)/24
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" font-size="11" text-anchor="end" fill="#444">%02d:00</text>`,
			labelW, y, plotWidth-10, y, labelW-6, y+4, hr)
	}
	for _, t := range ts {
		day := t.Truncate(24 * time.Hour)
		frac := float64(t.Sub(day)) / float64(24*time.Hour)
		y := float64(h) - float64(h-10)*frac
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2" fill="#1f77b4" fill-opacity="0.7"/>`, s.x(day.Add(12*time.Hour)), y)
	}
	s.axis(&b, h)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // G203: numbers only
}

// intervals plots how long passed between a pair's connections, on a
// logarithmic scale from a second to a week: a beacon is one tall bar.
func intervals(ts []time.Time) template.HTML {
	if len(ts) < 3 {
		return ""
	}
	const bins, lo, hi = 60, 0.0, 5.78 // log10 seconds: 1 s to 7 days
	counts := make([]int, bins)
	peak := 0
	for i := 1; i < len(ts); i++ {
		d := ts[i].Sub(ts[i-1]).Seconds()
		if d < 1 {
			d = 1
		}
		k := int((math.Log10(d) - lo) / (hi - lo) * bins)
		k = min(max(k, 0), bins-1)
		counts[k]++
		peak = max(peak, counts[k])
	}
	const h = 160
	w := float64(plotWidth-labelW-10) / bins
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="plot" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="intervals between connections">`,
		plotWidth, h+24, plotWidth, h+24)
	fmt.Fprintf(&b, `<title>%d intervals between connections, 1 s to 7 days on a logarithmic scale</title>`, len(ts)-1)
	for k, n := range counts {
		if n == 0 {
			continue
		}
		bh := float64(h-10) * float64(n) / float64(peak)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#9467bd"><title>%d</title></rect>`,
			labelW+float64(k)*w, float64(h)-bh, math.Max(w-1, 1), bh, n)
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#888"/>`, labelW, h, plotWidth-10, h)
	for _, m := range []struct {
		s    float64
		text string
	}{{1, "1 s"}, {60, "1 min"}, {600, "10 min"}, {3600, "1 h"}, {6 * 3600, "6 h"}, {86400, "1 day"}, {7 * 86400, "7 days"}} {
		x := labelW + (math.Log10(m.s)-lo)/(hi-lo)*float64(plotWidth-labelW-10)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#888"/><text x="%.1f" y="%d" font-size="11" text-anchor="middle" fill="#444">%s</text>`,
			x, h, x, h+4, x, h+16, m.text)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // G203: numbers and constants only
}

// dailyBytes reads an evidence series of {"day": "2006-01-02", "bytes":
// n}, as the incident's JSON gives it back.
func dailyBytes(v any) map[time.Time]float64 {
	out := map[time.Time]float64{}
	xs, _ := v.([]any)
	for _, x := range xs {
		m, _ := x.(map[string]any)
		ds, _ := m["day"].(string)
		b, ok := m["bytes"].(float64)
		if day, err := time.Parse(time.DateOnly, ds); err == nil && ok {
			out[day] = b
		}
	}
	return out
}

// baseline plots an exfiltration finding's bytes per day to its
// destination against everything its host sent out on each day around
// them, and the host's usual day (the median of its daily totals), on a
// logarithmic scale: theft stands out as days far above the line.
func baseline(f *detect.Finding) template.HTML {
	dst := dailyBytes(f.Evidence["bytes_out_per_day"])
	host := dailyBytes(f.Evidence["host_bytes_out_per_day"])
	if len(dst) == 0 {
		return ""
	}
	usual, _ := f.Evidence["host_median_daily_bytes_out"].(float64)
	s := span{}
	peak := usual
	for _, series := range []map[time.Time]float64{dst, host} {
		for day, b := range series {
			s.from = minTime(s.from, day)
			s.to = maxTime(s.to, day.Add(24*time.Hour))
			peak = max(peak, b)
		}
	}
	const lo, h = 3.0, 200 // from 1 kB up
	hi := math.Max(math.Ceil(math.Log10(math.Max(peak, 1))), lo+1)
	y := func(b float64) float64 {
		v := math.Min(math.Max(math.Log10(math.Max(b, 1)), lo), hi)
		return float64(h) - float64(h-24)*(v-lo)/(hi-lo) // the legend above
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="plot" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="bytes out per day against the host's usual day">`,
		plotWidth, h+24, plotWidth, h+24)
	fmt.Fprintf(&b, `<title>Bytes per day to %s (red) and everything %s sent out (grey), logarithmic; the dashed line is the host's usual day (%s)</title>`,
		html.EscapeString(f.Dst.String()), html.EscapeString(f.Src.String()), detect.HumanBytes(uint64(usual)))
	for p := lo; p <= hi; p++ {
		yy := y(math.Pow(10, p))
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" font-size="11" text-anchor="end" fill="#444">%s</text>`,
			labelW, yy, plotWidth-10, yy, labelW-6, yy+4, detect.HumanBytes(uint64(math.Pow(10, p))))
	}
	dayW := math.Max(s.x(s.from.Add(24*time.Hour))-s.x(s.from)-1, 1)
	bar := func(series map[time.Time]float64, inset float64, fill, what string) {
		days := slices.SortedFunc(maps.Keys(series), func(a, b time.Time) int { return a.Compare(b) })
		for _, day := range days {
			top := y(series[day])
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`,
				s.x(day)+inset*dayW, top, math.Max(dayW*(1-2*inset), 1), math.Max(float64(h)-top, 1), fill, day.Format(time.DateOnly), what,
				detect.HumanBytes(uint64(series[day])))
		}
	}
	fmt.Fprintf(&b, `<rect x="%d" y="2" width="10" height="10" fill="#d62728"/><text x="%d" y="11" font-size="11" fill="#444">to %s</text>`,
		labelW, labelW+14, html.EscapeString(f.Dst.String()))
	fmt.Fprintf(&b, `<rect x="%d" y="2" width="10" height="10" fill="#c7c7c7"/><text x="%d" y="11" font-size="11" fill="#444">%s to all destinations (bytes its connections counted)</text>`,
		labelW+220, labelW+234, html.EscapeString(f.Src.String()))
	bar(host, 0, "#c7c7c7", "the host, all destinations")
	bar(dst, 0.2, "#d62728", "to this destination")
	if usual > 0 {
		yy := y(usual)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#1f77b4" stroke-dasharray="6 4"/><text x="%d" y="%.1f" font-size="11" fill="#1f77b4">usual day %s</text>`,
			labelW, yy, plotWidth-10, yy, labelW+4, yy-4, detect.HumanBytes(uint64(usual)))
	}
	s.axis(&b, h)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // G203: built here with every text escaped
}
