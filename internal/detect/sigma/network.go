package sigma

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Network log sources: Sigma's Zeek rules (product: zeek, service: the
// log) read the table of that log under Zeek's own field names; the
// generic categories dns, proxy and firewall read the dns, http and conn
// tables under Sigma's taxonomy names, mapped here onto Zeek's columns.
var (
	zeekTables = map[string]string{"conn": "conn", "dns": "dns", "http": "http", "ssl": "ssl", "x509": "x509", "files": "files"}

	dnsFields = map[string]string{"query": "query", "answer": "answers", "record_type": "qtype_name", "src_ip": "id_orig_h",
		"dst_ip": "id_resp_h", "response_code": "rcode_name"}
	proxyFields = map[string]string{"c-uri": "uri", "c-uri-query": "uri", "c-uri-stem": "uri", "c-uri-extension": "uri",
		"c-useragent": "user_agent", "cs-host": "host", "cs-method": "method", "cs-referrer": "referrer", "cs-version": "version",
		"sc-status": "status_code", "cs-bytes": "request_body_len", "sc-bytes": "response_body_len", "src_ip": "id_orig_h",
		"dst_ip": "id_resp_h", "dst_port": "id_resp_p", "r-dns": "host"}
	firewallFields = map[string]string{"src_ip": "id_orig_h", "src_port": "id_orig_p", "dst_ip": "id_resp_h", "dst_port": "id_resp_p",
		"protocol": "proto"}
)

// networkGate returns the table and field names of a network log source.
func networkGate(ls Logsource) (table string, fields map[string]string, ok bool) {
	switch {
	case strings.EqualFold(ls.Product, "zeek"):
		t, ok := zeekTables[strings.ToLower(ls.Service)]
		return t, nil, ok
	case ls.Category == "dns" && ls.Product == "":
		return "dns", dnsFields, true
	case ls.Category == "proxy":
		return "http", proxyFields, true
	case ls.Category == "firewall":
		return "conn", firewallFields, true
	}
	return "", nil, false
}

// rowEvent is a stored network record as an Event: its columns by name
// (Zeek's dotted names work too: id.orig_h is id_orig_h), through the
// log source's field names.
type rowEvent struct {
	cols   map[string]int
	vals   []string
	rename map[string]string
}

func (r *rowEvent) Get(name string) (string, bool) {
	if to, ok := r.rename[name]; ok {
		name = to
	}
	i, ok := r.cols[name]
	if !ok {
		i, ok = r.cols[strings.ReplaceAll(name, ".", "_")]
	}
	if !ok || r.vals[i] == "\x00" {
		return "", false
	}
	return r.vals[i], true
}

func (r *rowEvent) Each(fn func(string) bool) {
	for _, v := range r.vals {
		if v != "\x00" && !fn(v) {
			return
		}
	}
}

// text renders a stored value for matching; NULL is "\x00" (absent).
func text(v any) string {
	switch x := v.(type) {
	case nil:
		return "\x00"
	case string:
		return x
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []any:
		parts := make([]string, 0, len(x))
		for _, y := range x {
			parts = append(parts, text(y))
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// networkTables returns the network tables the rules read, in the order
// networkFindings reads them.
func networkTables(rules []*Rule) []string {
	var out []string
	for _, table := range []string{"conn", "dns", "http", "ssl", "x509", "files"} {
		for _, rule := range rules {
			if t, _, ok := networkGate(rule.Logsource); ok && rule.Corr == nil && t == table {
				out = append(out, table)
				break
			}
		}
	}
	return out
}

// networkFindings runs the network rules over their tables in w: one
// finding per rule and originating host.
func networkFindings(ctx context.Context, r store.Reader, w store.Window, rules []*Rule) ([]detect.Finding, error) {
	byTable := map[string][]*Rule{}
	renames := map[*Rule]map[string]string{}
	for _, rule := range rules {
		if rule.Corr != nil {
			continue
		}
		if t, fields, ok := networkGate(rule.Logsource); ok {
			byTable[t] = append(byTable[t], rule)
			renames[rule] = fields
		}
	}
	type key struct {
		rule *Rule
		src  string
	}
	type agg struct {
		n           int
		first, last time.Time
		dst, domain string
		record      map[string]any
		fields      map[string]string
	}
	found := map[key]*agg{}
	var order []key
	for _, table := range []string{"conn", "dns", "http", "ssl", "x509", "files"} {
		rs := byTable[table]
		if len(rs) == 0 {
			continue
		}
		// The window is applied here, not in SQL: the backends keep times
		// differently, and the query is the analysts' read-only one.
		q := "SELECT * FROM " + table
		rows, err := r.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", table, err)
		}
		cols := map[string]int{}
		for i, c := range rows.Columns() {
			cols[c] = i
		}
		ev := &rowEvent{cols: cols}
		for rows.Next() {
			vals := rows.Values()
			if cap(ev.vals) < len(vals) {
				ev.vals = make([]string, len(vals))
			}
			ev.vals = ev.vals[:len(vals)]
			for i, v := range vals {
				ev.vals[i] = text(v)
			}
			for _, rule := range rs {
				ev.rename = renames[rule]
				if !rule.cond.eval(ev, rule) {
					continue
				}
				ts, _ := time.Parse(time.RFC3339Nano, ev.vals[cols["ts"]])
				if !w.Contains(ts) {
					continue
				}
				src, _ := ev.Get("id_orig_h")
				k := key{rule, src}
				a := found[k]
				if a == nil {
					a = &agg{first: ts, fields: map[string]string{}}
					a.dst, _ = ev.Get("id_resp_h")
					for _, c := range []string{"query", "host", "server_name"} {
						if v, ok := ev.Get(c); ok && a.domain == "" {
							a.domain = v
						}
					}
					file, _ := ev.Get("source_file")
					line, _ := ev.Get("source_line")
					a.record = map[string]any{"table": table, "source_file": file, "source_line": line}
					rule.eachField(func(name string) {
						if v, ok := ev.Get(name); ok {
							a.fields[name] = v
						}
					})
					found[k] = a
					order = append(order, k)
				}
				a.n++
				if ts.Before(a.first) {
					a.first = ts
				}
				if ts.After(a.last) {
					a.last = ts
				}
			}
		}
		err = rows.Err()
		if cerr := rows.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", table, err)
		}
	}
	var out []detect.Finding
	for _, k := range order {
		a := found[k]
		score := levelScore(k.rule.Level)
		f := detect.Finding{Detector: "sigma", Score: score, Severity: detect.SeverityOf(score), Components: map[string]float64{"level": score},
			FirstSeen: a.first, LastSeen: a.last, Attack: k.rule.techniques(), Domain: a.domain}
		f.Src, _ = netip.ParseAddr(k.src)
		f.Dst, _ = netip.ParseAddr(a.dst)
		f.Evidence = map[string]any{"rule_id": k.rule.ID, "rule_title": k.rule.Title, "level": k.rule.Level, "rule_file": k.rule.File,
			"events": a.n, "fields": a.fields, "record": a.record, "stage": k.rule.stage()}
		f.Summary = fmt.Sprintf("Sigma rule %q (%s) matched %d record(s) from %s.", k.rule.Title, k.rule.Level, a.n, k.src)
		out = append(out, f)
	}
	return out, nil
}

// eachField calls fn with every field name the rule's searches use.
func (r *Rule) eachField(fn func(string)) {
	for _, s := range r.searches {
		s.fieldNames(fn)
	}
}
