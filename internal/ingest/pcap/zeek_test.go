package pcap

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
)

const datasets = "../../../../shared/datasets"

func dataset(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(datasets, dir)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("dataset %s is not here (%v); skipping", dir, err)
	}
	return p
}

// readCapture reads a whole capture through the ingest Source.
func readCapture(t testing.TB, path string, opts ...func(*table)) (*event.Batch, ingest.Report) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if data, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	in := &ingest.Input{Path: path, Head: data[:min(len(data), event.HeadSize)], Final: true}
	src, err := open(strings.NewReader(string(data)), in)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(src.(*source).t)
	}
	var all event.Batch
	for {
		var b event.Batch
		err := src.Next(context.Background(), &b, 1000)
		all.Append(&b)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return &all, src.Report()
}

// zeekLog is a Zeek TSV log as a list of rows by field name.
type zeekLog struct {
	fields []string
	rows   []map[string]string
}

// fieldAliases maps the renamed columns of some baselines back.
var fieldAliases = map[string]string{
	"src": "id.orig_h", "src_ip": "id.orig_h", "id_orig_h": "id.orig_h", "src_port": "id.orig_p", "id_orig_p": "id.orig_p",
	"dst": "id.resp_h", "dst_ip": "id.resp_h", "id_resp_h": "id.resp_h", "dst_port": "id.resp_p", "id_resp_p": "id.resp_p",
}

func readZeekLog(t testing.TB, path string) zeekLog {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var l zeekLog
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "#fields\t"); ok {
			l.fields = strings.Split(rest, "\t")
			for i, f := range l.fields {
				if a, ok := fieldAliases[f]; ok {
					l.fields[i] = a
				}
			}
			continue
		}
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		vals := strings.Split(line, "\t")
		row := map[string]string{}
		for i, f := range l.fields {
			if i < len(vals) {
				row[f] = vals[i]
			}
		}
		l.rows = append(l.rows, row)
	}
	return l
}

// btest is one test of the dataset's index.
type btest struct {
	Test    string   `json:"zeek_test"`
	Command string   `json:"zeek_command"`
	Bare    bool     `json:"bare_mode"`
	Trace   string   `json:"trace"`
	Logs    []string `json:"expected_logs"`
}

func loadIndex(t testing.TB) (string, []btest) {
	dir := dataset(t, "zeek-btest-pcap-to-logs")
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx []btest
	if err := json.Unmarshal(data, &idx); err != nil {
		t.Fatal(err)
	}
	return dir, idx
}

// Key fields compared per log type, as the issue names them.
var connKeys = []string{"id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "duration", "orig_bytes", "resp_bytes",
	"conn_state", "missed_bytes", "history", "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes"}

var dnsKeys = []string{"id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "trans_id", "rtt", "query", "qclass", "qtype",
	"rcode", "AA", "TC", "RD", "RA", "Z", "answers", "TTLs", "rejected"}

var httpKeys = []string{"id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "trans_depth", "method", "host", "uri", "status_code",
	"request_body_len", "response_body_len"}

func httpRow(h *event.HTTP) map[string]string {
	return map[string]string{
		"id.orig_h": h.SrcIP.String(), "id.orig_p": strconv.Itoa(int(h.SrcPort)), "id.resp_h": h.DstIP.String(),
		"id.resp_p": strconv.Itoa(int(h.DstPort)), "proto": "tcp", "trans_depth": optU(h.TransDepth), "method": orDash(h.Method),
		"host": orDash(h.Host), "uri": orDash(h.URI), "status_code": optU(h.StatusCode), "request_body_len": optU(h.RequestBodyLen),
		"response_body_len": optU(h.ResponseBodyLen), "version": orDash(h.Version), "resp_mime_types": orDash(strings.Join(h.RespMIMETypes, ",")),
	}
}

var sslKeys = []string{"id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "version", "cipher", "curve", "server_name", "resumed",
	"last_alert", "next_protocol", "established", "ssl_history", "cert_chain_fps"}

func list(l []string) string {
	if len(l) == 0 {
		return "-"
	}
	return strings.Join(l, ",")
}

func sslRow(s *event.TLS) map[string]string {
	return map[string]string{
		"id.orig_h": s.SrcIP.String(), "id.orig_p": strconv.Itoa(int(s.SrcPort)), "id.resp_h": s.DstIP.String(),
		"id.resp_p": strconv.Itoa(int(s.DstPort)), "proto": "tcp", "version": orDash(s.Version), "cipher": orDash(s.Cipher),
		"curve": orDash(s.Curve), "server_name": orDash(s.ServerName), "resumed": optB(s.Resumed), "last_alert": orDash(s.LastAlert),
		"next_protocol": orDash(s.NextProtocol), "established": optB(s.Established), "ssl_history": orDash(s.SSLHistory),
		"cert_chain_fps": list(s.CertChainFPs),
	}
}

// filesKeys are files.log's fields compared: the regression logs hold no
// hashes (Zeek's hash scripts are not loaded by those tests).
var filesKeys = []string{"id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "source", "depth", "is_orig", "mime_type", "filename",
	"seen_bytes", "total_bytes", "missing_bytes", "timedout"}

func filesRow(f *event.File) map[string]string {
	return map[string]string{
		"id.orig_h": f.SrcIP.String(), "id.orig_p": strconv.Itoa(int(f.SrcPort)), "id.resp_h": f.DstIP.String(),
		"id.resp_p": strconv.Itoa(int(f.DstPort)), "proto": "tcp", "source": orDash(f.Source), "depth": optU(f.Depth),
		"is_orig": optB(f.IsOrig), "mime_type": orDash(f.MIMEType), "filename": orDash(f.Filename), "seen_bytes": optU(f.SeenBytes),
		"total_bytes": optU(f.TotalBytes), "missing_bytes": optU(f.MissingBytes), "timedout": optB(f.TimedOut),
	}
}

var x509Keys = []string{"fingerprint", "certificate.version", "certificate.serial", "certificate.subject", "certificate.issuer",
	"certificate.not_valid_before", "certificate.not_valid_after", "certificate.key_alg", "certificate.sig_alg",
	"certificate.key_type", "certificate.key_length", "certificate.exponent", "certificate.curve", "san.dns", "san.email",
	"san.ip", "basic_constraints.ca", "basic_constraints.path_len"}

func x509Row(x *event.X509) map[string]string {
	t := func(o event.Opt[time.Time]) string {
		if !o.Valid {
			return "-"
		}
		return fmt.Sprintf("%d.000000", o.V.Unix())
	}
	var ips []string
	for _, a := range x.SANIP {
		ips = append(ips, a.String())
	}
	return map[string]string{
		"fingerprint": x.Fingerprint, "certificate.version": optU(x.Version), "certificate.serial": orDash(x.Serial),
		"certificate.subject": orDash(x.Subject), "certificate.issuer": orDash(x.Issuer), "certificate.not_valid_before": t(x.NotValidBefore),
		"certificate.not_valid_after": t(x.NotValidAfter), "certificate.key_alg": orDash(x.KeyAlg), "certificate.sig_alg": orDash(x.SigAlg),
		"certificate.key_type": orDash(x.KeyType), "certificate.key_length": optU(x.KeyLength), "certificate.exponent": orDash(x.Exponent),
		"certificate.curve": orDash(x.Curve), "san.dns": list(x.SANDNS), "san.email": list(x.SANEmail), "san.ip": list(ips),
		"basic_constraints.ca": optB(x.BasicConstraintCA), "basic_constraints.path_len": optU(x.BasicConstraintPL),
	}
}

func tsv(b bool) string {
	if b {
		return "T"
	}
	return "F"
}

func optU(o event.Opt[uint64]) string {
	if !o.Valid {
		return "-"
	}
	return strconv.FormatUint(o.V, 10)
}

func optB(o event.Opt[bool]) string {
	if !o.Valid {
		return "-"
	}
	return tsv(o.V)
}

func optD(o event.Opt[time.Duration]) string {
	if !o.Valid {
		return "-"
	}
	return fmt.Sprintf("%.6f", o.V.Seconds())
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func connRow(c *event.Conn) map[string]string {
	return map[string]string{
		"id.orig_h": c.SrcIP.String(), "id.orig_p": strconv.Itoa(int(c.SrcPort)), "id.resp_h": c.DstIP.String(),
		"id.resp_p": strconv.Itoa(int(c.DstPort)), "proto": c.Proto, "duration": optD(c.Duration),
		"orig_bytes": optU(c.SrcBytes), "resp_bytes": optU(c.DstBytes), "conn_state": c.ConnState,
		"missed_bytes": optU(c.MissedBytes), "history": orDash(c.History), "orig_pkts": optU(c.SrcPkts),
		"orig_ip_bytes": optU(c.SrcIPBytes), "resp_pkts": optU(c.DstPkts), "resp_ip_bytes": optU(c.DstIPBytes),
	}
}

func dnsRow(d *event.DNS) map[string]string {
	ans, ttls := "-", "-"
	if len(d.Answers) > 0 {
		ans = strings.Join(d.Answers, ",")
		var ts []string
		for _, x := range d.TTLs {
			ts = append(ts, fmt.Sprintf("%.6f", x.Seconds()))
		}
		ttls = strings.Join(ts, ",")
	}
	return map[string]string{
		"id.orig_h": d.SrcIP.String(), "id.orig_p": strconv.Itoa(int(d.SrcPort)), "id.resp_h": d.DstIP.String(),
		"id.resp_p": strconv.Itoa(int(d.DstPort)), "proto": d.Proto, "trans_id": optU(d.TransID), "rtt": optD(d.RTT),
		"query": orDash(d.Query), "qclass": optU(d.QClass), "qtype": optU(d.QType), "rcode": optU(d.RCode),
		"AA": optB(d.AA), "TC": optB(d.TC), "RD": optB(d.RD), "RA": optB(d.RA), "Z": optU(d.Z),
		"answers": ans, "TTLs": ttls, "rejected": optB(d.Rejected),
	}
}

// match pairs Zeek's rows with dwell's on the 5-tuple (and the order
// within it), and counts those whose key fields all agree.
func match(want, got []map[string]string, keys []string) (same int, diffs []string) {
	tuple := func(r map[string]string) string {
		if fp, ok := r["fingerprint"]; ok {
			return fp // x509: no endpoints
		}
		return r["id.orig_h"] + " " + r["id.orig_p"] + " " + r["id.resp_h"] + " " + r["id.resp_p"] + " " + r["proto"]
	}
	pool := map[string][]map[string]string{}
	for _, r := range got {
		pool[tuple(r)] = append(pool[tuple(r)], r)
	}
	for _, w := range want {
		cands := pool[tuple(w)]
		best, bestDiff := -1, []string(nil)
		for i, g := range cands {
			var d []string
			for _, k := range keys {
				if wv, ok := w[k]; ok && wv != g[k] {
					d = append(d, fmt.Sprintf("%s: zeek %q dwell %q", k, wv, g[k]))
				}
			}
			if best < 0 || len(d) < len(bestDiff) {
				best, bestDiff = i, d
			}
		}
		if best < 0 {
			diffs = append(diffs, "missing "+tuple(w))
			continue
		}
		pool[tuple(w)] = append(cands[:best], cands[best+1:]...)
		if len(bestDiff) == 0 {
			same++
		} else {
			diffs = append(diffs, tuple(w)+": "+strings.Join(bestDiff, "; "))
		}
	}
	return same, diffs
}

// conformance measures, per log type and trace, the share of Zeek's
// records dwell reproduces.
type conformance struct {
	log, test, trace string
	want, same       int
	diffs            []string
}

func measureConformance(t testing.TB) []conformance {
	dir, idx := loadIndex(t)
	var out []conformance
	cache := map[string]*event.Batch{}
	for _, e := range idx {
		for _, lp := range e.Logs {
			kind := strings.TrimSuffix(filepath.Base(lp), ".log")
			if kind != "conn" && kind != "dns" && kind != "http" && kind != "ssl" && kind != "x509" && kind != "files" {
				continue
			}
			emulate := zeekRun(e)
			ck := e.Trace + " " + fmt.Sprint(emulate)
			b := cache[ck]
			if b == nil {
				b, _ = readCapture(t, filepath.Join(dir, e.Trace), func(tb *table) {
					tb.checksums, tb.serverPorts = emulate.checksums, emulate.ports
				})
				cache[ck] = b
			}
			want := readZeekLog(t, filepath.Join(dir, lp)).rows
			if kind == "ssl" {
				for _, w := range want {
					w["proto"] = "tcp"
				}
			}
			if kind == "files" {
				// HTTP bodies only: dwell has no SMTP, FTP or SMB analyzer.
				want = slices.DeleteFunc(want, func(w map[string]string) bool { return w["source"] != "HTTP" })
				for _, w := range want {
					w["proto"] = "tcp"
				}
			}
			if kind == "http" {
				for _, w := range want {
					w["proto"] = "tcp"
					if w["uri"] == "(empty)" {
						w["uri"] = "-" // an empty URI: dwell's record cannot tell it from none
					}
				}
			}
			var got []map[string]string
			keys := connKeys
			switch kind {
			case "conn":
				for i := range b.Conns {
					got = append(got, connRow(&b.Conns[i]))
				}
			case "http":
				keys = httpKeys
				for i := range b.HTTP {
					r := httpRow(&b.HTTP[i])
					got = append(got, r)
				}
			case "ssl":
				keys = sslKeys
				for i := range b.TLS {
					got = append(got, sslRow(&b.TLS[i]))
				}
			case "files":
				keys = filesKeys
				for i := range b.Files {
					got = append(got, filesRow(&b.Files[i]))
				}
			case "x509":
				keys = x509Keys
				for i := range b.X509 {
					got = append(got, x509Row(&b.X509[i]))
				}
			case "dns":
				keys = dnsKeys
				for i := range b.DNS {
					got = append(got, dnsRow(&b.DNS[i]))
				}
			}
			same, diffs := match(want, got, keys)
			out = append(out, conformance{log: kind, test: filepath.Base(filepath.Dir(lp)), trace: e.Trace, want: len(want), same: same, diffs: diffs})
		}
	}
	return out
}

// zeekSettings is how Zeek ran a test: whether it verified checksums
// (without -C) and which ports its loaded analyzers registered (all of
// them normally; in bare mode only those of the scripts the test loads).
type zeekSettings struct {
	checksums bool
	ports     map[uint16]bool
}

var bareModePorts = map[string][]uint16{
	"dns": {53, 137, 5353, 5355}, "dhcp": {67}, "ftp": {21, 2811}, "http": {80, 81, 631, 1080, 3128, 8000, 8080, 8888},
	"ssl": {443, 563, 585, 614, 636, 989, 990, 992, 993, 995, 5223}, "smtp": {25, 587}, "pop3": {110}, "ssh": {22},
	"ntp": {123}, "rdp": {3389}, "irc": {6666, 6667, 6668, 6669}, "krb": {88, 750}, "mysql": {1434, 3306},
	"redis": {6379}, "modbus": {502}, "imap": {143}, "xmpp": {5222, 5269},
}

func zeekRun(e btest) zeekSettings {
	var s zeekSettings
	s.checksums = true
	for _, f := range strings.Fields(e.Command) {
		if strings.HasPrefix(f, "-") && !strings.HasPrefix(f, "--") && strings.Contains(f, "C") {
			s.checksums = false
		}
	}
	if !e.Bare {
		s.ports = likelyServerPorts
		return s
	}
	s.ports = map[uint16]bool{}
	if _, rest, ok := strings.Cut(e.Test, "/protocols/"); ok {
		proto, _, _ := strings.Cut(rest, "/")
		for _, p := range bareModePorts[proto] {
			s.ports[p] = true
		}
	}
	return s
}

// excludedTests are the Zeek tests whose own script changes what Zeek
// reads from the trace, so that its logs are not what Zeek writes for the
// trace: they are reported apart and not counted.
var excludedTests = map[string]string{
	"scripts.base.frameworks.netcontrol.packetfilter": "the test installs a packet filter that drops the connections' packets after the first",
	"scripts.policy.protocols.ssl.decryption":         "the test gives Zeek the TLS session keys, and the log is of the decrypted HTTP",
}

// conformanceFloor is the share of Zeek's records, per log type, that
// dwell reproduces today: a change that loses one fails.
var conformanceFloor = map[string]float64{"conn": 0.99, "dns": 0.99, "http": 1.0, "ssl": 1.0, "x509": 1.0, "files": 1.0}

func TestZeekConformance(t *testing.T) {
	res := measureConformance(t)
	tot := map[string][2]int{}
	for _, r := range res {
		if _, ok := excludedTests[r.test]; ok {
			continue
		}
		x := tot[r.log]
		x[0] += r.want
		x[1] += r.same
		tot[r.log] = x
		if testing.Verbose() && r.same < r.want {
			t.Logf("%s %s (%s): %d/%d", r.log, r.test, r.trace, r.same, r.want)
			for _, d := range r.diffs[:min(len(r.diffs), 6)] {
				t.Logf("    %s", d)
			}
		}
	}
	var logs []string
	for k := range tot {
		logs = append(logs, k)
	}
	sort.Strings(logs)
	for _, k := range logs {
		share := float64(tot[k][1]) / float64(max(tot[k][0], 1))
		t.Logf("%s: %d of %d Zeek records reproduced (%.1f%%)", k, tot[k][1], tot[k][0], 100*share)
		if share < conformanceFloor[k] {
			t.Errorf("%s: %.3f of Zeek's records reproduced, below the floor of %.3f", k, share, conformanceFloor[k])
		}
	}
	if p := os.Getenv("DWELL_CONFORMANCE_MD"); p != "" {
		if err := os.WriteFile(p, []byte(conformanceMarkdown(res, tot, logs)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// conformanceMarkdown renders the measurement for docs/pcap.md.
func conformanceMarkdown(res []conformance, tot map[string][2]int, logs []string) string {
	var b strings.Builder
	b.WriteString("| log | Zeek records | reproduced | share |\n|---|---:|---:|---:|\n")
	for _, k := range logs {
		fmt.Fprintf(&b, "| %s | %d | %d | %.1f %% |\n", k, tot[k][0], tot[k][1], 100*float64(tot[k][1])/float64(max(tot[k][0], 1)))
	}
	b.WriteString("\nPer test and log (Zeek's test, its trace, records reproduced of Zeek's):\n\n| test | trace | log | reproduced |\n|---|---|---|---:|\n")
	for _, r := range res {
		note := ""
		if why, ok := excludedTests[r.test]; ok {
			note = " (not counted: " + why + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d / %d%s |\n", strings.TrimPrefix(r.test, "scripts."), strings.TrimPrefix(r.trace, "traces/"), r.log, r.same, r.want, note)
	}
	return b.String()
}
