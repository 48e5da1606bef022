// Package detecttest runs detectors on data cases. A case is a directory
// testdata/<case>/ holding Zeek logs (written by the case's Go builder, so
// that they can be regenerated with -update and read as they are in
// review) and want.json, which says what must and must not be found.
package detecttest

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/ingest"
	"github.com/dwell-nsm/dwell/internal/ingest/zeek"
	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/storetest"
)

var update = flag.Bool("update", false, "rewrite the Zeek logs of detector cases from their builders")

// Want is a case's want.json: findings that must appear (at least at a
// severity) and entities that must not (above a severity).
type Want struct {
	Found  []Match `json:"found"`
	Absent []Match `json:"absent"`
}

// Match selects findings by entity; empty fields match anything.
type Match struct {
	Detector    string `json:"detector,omitempty"`
	Src         string `json:"src,omitempty"`
	Dst         string `json:"dst,omitempty"`
	Domain      string `json:"domain,omitempty"`
	MinSeverity string `json:"min_severity,omitempty"` // for found; default low
	MaxSeverity string `json:"max_severity,omitempty"` // for absent: nothing above it; default info (nothing at all)
	Attack      string `json:"attack,omitempty"`       // a technique the finding must list
	Note        string `json:"note,omitempty"`
}

func (m *Match) matches(f *detect.Finding) bool {
	return (m.Detector == "" || m.Detector == f.Detector) &&
		(m.Src == "" || (f.Src.IsValid() && m.Src == f.Src.String())) &&
		(m.Dst == "" || (f.Dst.IsValid() && m.Dst == f.Dst.String())) &&
		(m.Domain == "" || strings.EqualFold(m.Domain, f.Domain))
}

func severity(t *testing.T, name string, def detect.Severity) detect.Severity {
	t.Helper()
	if name == "" {
		return def
	}
	var s detect.Severity
	if err := s.UnmarshalJSON([]byte(`"` + name + `"`)); err != nil {
		t.Fatal(err)
	}
	return s
}

// Run builds (with -update, or when missing) and loads the case's logs,
// runs d over all history with env, and checks want.json. It returns the
// findings, sorted, for further checks.
func Run(t *testing.T, name string, build func(*Gen), d detect.Detector) []detect.Finding {
	t.Helper()
	dir := filepath.Join("testdata", name)
	if _, err := os.Stat(filepath.Join(dir, "conn.log")); *update || os.IsNotExist(err) {
		g := NewGen()
		build(g)
		if err := g.Write(dir); err != nil {
			t.Fatal(err)
		}
	}
	m := Load(t, dir)
	cache := detect.NewCache(m)
	fs, err := d.Detect(context.Background(), cache, store.Window{})
	if err != nil {
		t.Fatal(err)
	}
	// As a hunt does: behavioural findings stay below high unsupported.
	if _, ok := d.(detect.Corroborated); ok {
		if err := detect.Corroborate(context.Background(), cache, store.Window{}, Env(), fs); err != nil {
			t.Fatal(err)
		}
	}
	detect.Sort(fs)
	if testing.Verbose() {
		for _, f := range fs {
			t.Logf("%-9s %-8s %.3f %s %v", f.Detector, f.Severity, f.Score, f.Summary, f.Components)
		}
	}
	var want Want
	data, err := os.ReadFile(filepath.Join(dir, "want.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatalf("want.json: %v", err)
	}
	for _, w := range want.Found {
		min := severity(t, w.MinSeverity, detect.SeverityLow)
		var best *detect.Finding
		for i := range fs {
			if w.matches(&fs[i]) && (best == nil || fs[i].Score > best.Score) {
				best = &fs[i]
			}
		}
		switch {
		case best == nil:
			t.Errorf("%s: not found: %+v", name, w)
		case best.Severity < min:
			t.Errorf("%s: %+v found at %v (%.3f), want at least %v: %s %v", name, w, best.Severity, best.Score, min, best.Summary, best.Components)
		case w.Attack != "" && !contains(best.Attack, w.Attack):
			t.Errorf("%s: %+v lacks technique %s: %v", name, w, w.Attack, best.Attack)
		}
	}
	for _, w := range want.Absent {
		max := severity(t, w.MaxSeverity, detect.SeverityInfo)
		for i := range fs {
			f := &fs[i]
			if w.matches(f) && (w.MaxSeverity == "" || f.Severity > max) {
				t.Errorf("%s: must not be found (above %s): %+v, got %v %.3f: %s", name, max, w, f.Severity, f.Score, f.Summary)
			}
		}
	}
	for i := range fs {
		if fs[i].Summary == "" || fs[i].Score < 0 || fs[i].Score > 1 || fs[i].FirstSeen.After(fs[i].LastSeen) {
			t.Errorf("%s: malformed finding %+v", name, fs[i])
		}
	}
	return fs
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// Load ingests the Zeek logs of dir into a memory store.
func Load(t *testing.T, dir string) *storetest.Mem {
	t.Helper()
	m := storetest.NewMem()
	cands, err := ingest.Discover([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := ingest.New(m, ingest.Options{Formats: zeek.Formats(), Sensor: "test"}).Run(context.Background(), cands)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Bad > 0 {
		t.Fatalf("%s: %d bad lines: %v", dir, sum.Bad, sum.Files)
	}
	return m
}

// Gen writes Zeek JSON logs for a case. Times are UTC; uids are numbered.
type Gen struct {
	logs map[string][]map[string]any
	n    int
}

// NewGen returns an empty generator.
func NewGen() *Gen { return &Gen{logs: map[string][]map[string]any{}} }

// Start is the first day cases use: a Monday.
var Start = time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)

func (g *Gen) uid(prefix string) string {
	g.n++
	return fmt.Sprintf("%s%08d", prefix, g.n)
}

func epoch(t time.Time) float64 { return float64(t.UnixMicro()) / 1e6 }

// Conn is a connection; optional fields left zero are written as absent.
type Conn struct {
	TS                 time.Time
	Src, Dst           string
	SrcPort, DstPort   int
	Proto, Service     string
	Duration           time.Duration
	SrcBytes, DstBytes int64
	State              string
}

// Conn adds a conn.log record and returns its uid.
func (g *Gen) Conn(c Conn) string {
	if c.Proto == "" {
		c.Proto = "tcp"
	}
	if c.State == "" {
		c.State = "SF"
	}
	if c.SrcPort == 0 {
		c.SrcPort = 1024 + g.n%60000
	}
	u := g.uid("C")
	rec := map[string]any{"ts": epoch(c.TS), "uid": u, "id.orig_h": c.Src, "id.orig_p": c.SrcPort, "id.resp_h": c.Dst, "id.resp_p": c.DstPort,
		"proto": c.Proto, "conn_state": c.State, "orig_bytes": c.SrcBytes, "resp_bytes": c.DstBytes,
		"orig_ip_bytes": c.SrcBytes + 40, "resp_ip_bytes": c.DstBytes + 40, "orig_pkts": 1 + c.SrcBytes/1400, "resp_pkts": 1 + c.DstBytes/1400, "missed_bytes": 0}
	if c.Service != "" {
		rec["service"] = c.Service
	}
	if c.Duration > 0 {
		rec["duration"] = c.Duration.Seconds()
	}
	g.logs["conn"] = append(g.logs["conn"], rec)
	return u
}

// OpenConn adds an open_conn.log report of a connection still open.
func (g *Gen) OpenConn(uid string, c Conn) {
	rec := map[string]any{"ts": epoch(c.TS), "uid": uid, "id.orig_h": c.Src, "id.orig_p": c.SrcPort, "id.resp_h": c.Dst, "id.resp_p": c.DstPort,
		"proto": c.Proto, "conn_state": "S1", "duration": c.Duration.Seconds(), "orig_bytes": c.SrcBytes, "resp_bytes": c.DstBytes}
	if c.Service != "" {
		rec["service"] = c.Service
	}
	g.logs["open_conn"] = append(g.logs["open_conn"], rec)
}

// DNS is a query and its answer.
type DNS struct {
	TS       time.Time
	Src      string
	Resolver string
	Query    string
	QType    string // A by default
	RCode    string // NOERROR by default
	Answers  []string
}

// DNS adds a dns.log record.
func (g *Gen) DNS(d DNS) {
	if d.QType == "" {
		d.QType = "A"
	}
	if d.RCode == "" {
		d.RCode = "NOERROR"
	}
	if d.Resolver == "" {
		d.Resolver = "10.0.0.53"
	}
	rec := map[string]any{"ts": epoch(d.TS), "uid": g.uid("D"), "id.orig_h": d.Src, "id.orig_p": 40000 + g.n%20000, "id.resp_h": d.Resolver,
		"id.resp_p": 53, "proto": "udp", "query": d.Query, "qtype_name": d.QType, "rcode_name": d.RCode}
	if len(d.Answers) > 0 {
		rec["answers"] = d.Answers
	}
	g.logs["dns"] = append(g.logs["dns"], rec)
}

// HTTP is a request.
type HTTP struct {
	TS        time.Time
	UID       string
	Src, Dst  string
	DstPort   int
	Method    string
	Host      string
	URI       string
	UserAgent string
	ReqBytes  int64
	RespBytes int64
	Status    int
	MIME      string // of the request body (orig_mime_types)
	Filename  string // of the request body (orig_filenames)
	RespMIME  string // of the response body (resp_mime_types)
}

// HTTP adds an http.log record.
func (g *Gen) HTTP(h HTTP) {
	if h.DstPort == 0 {
		h.DstPort = 80
	}
	if h.UID == "" {
		h.UID = g.uid("H")
	}
	rec := map[string]any{"ts": epoch(h.TS), "uid": h.UID, "id.orig_h": h.Src, "id.orig_p": 40000 + g.n%20000, "id.resp_h": h.Dst,
		"id.resp_p": h.DstPort, "method": h.Method, "uri": h.URI, "user_agent": h.UserAgent, "request_body_len": h.ReqBytes, "trans_depth": 1}
	if h.Host != "" {
		rec["host"] = h.Host
	}
	if h.Status != 0 {
		rec["status_code"] = h.Status
	}
	if h.RespBytes != 0 {
		rec["response_body_len"] = h.RespBytes
	}
	if h.MIME != "" {
		rec["orig_mime_types"] = []string{h.MIME}
	}
	if h.Filename != "" {
		rec["orig_filenames"] = []string{h.Filename}
	}
	if h.RespMIME != "" {
		rec["resp_mime_types"] = []string{h.RespMIME}
	}
	g.logs["http"] = append(g.logs["http"], rec)
}

// File is a file transfer over a connection, in Zeek 5's files.log form.
type File struct {
	TS        time.Time
	Src, Dst  string // the connection's originator and responder
	DstPort   int
	FromOrig  bool // sent by the originator (an upload from Src)
	Source    string
	MIME      string
	Filename  string
	SeenBytes int64
}

// File adds a files.log record.
func (g *Gen) File(f File) {
	if f.DstPort == 0 {
		f.DstPort = 443
	}
	if f.Source == "" {
		f.Source = "HTTP"
	}
	rec := map[string]any{"ts": epoch(f.TS), "fuid": g.uid("F"), "uid": g.uid("C"), "id.orig_h": f.Src, "id.orig_p": 40000 + g.n%20000,
		"id.resp_h": f.Dst, "id.resp_p": f.DstPort, "source": f.Source, "is_orig": f.FromOrig, "seen_bytes": f.SeenBytes}
	if f.MIME != "" {
		rec["mime_type"] = f.MIME
	}
	if f.Filename != "" {
		rec["filename"] = f.Filename
	}
	g.logs["files"] = append(g.logs["files"], rec)
}

// TLS is a handshake with its server certificate.
type TLS struct {
	TS         time.Time
	Src, Dst   string
	ServerName string
	JA3        string
	Validation string // "ok" by default
	SNIMatches *bool
	Cert       string // fingerprint of a certificate added with Cert
}

// TLS adds an ssl.log record.
func (g *Gen) TLS(s TLS) {
	if s.Validation == "" {
		s.Validation = "ok"
	}
	rec := map[string]any{"ts": epoch(s.TS), "uid": g.uid("S"), "id.orig_h": s.Src, "id.orig_p": 40000 + g.n%20000, "id.resp_h": s.Dst,
		"id.resp_p": 443, "version": "TLSv12", "established": true, "validation_status": s.Validation}
	if s.ServerName != "" {
		rec["server_name"] = s.ServerName
	}
	if s.JA3 != "" {
		rec["ja3"] = s.JA3
	}
	if s.SNIMatches != nil {
		rec["sni_matches_cert"] = *s.SNIMatches
	}
	if s.Cert != "" {
		rec["cert_chain_fps"] = []string{s.Cert}
	}
	g.logs["ssl"] = append(g.logs["ssl"], rec)
}

// Cert adds an x509.log record.
func (g *Gen) Cert(ts time.Time, fingerprint, subject, issuer string, notBefore, notAfter time.Time, names ...string) {
	rec := map[string]any{"ts": epoch(ts), "fingerprint": fingerprint, "certificate.subject": subject, "certificate.issuer": issuer,
		"certificate.not_valid_before": epoch(notBefore), "certificate.not_valid_after": epoch(notAfter)}
	if len(names) > 0 {
		rec["san.dns"] = names
	}
	g.logs["x509"] = append(g.logs["x509"], rec)
}

// Write writes the logs as Zeek JSON files into dir (conn.log always, even
// empty, marks the case as built), sorted by time.
func (g *Gen) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if _, ok := g.logs["conn"]; !ok {
		g.logs["conn"] = nil
	}
	for name, recs := range g.logs {
		sort.SliceStable(recs, func(i, j int) bool { return recs[i]["ts"].(float64) < recs[j]["ts"].(float64) })
		var b strings.Builder
		for _, r := range recs {
			r["_path"] = name
			line, err := json.Marshal(r)
			if err != nil {
				return err
			}
			b.Write(line)
			b.WriteByte('\n')
		}
		if err := os.WriteFile(filepath.Join(dir, name+".log"), []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Env is the environment detector cases run in: the default local networks.
func Env() *detect.Env { return &detect.Env{Local: detect.DefaultLocal()} }

// Hosts returns n internal addresses 10.1.x.y.
func Hosts(n int) []string {
	out := make([]string, n)
	for i := range n {
		out[i] = netip.AddrFrom4([4]byte{10, 1, byte(i / 250), byte(10 + i%250)}).String()
	}
	return out
}
