// Package report writes an evidence-grade incident report: one
// self-contained HTML file (no scripts, fonts or images fetched: the
// charts are inline SVG) that an investigator can hand on, and the same
// content as JSON.
//
// The report has its TLP marking on top, an executive summary, then per
// incident a timeline chart, the hosts and accounts, the attacker's
// infrastructure, the bytes sent out per destination and per day, the
// ATT&CK techniques, and an evidence table naming, for each finding, the
// source file, line and record that support it. Last comes the evidence
// manifest: the SHA-256 of every ingested input file, the dwell version
// and the command that produced the report. The report's own SHA-256 is
// written beside it (it cannot hold its own hash).
package report

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
)

// Input is an ingested file as the manifest lists it.
type Input struct {
	Path   string `json:"path"`
	Sensor string `json:"sensor"`
	Size   int64  `json:"size"`   // bytes when ingested
	Rows   int64  `json:"rows"`   // records stored from it
	SHA256 string `json:"sha256"` // of the file as it is now; "" when it could not be read
	Note   string `json:"note,omitempty"`
}

// Evidence is the record that supports a finding.
type Evidence struct {
	Table      string `json:"table"`
	SourceFile string `json:"source_file"`
	SourceLine int64  `json:"source_line"`
	Record     string `json:"record"` // the record's key fields
}

// Data is what a report holds.
type Data struct {
	Title     string               `json:"title"`
	TLP       string               `json:"tlp"` // an event.TLP* level
	Generated time.Time            `json:"generated"`
	Version   string               `json:"version"`
	Command   string               `json:"command"`
	HuntedAt  time.Time            `json:"hunted_at"`
	Incidents []correlate.Incident `json:"incidents"`
	// Evidence[i][j] supports finding j of incident i (nil when none was
	// found).
	Evidence [][]*Evidence `json:"evidence"`
	Inputs   []Input       `json:"inputs"`
}

// JSON returns the report's data as indented JSON.
func JSON(d *Data) ([]byte, error) { return json.MarshalIndent(d, "", "  ") }

// tlpColour is the colour of a TLP marking (FIRST's TLP 2.0 colours).
var tlpColour = map[string]string{event.TLPClear: "#ffffff", event.TLPGreen: "#33ff00", event.TLPAmber: "#ffc000",
	event.TLPAmberStrict: "#ffc000", event.TLPRed: "#ff2b2b"}

// HTML returns the report as one HTML document.
func HTML(d *Data) ([]byte, error) {
	t, err := template.New("report").Funcs(template.FuncMap{
		"upper": strings.ToUpper,
		"when":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"bytes": detect.HumanBytes,
		"tlpColour": func(l string) string {
			if c, ok := tlpColour[l]; ok {
				return c
			}
			return "#ffc000"
		},
		"timeline": func(inc correlate.Incident) template.HTML { return timeline(&inc) },
		"daybars":  func(t correlate.Transfer) template.HTML { return dayBars(&t) },
		"evidence": func(i, j int) *Evidence {
			if i < len(d.Evidence) && j < len(d.Evidence[i]) {
				return d.Evidence[i][j]
			}
			return nil
		},
		"join":     strings.Join,
		"addrs":    addrList,
		"add":      func(a, b int) int { return a + b },
		"unsigned": func(n int64) uint64 { return uint64(max(n, 0)) },
		"hasOrigin": func(inc correlate.Incident) bool {
			return slices.ContainsFunc(inc.Infrastructure, func(x correlate.Infra) bool { return x.Origin != nil })
		},
	}).Parse(page)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func addrList(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// detectorColour gives each detector a fixed colour in the charts.
func detectorColour(d string) string {
	colours := map[string]string{"beacon": "#d62728", "httpanom": "#9467bd", "lateral": "#ff7f0e", "exfil": "#1f77b4",
		"dnstunnel": "#8c564b", "rare": "#7f7f7f", "tlsanom": "#e377c2", "longconn": "#bcbd22", "iocmatch": "#17becf"}
	if c, ok := colours[d]; ok {
		return c
	}
	return "#555555"
}

// timeline draws an incident's findings as bars from first to last seen.
func timeline(inc *correlate.Incident) template.HTML {
	const width, left, row = 900.0, 230.0, 16.0
	fs := inc.Findings
	if len(fs) == 0 {
		return ""
	}
	start, end := inc.DwellStart, inc.LastSeen
	if !end.After(start) {
		end = start.Add(time.Hour)
	}
	span := end.Sub(start).Seconds()
	x := func(t time.Time) float64 { return left + (width-left-10)*t.Sub(start).Seconds()/span }
	var b strings.Builder
	h := row*float64(len(fs)) + 30
	fmt.Fprintf(&b, `<svg class="timeline" role="img" aria-label="timeline" xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f">`,
		width, h, width, h)
	for i, f := range fs {
		y := 5 + row*float64(i)
		x0, x1 := x(f.FirstSeen), x(f.LastSeen)
		label := f.Detector + " " + strings.TrimSpace(addrOr(f.Src)+" → "+cmp.Or(f.Domain, addrOr(f.Dst)))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="10" text-anchor="end">%s</text>`, left-6, y+10, template.HTMLEscapeString(shorten(label, 40)))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.0f" width="%.1f" height="11" fill="%s"><title>%s</title></rect>`, x0, y, math.Max(x1-x0, 2),
			detectorColour(f.Detector), template.HTMLEscapeString(f.Summary))
	}
	y := 5 + row*float64(len(fs)) + 12
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="10">%s</text>`, left, y, start.UTC().Format("2006-01-02 15:04"))
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="10" text-anchor="end">%s</text>`, width-10, y, end.UTC().Format("2006-01-02 15:04"))
	b.WriteString("</svg>")
	return template.HTML(b.String()) //nolint:gosec // G203: built here from escaped text and numbers
}

// dayBars draws a transfer's bytes per day.
func dayBars(t *correlate.Transfer) template.HTML {
	if len(t.PerDay) == 0 {
		return ""
	}
	days := slices.Clone(t.PerDay)
	slices.SortFunc(days, func(a, b correlate.DayBytes) int { return strings.Compare(a.Day, b.Day) })
	var top uint64
	for _, d := range days {
		top = max(top, d.Bytes)
	}
	const barW, height = 28.0, 80.0
	w := barW*float64(len(days)) + 10
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="days" role="img" aria-label="bytes per day" xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f">`, w, height+30)
	for i, d := range days {
		h := height * float64(d.Bytes) / float64(max(top, 1))
		x := 5 + barW*float64(i)
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.1f" width="%.0f" height="%.1f" fill="#1f77b4"><title>%s: %s</title></rect>`, x, height-h+5, barW-4, h,
			d.Day, detect.HumanBytes(d.Bytes))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="8">%s</text>`, x, height+18, d.Day[5:])
	}
	b.WriteString("</svg>")
	return template.HTML(b.String()) //nolint:gosec // G203: built here from numbers and dates
}

func addrOr(a netip.Addr) string {
	if a.IsValid() {
		return a.String()
	}
	return ""
}

func shorten(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}
