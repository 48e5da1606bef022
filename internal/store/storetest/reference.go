package storetest

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Reference implementations of the analytics that name hosts in DNS
// answers, fan out to many targets and send data: Resolved, Fanout,
// Uploads, PassiveDNS.

func refResolved(b *event.Batch, w store.Window) []store.Resolution {
	m := map[string]*store.Resolution{}
	for _, d := range b.DNS {
		if !w.Contains(d.TS) {
			continue
		}
		for _, ans := range d.Answers {
			a, err := netip.ParseAddr(ans)
			if err != nil || !resolvedText(ans) {
				continue
			}
			k := d.Src.Sensor + "|" + ans
			x := m[k]
			if x == nil {
				x = &store.Resolution{Sensor: d.Src.Sensor, Addr: a, Name: d.Query, First: d.TS, Last: d.TS}
				m[k] = x
			}
			x.Name = min(x.Name, d.Query)
			x.First, x.Last = event.Earliest(x.First, d.TS), event.Latest(x.Last, d.TS)
		}
	}
	return sortedValues(m)
}

// resolvedText reports whether an answer is written as the SQL backends
// recognise an address: dotted digits, or hex digits and colons (with an
// optional dotted tail).
func resolvedText(s string) bool {
	if strings.Contains(s, ":") {
		return strings.Trim(s, "0123456789abcdefABCDEF:.") == ""
	}
	return strings.Trim(s, "0123456789.") == "" && strings.Count(s, ".") == 3
}

func isProbe(c *event.Conn) bool {
	return slices.Contains(store.ProbeStates(), c.ConnState) && c.DstBytes.V == 0
}

func refFanout(b *event.Batch, w store.Window, f store.FanoutFilter) []store.Fanout {
	type acc struct {
		x       store.Fanout
		targets map[string]bool
	}
	m := map[string]*acc{}
	for i := range b.Conns {
		c := &b.Conns[i]
		if !w.Contains(c.TS) || !c.SrcIP.IsValid() || !c.DstIP.IsValid() || (c.SrcPkts.Valid && c.SrcPkts.V == 0) {
			continue
		}
		var k, target string
		x := store.Fanout{Sensor: c.Src.Sensor, Src: c.SrcIP, Proto: c.Proto, First: c.TS, Last: c.TS}
		if f.By == store.FanoutByPort {
			x.Port = c.DstPort
			k = fmt.Sprintf("%s|%s|%s|%05d", c.Src.Sensor, c.SrcIP, c.Proto, c.DstPort)
			target = c.DstIP.String()
		} else {
			x.Dst = c.DstIP
			k = fmt.Sprintf("%s|%s|%s|%s", c.Src.Sensor, c.SrcIP, c.Proto, c.DstIP)
			target = fmt.Sprint(c.DstPort)
		}
		a := m[k]
		if a == nil {
			a = &acc{x: x, targets: map[string]bool{}}
			m[k] = a
		}
		a.targets[target] = true
		a.x.Conns++
		if isProbe(c) {
			a.x.Probes++
		}
		a.x.First, a.x.Last = event.Earliest(a.x.First, c.TS), event.Latest(a.x.Last, c.TS)
	}
	out := map[string]*store.Fanout{}
	for k, a := range m {
		a.x.Targets = int64(len(a.targets))
		if a.x.Targets >= f.MinTargets {
			out[k] = &a.x
		}
	}
	return sortedValues(out)
}

// refUploads takes connections from conns and the HTTP and files records
// from b (those only when w reads Zeek's conn log).
func refUploads(b, conns *event.Batch, w store.Window, f store.UploadFilter) []store.Upload {
	m := map[string]*store.Upload{}
	in := f.Set()
	add := func(u store.Upload) {
		if !w.Contains(u.TS) || u.Bytes < f.MinBytes || !u.Src.IsValid() || !f.Keep(in, u.Src, u.Dst) ||
			(f.Dst != store.Anywhere && !u.Dst.IsValid()) {
			return
		}
		k := strings.Join([]string{u.Sensor, u.Src.String(), u.Dst.String(), u.TS.Format("2006-01-02T15:04:05.000000"), u.Log, u.UID,
			fmt.Sprintf("%020d", u.Bytes)}, "|")
		for m[k] != nil { // the same record twice
			k += "+"
		}
		m[k] = &u
	}
	for _, c := range conns.Conns {
		add(store.Upload{Sensor: c.Src.Sensor, Log: "conn", TS: c.TS, UID: c.UID, Src: c.SrcIP, Dst: c.DstIP, DstPort: c.DstPort,
			Bytes: int64(c.SrcBytes.V), Received: int64(c.DstBytes.V), Duration: c.Duration.V, File: c.Src.File, Line: c.Src.Line})
	}
	if w.Conns == store.ConnLog {
		for _, h := range b.HTTP {
			add(store.Upload{Sensor: h.Src.Sensor, Log: "http", TS: h.TS, UID: h.UID, Src: h.SrcIP, Dst: h.DstIP, DstPort: h.DstPort,
				Bytes: int64(h.RequestBodyLen.V), Received: int64(h.ResponseBodyLen.V), Method: h.Method, Host: h.Host, Agent: h.UserAgent,
				MIME: first(h.OrigMIMETypes), Filename: first(h.OrigFilenames), URI: h.URI, File: h.Src.File, Line: h.Src.Line})
		}
		for _, f := range b.Files {
			u := store.Upload{Sensor: f.Src.Sensor, Log: "files", TS: f.TS, UID: f.UID, Bytes: int64(f.SeenBytes.V), MIME: f.MIMEType, Filename: f.Filename,
				MD5: f.MD5, SHA1: f.SHA1, SHA256: f.SHA256, File: f.Src.File, Line: f.Src.Line}
			if f.DstIP.IsValid() {
				u.DstPort = f.DstPort // stored with its address
			}
			switch {
			case len(f.TxHosts) > 0:
				u.Src = f.TxHosts[0]
				if len(f.RxHosts) > 0 {
					u.Dst = f.RxHosts[0]
				}
			case f.IsOrig.V:
				u.Src, u.Dst = f.SrcIP, f.DstIP
			default:
				u.Src, u.Dst = f.DstIP, f.SrcIP
			}
			add(u)
		}
	}
	return sortedValues(m)
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// refPassiveDNS reads names and addresses from b's DNS answers, TLS
// server names and HTTP hosts.
func refPassiveDNS(b *event.Batch, w store.Window, f store.NameFilter) []store.NameAddr {
	m := map[string]*store.NameAddr{}
	add := func(log, name string, a netip.Addr, ts time.Time) {
		name = strings.ToLower(name)
		if !w.Contains(ts) || name == "" || !a.IsValid() || !f.Keep(name, a) {
			return
		}
		k := name + "\x00" + a.String() + "\x00" + log // sorts as name, address text, log
		x := m[k]
		if x == nil {
			x = &store.NameAddr{Log: log, Name: name, Addr: a, First: ts, Last: ts}
			m[k] = x
		}
		x.Count++
		x.First, x.Last = event.Earliest(x.First, ts), event.Latest(x.Last, ts)
	}
	for _, d := range b.DNS {
		for _, ans := range d.Answers {
			if a, err := netip.ParseAddr(ans); err == nil && resolvedText(ans) {
				add("dns", d.Query, a, d.TS)
			}
		}
	}
	for _, t := range b.TLS {
		add("ssl", t.ServerName, t.DstIP, t.TS)
	}
	for _, h := range b.HTTP {
		if store.HTTPHostName(h.Host) {
			add("http", h.Host, h.DstIP, h.TS)
		}
	}
	return sortedValues(m)
}

// refServerPrints reads the servers' fingerprints from b's TLS records
// and their Server headers from its HTTP records.
func refServerPrints(b *event.Batch, w store.Window, f store.PrintFilter) []store.ServerPrint {
	type acc struct {
		p       store.ServerPrint
		clients map[netip.Addr]bool
	}
	m := map[string]*acc{}
	add := func(kind, value string, server, client netip.Addr, ts time.Time) {
		if !w.Contains(ts) || !server.IsValid() || value == "" || !f.Keep(value, server) {
			return
		}
		k := kind + "\x00" + value + "\x00" + server.String()
		x := m[k]
		if x == nil {
			x = &acc{p: store.ServerPrint{Kind: kind, Value: value, Addr: server, First: ts, Last: ts}, clients: map[netip.Addr]bool{}}
			m[k] = x
		}
		x.p.Count++
		if client.IsValid() {
			x.clients[client] = true
		}
		x.p.First, x.p.Last = event.Earliest(x.p.First, ts), event.Latest(x.p.Last, ts)
	}
	for _, t := range b.TLS {
		if len(t.CertChainFPs) > 0 {
			add(store.PrintCert, t.CertChainFPs[0], t.DstIP, t.SrcIP, t.TS)
		}
		add(store.PrintJA3S, t.JA3S, t.DstIP, t.SrcIP, t.TS)
		add(store.PrintJA4S, t.JA4S, t.DstIP, t.SrcIP, t.TS)
	}
	for _, h := range b.HTTP {
		add(store.PrintServer, h.Server, h.DstIP, h.SrcIP, h.TS)
	}
	out := map[string]*store.ServerPrint{}
	for k, x := range m {
		x.p.Clients = int64(len(x.clients))
		out[k] = &x.p
	}
	return sortedValues(out)
}
