package eve

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// record is what dwell reads of an EVE event.
type record struct {
	Timestamp   string      `json:"timestamp"`
	FlowID      json.Number `json:"flow_id"`
	EventType   string      `json:"event_type"`
	SrcIP       string      `json:"src_ip"`
	SrcPort     uint16      `json:"src_port"`
	DestIP      string      `json:"dest_ip"`
	DestPort    uint16      `json:"dest_port"`
	Proto       string      `json:"proto"`
	AppProto    string      `json:"app_proto"`
	CommunityID string      `json:"community_id"`
	TxID        *uint64     `json:"tx_id"`
	ICMPType    *uint16     `json:"icmp_type"`
	ICMPCode    *uint16     `json:"icmp_code"`
	Alert       *alert      `json:"alert"`
	Flow        *flow       `json:"flow"`
	TCP         *tcp        `json:"tcp"`
	DNS         *dns        `json:"dns"`
	HTTP        *http       `json:"http"`
	TLS         *tls        `json:"tls"`
	FileInfo    *fileinfo   `json:"fileinfo"`
}

type alert struct {
	Action      string              `json:"action"`
	SignatureID uint64              `json:"signature_id"`
	Rev         uint64              `json:"rev"`
	Signature   string              `json:"signature"`
	Category    string              `json:"category"`
	Severity    uint64              `json:"severity"`
	Metadata    map[string][]string `json:"metadata"`
}

type flow struct {
	PktsToServer  uint64 `json:"pkts_toserver"`
	PktsToClient  uint64 `json:"pkts_toclient"`
	BytesToServer uint64 `json:"bytes_toserver"`
	BytesToClient uint64 `json:"bytes_toclient"`
	Start         string `json:"start"`
	End           string `json:"end"`
	State         string `json:"state"`
}

type tcp struct {
	FlagsTS string `json:"tcp_flags_ts"`
	FlagsTC string `json:"tcp_flags_tc"`
}

type dnsRR struct {
	RRName string `json:"rrname"`
	RRType string `json:"rrtype"`
	TTL    uint64 `json:"ttl"`
	RData  string `json:"rdata"`
}

type dns struct {
	Type    string  `json:"type"`
	ID      *uint64 `json:"id"`
	RRName  string  `json:"rrname"`
	RRType  string  `json:"rrtype"`
	RCode   string  `json:"rcode"`
	AA      bool    `json:"aa"`
	TC      bool    `json:"tc"`
	RD      bool    `json:"rd"`
	RA      bool    `json:"ra"`
	Queries []dnsRR `json:"queries"` // EVE DNS version 3
	Answers []dnsRR `json:"answers"`
}

type http struct {
	Hostname  string `json:"hostname"`
	URL       string `json:"url"`
	UserAgent string `json:"http_user_agent"`
	Method    string `json:"http_method"`
	Protocol  string `json:"protocol"`
	Referrer  string `json:"http_refer"`
	Status    *int64 `json:"status"`
	Length    uint64 `json:"length"`
	// The reply's Server header: a custom field ("custom: [server]") or
	// among all headers ("dump-all-headers: response" or "both").
	Server   string   `json:"server"`
	Response []header `json:"response_headers"`
}

type header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// server returns the reply's Server header.
func (h *http) server() string {
	if h.Server != "" {
		return h.Server
	}
	for _, x := range h.Response {
		if strings.EqualFold(x.Name, "server") {
			return x.Value
		}
	}
	return ""
}

type tls struct {
	Subject  string `json:"subject"`
	IssuerDN string `json:"issuerdn"`
	SNI      string `json:"sni"`
	Version  string `json:"version"`
	JA3      *struct {
		Hash string `json:"hash"`
	} `json:"ja3"`
	JA3S *struct {
		Hash string `json:"hash"`
	} `json:"ja3s"`
	JA4 string `json:"ja4"`
}

type fileinfo struct {
	Filename string  `json:"filename"`
	Magic    string  `json:"magic"`
	MD5      string  `json:"md5"`
	SHA1     string  `json:"sha1"`
	SHA256   string  `json:"sha256"`
	Size     *uint64 `json:"size"`
	FileID   *uint64 `json:"file_id"`
	State    string  `json:"state"`
	Gaps     bool    `json:"gaps"`
}

// parseTime reads EVE's timestamps ("2017-04-07T22:24:37.251547+0100").
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04:05.999999999-0700", time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return event.Micro(t), nil
		}
	}
	return time.Time{}, fmt.Errorf("bad timestamp %q", s)
}

func parseAddr(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// decode reads one EVE line into b. It returns the kind of record it made
// (0 for an event type dwell does not store, or a DNS query waiting for
// its answer) and the event type.
func decode(line []byte, src event.Source, b *event.Batch, pairs *dnsPairs) (event.Kind, string, error) {
	var r record
	if err := json.Unmarshal(line, &r); err != nil {
		return 0, "", fmt.Errorf("not an EVE event: %w", err)
	}
	ts, err := parseTime(r.Timestamp)
	if err != nil {
		return 0, r.EventType, err
	}
	if r.EventType == "" {
		return 0, "", errors.New("no event_type")
	}
	uid := r.FlowID.String()
	sip, dip := parseAddr(r.SrcIP), parseAddr(r.DestIP)
	proto := strings.ToLower(r.Proto)
	switch {
	case r.EventType == "alert" && r.Alert != nil:
		a := r.Alert
		rec := event.Alert{TS: ts, FlowID: uid, SrcIP: sip, SrcPort: r.SrcPort, DstIP: dip, DstPort: r.DestPort, Proto: proto,
			AppProto: r.AppProto, Action: a.Action, SignatureID: event.Some(a.SignatureID), Rev: event.Some(a.Rev),
			Signature: a.Signature, Category: a.Category, CommunityID: r.CommunityID, Attack: a.Metadata["mitre_technique_id"], Src: src}
		if a.Severity > 0 {
			rec.Severity = event.Some(a.Severity)
		}
		b.Alerts = append(b.Alerts, rec)
		return event.KindAlert, r.EventType, nil
	case r.EventType == "flow" && r.Flow != nil:
		c, err := conn(&r, ts, uid, sip, dip, proto, src)
		if err != nil {
			return 0, r.EventType, err
		}
		b.Conns = append(b.Conns, c)
		return event.KindConn, r.EventType, nil
	case r.EventType == "dns" && r.DNS != nil:
		pairs.take(&r, ts, uid, sip, dip, proto, src, b)
		return event.KindDNS, r.EventType, nil
	case r.EventType == "http" && r.HTTP != nil:
		h := r.HTTP
		rec := event.HTTP{TS: ts, UID: uid, SrcIP: sip, SrcPort: r.SrcPort, DstIP: dip, DstPort: r.DestPort, Method: h.Method,
			Host: h.Hostname, URI: h.URL, Referrer: h.Referrer, Version: strings.TrimPrefix(h.Protocol, "HTTP/"), UserAgent: h.UserAgent,
			ResponseBodyLen: event.Some(h.Length), Server: h.server(), Src: src}
		if h.Status != nil && *h.Status >= 0 {
			rec.StatusCode = event.Some(uint64(*h.Status))
		}
		if r.TxID != nil {
			rec.TransDepth = event.Some(*r.TxID + 1)
		}
		b.HTTP = append(b.HTTP, rec)
		return event.KindHTTP, r.EventType, nil
	case r.EventType == "tls" && r.TLS != nil:
		t := r.TLS
		rec := event.TLS{TS: ts, UID: uid, SrcIP: sip, SrcPort: r.SrcPort, DstIP: dip, DstPort: r.DestPort, Version: tlsVersion(t.Version),
			ServerName: t.SNI, Subject: t.Subject, Issuer: t.IssuerDN, JA4: t.JA4, Src: src}
		if t.JA3 != nil {
			rec.JA3 = t.JA3.Hash
		}
		if t.JA3S != nil {
			rec.JA3S = t.JA3S.Hash
		}
		b.TLS = append(b.TLS, rec)
		return event.KindTLS, r.EventType, nil
	case r.EventType == "fileinfo" && r.FileInfo != nil:
		f := r.FileInfo
		id := uid
		if f.FileID != nil {
			id += "-" + strconv.FormatUint(*f.FileID, 10)
		} else if r.TxID != nil {
			id += "-" + strconv.FormatUint(*r.TxID, 10)
		}
		rec := event.File{TS: ts, FUID: "F" + id, UID: uid, SrcIP: sip, SrcPort: r.SrcPort, DstIP: dip, DstPort: r.DestPort,
			ConnUIDs: []string{uid}, Source: strings.ToUpper(r.AppProto), MIMEType: mimeOf(f.Magic), Filename: f.Filename,
			MD5: f.MD5, SHA1: f.SHA1, SHA256: f.SHA256, Src: src}
		if f.Size != nil {
			rec.SeenBytes = event.Some(*f.Size)
		}
		b.Files = append(b.Files, rec)
		return event.KindFile, r.EventType, nil
	}
	return 0, r.EventType, nil
}

// conn makes a conn.log record of a flow event: counts per direction,
// payload bytes estimated from the IP bytes less a header a packet (EVE
// gives no payload count), and Zeek's conn_state as far as the TCP flags
// each side sent tell it.
func conn(r *record, ts time.Time, uid string, sip, dip netip.Addr, proto string, src event.Source) (event.Conn, error) {
	f := r.Flow
	start, err := parseTime(f.Start)
	if err != nil {
		start = ts
	}
	c := event.Conn{TS: start, UID: uid, SrcIP: sip, SrcPort: r.SrcPort, DstIP: dip, DstPort: r.DestPort, Proto: proto,
		Service: r.AppProto, SrcPkts: event.Some(f.PktsToServer), DstPkts: event.Some(f.PktsToClient),
		SrcIPBytes: event.Some(f.BytesToServer), DstIPBytes: event.Some(f.BytesToClient), CommunityID: r.CommunityID, Src: src}
	if proto == "icmp" || proto == "ipv6-icmp" {
		c.Proto = "icmp"
		if r.ICMPType != nil {
			c.SrcPort = *r.ICMPType
		}
		if r.ICMPCode != nil {
			c.DstPort = *r.ICMPCode
		}
	}
	if end, err := parseTime(f.End); err == nil && end.After(start) {
		c.Duration = event.Some(end.Sub(start))
	}
	hdr := uint64(20)
	if sip.Is6() {
		hdr = 40
	}
	switch c.Proto {
	case "tcp":
		hdr += 20
	case "udp", "icmp":
		hdr += 8
	}
	payload := func(bytes, pkts uint64) uint64 {
		if bytes > pkts*hdr {
			return bytes - pkts*hdr
		}
		return 0
	}
	c.SrcBytes, c.DstBytes = event.Some(payload(f.BytesToServer, f.PktsToServer)), event.Some(payload(f.BytesToClient, f.PktsToClient))
	c.ConnState = connState(c.Proto, r.TCP, f.PktsToServer, f.PktsToClient)
	return c, nil
}

// TCP flags.
const (
	fin = 0x01
	syn = 0x02
	rst = 0x04
	ack = 0x10
)

// connState tells Zeek's conn_state from the flags each side sent.
func connState(proto string, t *tcp, toServer, toClient uint64) string {
	if proto != "tcp" || t == nil {
		switch {
		case toServer > 0 && toClient > 0:
			return "SF"
		case toServer > 0:
			return "S0"
		case toClient > 0:
			return "SHR"
		}
		return "OTH"
	}
	o, _ := strconv.ParseUint(t.FlagsTS, 16, 8)
	r, _ := strconv.ParseUint(t.FlagsTC, 16, 8)
	switch {
	case r&rst != 0 && r&syn == 0 && o&ack == 0:
		return "REJ"
	case r&rst != 0:
		return "RSTR"
	case o&rst != 0 && r == 0:
		return "RSTOS0"
	case o&rst != 0:
		return "RSTO"
	case o&fin != 0 && r&fin != 0:
		return "SF"
	case o&syn != 0 && r == 0:
		return "S0"
	case o&fin != 0:
		return "S2"
	case r&fin != 0:
		return "S3"
	case o&syn != 0 && r&syn != 0:
		return "S1"
	}
	return "OTH"
}

// tlsVersion names EVE's TLS versions as Zeek's ssl.log does.
func tlsVersion(v string) string {
	switch v {
	case "TLS 1.3":
		return "TLSv13"
	case "TLS 1.2":
		return "TLSv12"
	case "TLS 1.1":
		return "TLSv11"
	case "TLS 1.0":
		return "TLSv10"
	case "SSLv3", "SSL 3.0":
		return "SSLv3"
	case "SSLv2":
		return "SSLv2"
	}
	return v
}

// mimeOf turns libmagic's description (EVE's fileinfo.magic) into the
// MIME type Zeek's files.log would give.
func mimeOf(magic string) string {
	m := strings.ToLower(magic)
	for _, p := range []struct{ prefix, mime string }{
		{"pe32", "application/x-dosexec"}, {"ms-dos executable", "application/x-dosexec"}, {"elf", "application/x-executable"},
		{"pdf document", "application/pdf"}, {"zip archive", "application/zip"}, {"gzip compressed", "application/x-gzip"},
		{"html document", "text/html"}, {"xml", "application/xml"}, {"json", "text/json"}, {"png image", "image/png"},
		{"jpeg image", "image/jpeg"}, {"gif image", "image/gif"}, {"composite document file", "application/vnd.ms-office"},
		{"microsoft word", "application/msword"}, {"java archive", "application/java-archive"}, {"rar archive", "application/x-rar"},
		{"7-zip archive", "application/x-7z-compressed"}, {"ascii text", "text/plain"}, {"utf-8 unicode text", "text/plain"},
		{"unicode text", "text/plain"}, {"data", "application/octet-stream"},
	} {
		if strings.HasPrefix(m, p.prefix) {
			return p.mime
		}
	}
	return ""
}
