package console

import (
	"fmt"
	"html/template"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
)

// safeDomain is a name that may go into a query as a literal as it is.
var safeDomain = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$`)

// finding shows one finding of an incident: its scores, evidence and
// explanation, the plots that explain its records better than numbers —
// a channel's check-in times by time of day and the intervals between
// them, a DNS name's query lengths, an exfiltration's days against its
// host's usual day — and the records behind it with the
// file and line each was read from.
func (c *Console) finding(w http.ResponseWriter, r *http.Request, u *user) {
	id := r.PathValue("id")
	var doc incidentDoc
	if err := c.run(r.Context(), &doc, "incident", "--format", "json", "--as", u.Name, u.external(), "--", id); err != nil {
		c.fail(w, r, u, http.StatusNotFound, err.Error())
		return
	}
	fs := slices.Clone(doc.Incident.Findings)
	detect.Sort(fs)
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 || n >= len(fs) {
		c.fail(w, r, u, http.StatusNotFound, "no such finding in "+doc.Incident.ID)
		return
	}
	f := &fs[n]
	data := map[string]any{"User": u, "I": &doc.Incident, "T": &doc.Triage, "F": f, "N": n, "Evidence": evidenceText(f.Evidence)}
	if f.Detector == "exfil" {
		data["Baseline"] = baseline(f)
	}
	q, kind := RecordsQuery(f)
	if q != "" {
		cols, rows, total, err := c.table(r.Context(), q, 5000)
		if err != nil {
			data["RecordsError"] = err.Error()
		} else {
			var ts []time.Time
			var lengths []int
			qi := slices.Index(cols, "query")
			for _, row := range rows {
				if t, err := time.Parse(time.RFC3339Nano, row[0]); err == nil {
					ts = append(ts, t)
				}
				if qi >= 0 {
					lengths = append(lengths, len(row[qi]))
				}
			}
			if kind == "conn" {
				data["CheckIns"], data["Intervals"] = checkIns(ts), intervals(ts)
			} else {
				data["Lengths"] = lengthPlot(lengths)
			}
			data["Columns"], data["Rows"], data["Total"] = cols, rows[:min(len(rows), 200)], total
		}
	}
	c.render(w, http.StatusOK, "finding", data)
}

// RecordsQuery returns the query for the records behind a finding and
// their kind: the connections of a pair ("conn"), or a client's queries
// for a name and its subdomains ("dns"); "" when the finding names
// neither. Addresses are parsed values and names are checked against
// safeDomain, so their text can be a literal; the SQL is the subset both
// stores take.
func RecordsQuery(f *detect.Finding) (sql, kind string) {
	switch {
	case f.Src.IsValid() && f.Dst.IsValid():
		return fmt.Sprintf(`SELECT ts, id_resp_p AS port, proto, orig_bytes, resp_bytes, conn_state, source_file, source_line FROM conn
			WHERE id_orig_h = '%s' AND id_resp_h = '%s' ORDER BY ts LIMIT 5000`, f.Src, f.Dst), "conn"
	case f.Src.IsValid() && safeDomain.MatchString(f.Domain):
		return fmt.Sprintf(`SELECT ts, query, qtype_name, rcode_name, source_file, source_line FROM dns
			WHERE id_orig_h = '%s' AND (query = '%s' OR query LIKE '%%.%s') ORDER BY ts LIMIT 5000`, f.Src, f.Domain, f.Domain), "dns"
	}
	return "", ""
}

// lengthPlot is a histogram of DNS query lengths: a tunnel's names are
// long and alike, people's short and varied.
func lengthPlot(lengths []int) template.HTML {
	if len(lengths) == 0 {
		return ""
	}
	counts := make([]int, 256)
	peak := 0
	for _, l := range lengths {
		l = min(l, 255)
		counts[l]++
		peak = max(peak, counts[l])
	}
	const h = 140
	w := float64(plotWidth-labelW-10) / 256
	var b []byte
	b = fmt.Appendf(b, `<svg class="plot" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="query lengths"><title>%d queries by length in characters (0 to 255)</title>`,
		plotWidth, h+24, plotWidth, h+24, len(lengths))
	for l, n := range counts {
		if n == 0 {
			continue
		}
		bh := float64(h-10) * float64(n) / float64(peak)
		b = fmt.Appendf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#8c564b"><title>%d characters: %d</title></rect>`,
			labelW+float64(l)*w, float64(h)-bh, max(w, 1), bh, l, n)
	}
	b = fmt.Appendf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#888"/>`, labelW, h, plotWidth-10, h)
	for _, l := range []int{0, 32, 64, 128, 192, 253} {
		x := labelW + float64(l)*w
		b = fmt.Appendf(b, `<text x="%.1f" y="%d" font-size="11" text-anchor="middle" fill="#444">%d</text>`, x, h+16, l)
	}
	b = append(b, `</svg>`...)
	return template.HTML(b) //nolint:gosec // G203: numbers only
}
