package scenario

import (
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Zeek's ASCII writer, as much of it as dwell's scenarios need: TSV with
// its header block, or JSON lines (LogAscii::use_json), for conn, dns,
// http, ssl, x509 and files. Values are appended to byte slices; nothing
// is formatted through fmt on the hot path.

// logSpec is one log's fields and types, in Zeek's order.
type logSpec struct {
	path   string
	fields []string
	types  []string
}

var (
	connLog = logSpec{"conn",
		[]string{"ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service", "duration", "orig_bytes", "resp_bytes", "conn_state", "local_orig", "local_resp", "missed_bytes", "history", "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes", "tunnel_parents"},
		[]string{"time", "string", "addr", "port", "addr", "port", "enum", "string", "interval", "count", "count", "string", "bool", "bool", "count", "string", "count", "count", "count", "count", "set[string]"}}
	dnsLog = logSpec{"dns",
		[]string{"ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "trans_id", "rtt", "query", "qclass", "qclass_name", "qtype", "qtype_name", "rcode", "rcode_name", "AA", "TC", "RD", "RA", "Z", "answers", "TTLs", "rejected"},
		[]string{"time", "string", "addr", "port", "addr", "port", "enum", "count", "interval", "string", "count", "string", "count", "string", "count", "string", "bool", "bool", "bool", "bool", "count", "vector[string]", "vector[interval]", "bool"}}
	httpLog = logSpec{"http",
		[]string{"ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "trans_depth", "method", "host", "uri", "referrer", "version", "user_agent", "origin", "request_body_len", "response_body_len", "status_code", "status_msg", "info_code", "info_msg", "tags", "username", "password", "proxied", "orig_fuids", "orig_filenames", "orig_mime_types", "resp_fuids", "resp_filenames", "resp_mime_types"},
		[]string{"time", "string", "addr", "port", "addr", "port", "count", "string", "string", "string", "string", "string", "string", "string", "count", "count", "count", "string", "count", "string", "set[enum]", "string", "string", "set[string]", "vector[string]", "vector[string]", "vector[string]", "vector[string]", "vector[string]", "vector[string]"}}
	sslLog = logSpec{"ssl",
		[]string{"ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "version", "cipher", "curve", "server_name", "resumed", "last_alert", "next_protocol", "established", "ssl_history", "cert_chain_fps", "client_cert_chain_fps", "sni_matches_cert", "validation_status", "ja3", "ja3s"},
		[]string{"time", "string", "addr", "port", "addr", "port", "string", "string", "string", "string", "bool", "string", "string", "bool", "string", "vector[string]", "vector[string]", "bool", "string", "string", "string"}}
	x509Log = logSpec{"x509",
		[]string{"ts", "fingerprint", "certificate.version", "certificate.serial", "certificate.subject", "certificate.issuer", "certificate.not_valid_before", "certificate.not_valid_after", "certificate.key_alg", "certificate.sig_alg", "certificate.key_type", "certificate.key_length", "certificate.exponent", "certificate.curve", "san.dns", "san.uri", "san.email", "san.ip", "basic_constraints.ca", "basic_constraints.path_len", "host_cert", "client_cert"},
		[]string{"time", "string", "count", "string", "string", "string", "time", "time", "string", "string", "string", "count", "string", "string", "vector[string]", "vector[string]", "vector[string]", "vector[addr]", "bool", "count", "bool", "bool"}}
	filesLog = logSpec{"files",
		[]string{"ts", "fuid", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "source", "depth", "analyzers", "mime_type", "filename", "duration", "local_orig", "is_orig", "seen_bytes", "total_bytes", "missing_bytes", "overflow_bytes", "timedout", "parent_fuid", "md5", "sha1", "sha256", "extracted", "extracted_cutoff", "extracted_size"},
		[]string{"time", "string", "string", "addr", "port", "addr", "port", "string", "count", "set[string]", "string", "string", "interval", "bool", "bool", "count", "count", "count", "count", "bool", "string", "string", "string", "string", "string", "bool", "count"}}
)

// tsvHeader returns the header block Zeek writes at the top of a file.
func tsvHeader(l logSpec, open time.Time) []byte {
	b := []byte("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\t")
	b = append(b, l.path...)
	b = append(b, "\n#open\t"...)
	b = open.UTC().AppendFormat(b, "2006-01-02-15-04-05")
	b = append(b, "\n#fields"...)
	for _, f := range l.fields {
		b = append(b, '\t')
		b = append(b, f...)
	}
	b = append(b, "\n#types"...)
	for _, t := range l.types {
		b = append(b, '\t')
		b = append(b, t...)
	}
	return append(b, '\n')
}

func tsvFooter(close time.Time) []byte {
	return close.UTC().AppendFormat([]byte("#close\t"), "2006-01-02-15-04-05\n")
}

// enc appends one record's fields in TSV or JSON.
type enc struct {
	json  bool
	b     []byte
	first bool
}

func (e *enc) begin(path string) {
	if e.json {
		e.b = append(e.b, `{"_path":"`...)
		e.b = append(e.b, path...)
		e.b = append(e.b, '"')
	}
	e.first = true
}

func (e *enc) end() { e.b = append(e.b, "}\n"[btoi(!e.json):]...) }

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// key starts a field; in JSON it returns false for unset values, which
// JSON logs leave out.
func (e *enc) key(name string, set bool) bool {
	if e.json {
		if !set {
			return false
		}
		e.b = append(e.b, ',', '"')
		e.b = append(e.b, name...)
		e.b = append(e.b, '"', ':')
		return true
	}
	if !e.first {
		e.b = append(e.b, '\t')
	}
	e.first = false
	if !set {
		e.b = append(e.b, '-')
		return false
	}
	return true
}

// micros appends seconds with six decimals, exactly.
func appendMicros(b []byte, us int64) []byte {
	if us < 0 {
		b = append(b, '-')
		us = -us
	}
	b = strconv.AppendInt(b, us/1e6, 10)
	frac := us % 1e6
	// Digits from the last, by constant divisions (multiplications).
	var d [7]byte
	d[0] = '.'
	for i := 6; i > 0; i-- {
		d[i] = byte('0' + frac%10)
		frac /= 10
	}
	return append(b, d[:]...)
}

func (e *enc) time(name string, t time.Time) {
	if e.key(name, !t.IsZero()) {
		e.b = appendMicros(e.b, t.UnixMicro())
	}
}

func (e *enc) interval(name string, d event.Opt[time.Duration]) {
	if e.key(name, d.Valid) {
		e.b = appendMicros(e.b, d.V.Microseconds())
	}
}

func (e *enc) str(name, s string) {
	if !e.key(name, s != "") {
		return
	}
	if e.json {
		e.b = appendJSONString(e.b, s)
		return
	}
	e.b = appendEscaped(e.b, s, false)
}

// tok appends a value the generator draws from a safe alphabet
// (identifiers, hashes, enums: no separators, quotes, backslashes or
// control bytes), which needs no escaping. The encoder tests check every
// value written this way.
func (e *enc) tok(name, s string) {
	if !e.key(name, s != "") {
		return
	}
	if e.json {
		e.b = append(e.b, '"')
		e.b = append(e.b, s...)
		e.b = append(e.b, '"')
		return
	}
	e.b = append(e.b, s...)
}

// toks appends a set or vector of tokens (see tok).
func (e *enc) toks(name string, v []string) {
	if !e.key(name, v != nil) {
		return
	}
	if !e.json && len(v) == 0 {
		e.b = append(e.b, "(empty)"...)
		return
	}
	if e.json {
		e.b = append(e.b, '[')
	}
	for i, s := range v {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		if e.json {
			e.b = append(e.b, '"')
		}
		e.b = append(e.b, s...)
		if e.json {
			e.b = append(e.b, '"')
		}
	}
	if e.json {
		e.b = append(e.b, ']')
	}
}

// appendEscaped escapes what Zeek's TSV writer escapes: the separators,
// backslashes before an x, and non-printable bytes. Runs of plain bytes
// are copied whole.
func appendEscaped(b []byte, s string, inSet bool) []byte {
	if s == "-" {
		return append(b, "\\x2d"...)
	}
	from, i := 0, 0
	if !inSet {
		// Eight bytes at a time while none needs a look: no control or
		// non-ASCII byte, no backslash.
		for ; i+8 <= len(s); i += 8 {
			w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
				uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
			if plain8(w) {
				continue
			}
			break
		}
	}
	for ; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c < 0x7f && (!inSet || c != ',') && (c != '\\' || i+1 == len(s) || s[i+1] != 'x') {
			continue
		}
		b = append(b, s[from:i]...)
		b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&15])
		from = i + 1
	}
	return append(b, s[from:]...)
}

const hexDigits = "0123456789abcdef"

// plain8 reports whether none of the eight bytes of w is below 0x20, at or
// above 0x7f, or a backslash (the classic SWAR byte tests).
func plain8(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	below := (w - ones*0x20) & ^w & highs
	above := ((w + ones*(127-0x7e)) | w) & highs
	x := w ^ (ones * '\\')
	backslash := (x - ones) & ^x & highs
	return below|above|backslash == 0
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	from := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' {
			i++
			continue
		}
		b = append(b, s[from:i]...)
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
			i++
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
			i++
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			b = utf8.AppendRune(b, r)
			i += n
		}
		from = i
	}
	b = append(b, s[from:]...)
	return append(b, '"')
}

func (e *enc) addr(name string, a netip.Addr) {
	if !e.key(name, a.IsValid()) {
		return
	}
	if e.json {
		e.b = append(e.b, '"')
		e.b = a.AppendTo(e.b)
		e.b = append(e.b, '"')
		return
	}
	e.b = a.AppendTo(e.b)
}

func (e *enc) port(name string, p uint16) {
	e.key(name, true)
	e.b = strconv.AppendUint(e.b, uint64(p), 10)
}

func (e *enc) count(name string, v event.Opt[uint64]) {
	if e.key(name, v.Valid) {
		e.b = strconv.AppendUint(e.b, v.V, 10)
	}
}

func (e *enc) boolean(name string, v event.Opt[bool]) {
	if !e.key(name, v.Valid) {
		return
	}
	switch {
	case e.json:
		e.b = strconv.AppendBool(e.b, v.V)
	case v.V:
		e.b = append(e.b, 'T')
	default:
		e.b = append(e.b, 'F')
	}
}

func (e *enc) strs(name string, v []string) {
	if !e.key(name, v != nil) {
		return
	}
	if e.json {
		e.b = append(e.b, '[')
		for i, s := range v {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.b = appendJSONString(e.b, s)
		}
		e.b = append(e.b, ']')
		return
	}
	if len(v) == 0 {
		e.b = append(e.b, "(empty)"...)
		return
	}
	for i, s := range v {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.b = appendEscaped(e.b, s, true)
	}
}

func (e *enc) intervals(name string, v []time.Duration) {
	if !e.key(name, v != nil) {
		return
	}
	if e.json {
		e.b = append(e.b, '[')
	} else if len(v) == 0 {
		e.b = append(e.b, "(empty)"...)
		return
	}
	for i, d := range v {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.b = appendMicros(e.b, d.Microseconds())
	}
	if e.json {
		e.b = append(e.b, ']')
	}
}

// id writes Zeek's conn_id: id.orig_h, id.orig_p, id.resp_h, id.resp_p.
func (e *enc) id(src netip.Addr, sport uint16, dst netip.Addr, dport uint16) {
	e.addr("id.orig_h", src)
	e.port("id.orig_p", sport)
	e.addr("id.resp_h", dst)
	e.port("id.resp_p", dport)
}

func (e *enc) conn(c *event.Conn) {
	e.begin("conn")
	e.time("ts", c.TS)
	e.tok("uid", c.UID)
	e.id(c.SrcIP, c.SrcPort, c.DstIP, c.DstPort)
	e.tok("proto", c.Proto)
	e.tok("service", c.Service)
	e.interval("duration", c.Duration)
	e.count("orig_bytes", c.SrcBytes)
	e.count("resp_bytes", c.DstBytes)
	e.tok("conn_state", c.ConnState)
	e.boolean("local_orig", c.LocalSrc)
	e.boolean("local_resp", c.LocalDst)
	e.count("missed_bytes", c.MissedBytes)
	e.tok("history", c.History)
	e.count("orig_pkts", c.SrcPkts)
	e.count("orig_ip_bytes", c.SrcIPBytes)
	e.count("resp_pkts", c.DstPkts)
	e.count("resp_ip_bytes", c.DstIPBytes)
	e.toks("tunnel_parents", c.TunnelParents)
	e.end()
}

func (e *enc) dns(d *event.DNS) {
	e.begin("dns")
	e.time("ts", d.TS)
	e.tok("uid", d.UID)
	e.id(d.SrcIP, d.SrcPort, d.DstIP, d.DstPort)
	e.tok("proto", d.Proto)
	e.count("trans_id", d.TransID)
	e.interval("rtt", d.RTT)
	e.str("query", d.Query)
	e.count("qclass", d.QClass)
	e.tok("qclass_name", d.QClassNm)
	e.count("qtype", d.QType)
	e.tok("qtype_name", d.QTypeName)
	e.count("rcode", d.RCode)
	e.tok("rcode_name", d.RCodeName)
	e.boolean("AA", d.AA)
	e.boolean("TC", d.TC)
	e.boolean("RD", d.RD)
	e.boolean("RA", d.RA)
	e.count("Z", d.Z)
	e.strs("answers", d.Answers)
	e.intervals("TTLs", d.TTLs)
	e.boolean("rejected", d.Rejected)
	e.end()
}

func (e *enc) http(h *event.HTTP) {
	e.begin("http")
	e.time("ts", h.TS)
	e.tok("uid", h.UID)
	e.id(h.SrcIP, h.SrcPort, h.DstIP, h.DstPort)
	e.count("trans_depth", h.TransDepth)
	e.tok("method", h.Method)
	e.str("host", h.Host)
	e.str("uri", h.URI)
	e.str("referrer", h.Referrer)
	e.tok("version", h.Version)
	e.str("user_agent", h.UserAgent)
	e.str("origin", h.Origin)
	e.count("request_body_len", h.RequestBodyLen)
	e.count("response_body_len", h.ResponseBodyLen)
	e.count("status_code", h.StatusCode)
	e.tok("status_msg", h.StatusMsg)
	e.count("info_code", h.InfoCode)
	e.str("info_msg", h.InfoMsg)
	e.toks("tags", h.Tags)
	e.str("username", h.Username)
	e.str("password", h.Password)
	e.strs("proxied", h.Proxied)
	e.toks("orig_fuids", h.OrigFUIDs)
	e.strs("orig_filenames", h.OrigFilenames)
	e.toks("orig_mime_types", h.OrigMIMETypes)
	e.toks("resp_fuids", h.RespFUIDs)
	e.strs("resp_filenames", h.RespFilenames)
	e.toks("resp_mime_types", h.RespMIMETypes)
	e.end()
}

func (e *enc) ssl(s *event.TLS) {
	e.begin("ssl")
	e.time("ts", s.TS)
	e.tok("uid", s.UID)
	e.id(s.SrcIP, s.SrcPort, s.DstIP, s.DstPort)
	e.tok("version", s.Version)
	e.tok("cipher", s.Cipher)
	e.tok("curve", s.Curve)
	e.str("server_name", s.ServerName)
	e.boolean("resumed", s.Resumed)
	e.tok("last_alert", s.LastAlert)
	e.tok("next_protocol", s.NextProtocol)
	e.boolean("established", s.Established)
	e.tok("ssl_history", s.SSLHistory)
	e.toks("cert_chain_fps", s.CertChainFPs)
	e.toks("client_cert_chain_fps", s.ClientCertChainFPs)
	e.boolean("sni_matches_cert", s.SNIMatchesCert)
	e.tok("validation_status", s.ValidationStatus)
	e.tok("ja3", s.JA3)
	e.tok("ja3s", s.JA3S)
	e.end()
}

func (e *enc) x509(x *event.X509) {
	e.begin("x509")
	e.time("ts", x.TS)
	e.tok("fingerprint", x.Fingerprint)
	e.count("certificate.version", x.Version)
	e.tok("certificate.serial", x.Serial)
	e.str("certificate.subject", x.Subject)
	e.str("certificate.issuer", x.Issuer)
	e.time("certificate.not_valid_before", x.NotValidBefore.V)
	e.time("certificate.not_valid_after", x.NotValidAfter.V)
	e.tok("certificate.key_alg", x.KeyAlg)
	e.tok("certificate.sig_alg", x.SigAlg)
	e.tok("certificate.key_type", x.KeyType)
	e.count("certificate.key_length", x.KeyLength)
	e.tok("certificate.exponent", x.Exponent)
	e.tok("certificate.curve", x.Curve)
	e.strs("san.dns", x.SANDNS)
	e.strs("san.uri", x.SANURI)
	e.strs("san.email", x.SANEmail)
	var ips []string
	for _, a := range x.SANIP {
		ips = append(ips, a.String())
	}
	e.strs("san.ip", ips)
	e.boolean("basic_constraints.ca", x.BasicConstraintCA)
	e.count("basic_constraints.path_len", x.BasicConstraintPL)
	e.boolean("host_cert", x.HostCert)
	e.boolean("client_cert", x.ClientCert)
	e.end()
}

func (e *enc) file(f *event.File) {
	e.begin("files")
	e.time("ts", f.TS)
	e.tok("fuid", f.FUID)
	e.tok("uid", f.UID)
	e.id(f.SrcIP, f.SrcPort, f.DstIP, f.DstPort)
	e.tok("source", f.Source)
	e.count("depth", f.Depth)
	e.toks("analyzers", f.Analyzers)
	e.tok("mime_type", f.MIMEType)
	e.str("filename", f.Filename)
	e.interval("duration", f.Duration)
	e.boolean("local_orig", f.LocalOrig)
	e.boolean("is_orig", f.IsOrig)
	e.count("seen_bytes", f.SeenBytes)
	e.count("total_bytes", f.TotalBytes)
	e.count("missing_bytes", f.MissingBytes)
	e.count("overflow_bytes", f.OverflowBytes)
	e.boolean("timedout", f.TimedOut)
	e.tok("parent_fuid", f.ParentFUID)
	e.tok("md5", f.MD5)
	e.tok("sha1", f.SHA1)
	e.tok("sha256", f.SHA256)
	e.str("extracted", f.Extracted)
	e.boolean("extracted_cutoff", f.ExtractedCutoff)
	e.count("extracted_size", f.ExtractedSize)
	e.end()
}
