package console

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dwell-nsm/dwell/internal/correlate"
)

// export downloads an incident's evidence report (HTML, TLP-marked, with
// the SHA-256 of every input) or its blocklist, as dwell export writes
// them; the user must see the incident, and every export is audited.
func (c *Console) export(w http.ResponseWriter, r *http.Request, u *user) {
	id, what := r.PathValue("id"), r.PathValue("what")
	var doc incidentDoc
	if err := c.run(r.Context(), &doc, "incident", "--format", "json", "--as", u.Name, u.external(), "--", id); err != nil {
		c.fail(w, r, u, http.StatusNotFound, err.Error())
		return
	}
	id = doc.Incident.ID
	tlp := doc.Triage.TLP
	if tlp == "" {
		tlp = "amber"
	}
	var body bytes.Buffer
	var errs strings.Builder
	var name, ctype string
	switch what {
	case "report":
		dir, err := os.MkdirTemp("", "dwell-report-")
		if err != nil {
			c.fail(w, r, u, http.StatusInternalServerError, err.Error())
			return
		}
		defer func() { _ = os.RemoveAll(dir) }()
		out := filepath.Join(dir, "report.html")
		if code := c.o.Runner.Run(r.Context(), []string{"export", "report", "--incident", id, "--tlp", tlp, "--out", out}, &body, &errs); code != 0 {
			c.fail(w, r, u, http.StatusInternalServerError, strings.TrimSpace(errs.String()))
			return
		}
		data, err := os.ReadFile(out)
		if err != nil {
			c.fail(w, r, u, http.StatusInternalServerError, err.Error())
			return
		}
		body.Reset()
		body.Write(data)
		name, ctype = id+"-report.html", "text/html; charset=utf-8"
	case "blocklist":
		format := r.URL.Query().Get("format")
		if !slices.Contains([]string{"nft", "ipset", "rpz", "crowdsec", "csv"}, format) {
			c.fail(w, r, u, http.StatusBadRequest, "a blocklist is nft, ipset, rpz, crowdsec or csv")
			return
		}
		if code := c.o.Runner.Run(r.Context(), []string{"export", "blocklist", "--incident", id, "--format", format, "--out", "-"}, &body, &errs); code != 0 {
			c.fail(w, r, u, http.StatusInternalServerError, strings.TrimSpace(errs.String()))
			return
		}
		name, ctype = fmt.Sprintf("%s-blocklist.%s", id, format), "text/plain; charset=utf-8"
	default:
		c.fail(w, r, u, http.StatusNotFound, "export report or blocklist")
		return
	}
	c.audit(u.Name, "export", id, what+" "+r.URL.Query().Get("format"))
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	_, _ = body.WriteTo(w)
}

// matrix arranges an incident's techniques by tactic, in the order of an
// intrusion: the columns of a small ATT&CK matrix.
type matrixColumn struct {
	Tactic     string
	Techniques []string
}

func matrix(inc *correlate.Incident) []matrixColumn {
	var cols []matrixColumn
	for _, t := range correlate.Tactics() {
		var ids []string
		for _, a := range inc.Attack {
			if correlate.Tactic(a) == t {
				ids = append(ids, a)
			}
		}
		if len(ids) > 0 {
			cols = append(cols, matrixColumn{Tactic: t, Techniques: ids})
		}
	}
	var other []string
	for _, a := range inc.Attack {
		if correlate.Tactic(a) == "" {
			other = append(other, a)
		}
	}
	if len(other) > 0 {
		cols = append(cols, matrixColumn{Tactic: "other", Techniques: other})
	}
	return cols
}
