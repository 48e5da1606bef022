package console

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"

	"github.com/dwell-nsm/dwell/internal/correlate"
)

// host shows everything stored about one address over all history: when
// it was first and last seen, its peers with their connections and bytes,
// the names it asked DNS for, and the incidents and findings that name
// it (those the user may see).
func (c *Console) host(w http.ResponseWriter, r *http.Request, u *user) {
	a, err := netip.ParseAddr(r.PathValue("addr"))
	if err != nil {
		c.fail(w, r, u, http.StatusBadRequest, "not an address: "+clip(r.PathValue("addr"), 60))
		return
	}
	ip := a.String()
	data := map[string]any{"User": u, "Addr": ip}
	for _, p := range HostQueries(a) {
		cols, rows, _, err := c.table(r.Context(), p[1], 50)
		if err != nil {
			data[p[0]+"Error"] = err.Error()
			continue
		}
		data[p[0]+"Cols"], data[p[0]] = cols, rows
	}
	var doc struct {
		Incidents []correlate.Incident `json:"incidents"`
	}
	if err := c.run(r.Context(), &doc, "incidents", "--format", "json", "--as", u.Name, u.external()); err == nil {
		type hit struct {
			ID, Class, Severity string
			Findings            []string
		}
		var hits []hit
		for _, inc := range doc.Incidents {
			h := hit{ID: inc.ID, Class: string(inc.Class), Severity: inc.Severity.String()}
			named := slices.Contains(inc.Hosts, a) || slices.ContainsFunc(inc.Infrastructure, func(i correlate.Infra) bool { return i.Value == ip })
			for _, f := range inc.Findings {
				if f.Src == a || f.Dst == a {
					h.Findings = append(h.Findings, fmt.Sprintf("%s %.2f: %s", f.Detector, f.Score, clip(f.Summary, 200)))
				}
			}
			if named || len(h.Findings) > 0 {
				hits = append(hits, h)
			}
		}
		data["Incidents"] = hits
	}
	c.render(w, http.StatusOK, "host", data)
}

// HostQueries returns the queries of a host's page, each with its name:
// first and last seen, peers, names asked. A parsed address's text holds
// no quote, so it is a literal as it is; the SQL is the subset both stores
// take (no positional GROUP BY, which ClickHouse 18.16 reads as a
// constant).
func HostQueries(a netip.Addr) [][2]string {
	ip := a.String()
	return [][2]string{
		{"Seen", fmt.Sprintf(`SELECT min(ts) AS first_seen, max(ts) AS last_seen, count(*) AS connections FROM conn
			WHERE id_orig_h = '%[1]s' OR id_resp_h = '%[1]s'`, ip)},
		{"Peers", fmt.Sprintf(`SELECT CASE WHEN id_orig_h = '%[1]s' THEN id_resp_h ELSE id_orig_h END AS peer,
			CASE WHEN id_orig_h = '%[1]s' THEN 'out' ELSE 'in' END AS direction, count(*) AS connections,
			sum(coalesce(orig_bytes, 0)) AS bytes_sent_by_client, sum(coalesce(resp_bytes, 0)) AS bytes_sent_by_server, min(ts) AS first_seen, max(ts) AS last_seen
			FROM conn WHERE id_orig_h = '%[1]s' OR id_resp_h = '%[1]s' GROUP BY peer, direction ORDER BY connections DESC LIMIT 50`, ip)},
		{"Names", fmt.Sprintf(`SELECT query, count(*) AS queries, min(ts) AS first_seen, max(ts) AS last_seen FROM dns
			WHERE id_orig_h = '%s' GROUP BY query ORDER BY queries DESC LIMIT 50`, ip)},
	}
}
