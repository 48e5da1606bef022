package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/export/report"
	"github.com/dwell-nsm/dwell/internal/intel"
	"github.com/dwell-nsm/dwell/internal/store"
)

// runExportReport writes the evidence report of the last hunt's incidents.
func runExportReport(ctx context.Context, a *App, args []string) error {
	var co common
	c := exportCommand()
	c.name = "export report"
	fs := a.newFlags(c, &co)
	out := fs.String("out", "", "write to `file`: .html (default) or .json")
	incident := fs.String("incident", "", "only this incident (`ID`; default every incident)")
	tlp := fs.String("tlp", "amber", "TLP `level` marked on the report (clear, green, amber, amber+strict, red)")
	title := fs.String("title", "dwell incident report", "the report's `title`")
	if rest, err := parse(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	if *out == "" || *out == "-" {
		return usagef("--out FILE is required: the report's SHA-256 is written beside it")
	}
	level, ok := intel.TLPOf("tlp:" + *tlp)
	if !ok {
		return usagef("--tlp: %q is not a TLP level (clear, green, amber, amber+strict, red)", *tlp)
	}
	cfg, st, h, err := co.openHunt(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	incs := h.Incidents
	if *incident != "" {
		incs = slices.DeleteFunc(slices.Clone(incs), func(i correlate.Incident) bool { return !strings.EqualFold(i.ID, *incident) })
		if len(incs) == 0 {
			return fmt.Errorf("no incident %s in the last hunt (dwell incidents lists them)", sanitize(*incident, 40))
		}
	}
	shown := make([]*correlate.Incident, len(incs))
	for i := range incs {
		shown[i] = &incs[i]
	}
	if err := enrich(ctx, cfg, st, shown...); err != nil {
		return err
	}
	d := &report.Data{Title: *title, TLP: level, Generated: a.Now().UTC(), Version: versionString(), HuntedAt: h.At, Incidents: incs,
		Command: "dwell export report " + strings.Join(args, " ")}
	seen := map[string]*report.Evidence{} // findings about the same pair share their record
	for _, inc := range incs {
		ev := make([]*report.Evidence, len(inc.Findings))
		for j := range inc.Findings {
			if ev[j], err = supportingRecord(ctx, st, &inc.Findings[j], seen); err != nil {
				return err
			}
		}
		d.Evidence = append(d.Evidence, ev)
	}
	if d.Inputs, err = manifest(ctx, st); err != nil {
		return err
	}
	var data []byte
	if strings.EqualFold(filepath.Ext(*out), ".json") {
		data, err = report.JSON(d)
	} else {
		data, err = report.HTML(d)
	}
	if err != nil {
		return err
	}
	if err := writeAtomic(*out, a, data); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	if err := writeAtomic(*out+".sha256", a, []byte(digest+"  "+filepath.Base(*out)+"\n")); err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "wrote %s: %d incident(s), %d input file(s) in the manifest; SHA-256 %s (in %s.sha256)\n", *out, len(incs),
		len(d.Inputs), digest, *out)
	return nil
}

// sqlString quotes s as an SQL string literal.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// supportingRecord finds the first record behind a finding: the
// connection, query, request or handshake it was made from. seen holds the
// answers of queries already run.
func supportingRecord(ctx context.Context, st store.Reader, f *detect.Finding, seen map[string]*report.Evidence) (*report.Evidence, error) {
	if f.Detector == "host" || f.Detector == "sigma" {
		return hostEvidence(f), nil
	}
	since := "TIMESTAMP " + sqlString(f.FirstSeen.UTC().Format("2006-01-02 15:04:05.000000"))
	src, dst := "", ""
	if f.Src.IsValid() {
		src = sqlString(f.Src.Unmap().String())
	}
	if f.Dst.IsValid() {
		dst = sqlString(f.Dst.Unmap().String())
	}
	type q struct{ table, cols, where string }
	var tries []q
	connCols := "id_orig_h, id_orig_p, id_resp_h, id_resp_p, proto, service, orig_bytes, resp_bytes, conn_state"
	switch {
	case f.Detector == "httpanom" && src != "" && dst != "":
		tries = append(tries, q{"http", "id_orig_h, id_resp_h, method, host, uri, status_code, user_agent", "id_orig_h = " + src + " AND id_resp_h = " + dst})
	case f.Detector == "dnstunnel" && f.Domain != "" && src != "":
		d := sqlString(f.Domain)
		tries = append(tries, q{"dns", "id_orig_h, id_resp_h, query, qtype_name, rcode_name", "id_orig_h = " + src + " AND (query = " + d +
			" OR ends_with(query, '.' || " + d + "))"})
	case src != "" && dst != "":
		tries = append(tries, q{"conn", connCols, "id_orig_h = " + src + " AND id_resp_h = " + dst})
	case f.Domain != "" && src != "":
		d := sqlString(f.Domain)
		tries = append(tries,
			q{"ssl", "id_orig_h, id_resp_h, id_resp_p, server_name, version, ja3", "id_orig_h = " + src + " AND server_name = " + d},
			q{"http", "id_orig_h, id_resp_h, method, host, uri, status_code", "id_orig_h = " + src + " AND host = " + d},
			q{"dns", "id_orig_h, id_resp_h, query, qtype_name, answers", "id_orig_h = " + src + " AND query = " + d})
	}
	if src != "" && dst == "" && f.Domain == "" { // a sweep: the first connection the source made then
		tries = append(tries, q{"conn", connCols, "id_orig_h = " + src})
	}
	for _, t := range tries {
		sql := fmt.Sprintf("SELECT source_file, source_line, %s FROM %s WHERE %s AND ts >= %s ORDER BY ts LIMIT 1", t.cols, t.table, t.where, since)
		if ev, ok := seen[sql]; ok {
			if ev != nil {
				return ev, nil
			}
			continue
		}
		rows, err := st.Query(ctx, sql)
		if err != nil {
			return nil, fmt.Errorf("evidence for %s: %w", f.Detector, err)
		}
		var ev *report.Evidence
		if rows.Next() {
			v := rows.Values()
			file, _ := v[0].(string)
			var line int64
			switch n := v[1].(type) {
			case int64:
				line = n
			case uint64:
				line = int64(n) //nolint:gosec // G115: a line number
			}
			var rec []string
			for k, x := range v[2:] {
				if x != nil {
					rec = append(rec, fmt.Sprintf("%s=%v", rows.Columns()[k+2], x))
				}
			}
			ev = &report.Evidence{Table: t.table, SourceFile: file, SourceLine: line, Record: strings.Join(rec, " ")}
		}
		err = rows.Err()
		if cerr := rows.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		seen[sql] = ev
		if ev != nil {
			return ev, nil
		}
	}
	return nil, nil
}

// hostEvidence is the first Windows event a host finding names: its file,
// its record id, and the offset (EVTX) or line (JSON) where it is.
func hostEvidence(f *detect.Finding) *report.Evidence {
	var first map[string]any
	switch rs := f.Evidence["records"].(type) {
	case []map[string]any: // in process
		if len(rs) > 0 {
			first = rs[0]
		}
	case []any: // read back from a saved hunt
		if len(rs) > 0 {
			first, _ = rs[0].(map[string]any)
		}
	}
	if first == nil {
		return nil
	}
	file, _ := first["source_file"].(string)
	line, _ := first["offset_or_line"].(float64)
	if n, ok := first["offset_or_line"].(int64); ok {
		line = float64(n)
	}
	rec := fmt.Sprintf("computer=%s event_id=%v record_id=%v time=%v", f.Host, first["event_id"], first["record_id"], first["time"])
	if d, ok := f.Evidence["details"].([]string); ok && len(d) > 0 {
		rec += " " + d[0]
	} else if d, ok := f.Evidence["details"].([]any); ok && len(d) > 0 {
		rec += fmt.Sprintf(" %v", d[0])
	}
	return &report.Evidence{Table: "winlog", SourceFile: file, SourceLine: int64(line), Record: rec}
}

// manifest lists the ingested files with the SHA-256 of each as it is now.
func manifest(ctx context.Context, st store.Reader) ([]report.Input, error) {
	ledger, err := st.Ledger(ctx)
	if err != nil {
		return nil, err
	}
	var out []report.Input
	for _, p := range ledger {
		in := report.Input{Path: p.Path, Sensor: p.Sensor, Size: p.Size, Rows: p.Rows}
		sum, size, err := fileSHA256(p.Path)
		switch {
		case err != nil:
			in.Note = "not readable now: " + err.Error()
		default:
			in.SHA256 = sum
			if size != p.Size {
				in.Note = fmt.Sprintf("%d bytes now, %d when ingested", size, p.Size)
			}
		}
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b report.Input) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
