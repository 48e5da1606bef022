package store

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Flow records become connections in four steps, the same in every
// backend (docs/flows.md); this Go form is the reference the SQL of the
// backends is tested against.
//
//  1. Records are grouped by sensor, exporter, protocol and the two
//     endpoints (address and port) in either order: both directions of a
//     connection, and the pieces an exporter cut it into.
//  2. In order of start, a record that begins more than SessionGap after
//     every earlier record of its group ended starts a new session: active
//     timeouts cut long connections into adjoining records, inactive
//     timeouts into records a short silence apart, and both are joined
//     back; a silence longer than the gap is a new connection.
//  3. The originator is the source of the session's first record; of
//     records that start in the same millisecond, the one sent to the
//     lower port (the service), then the lower address and port.
//  4. Counts are added per direction and multiplied by the sampling
//     interval; payload bytes are the IP bytes less a header per packet
//     (SessionHeader); the state follows Zeek's conn_state as far as ORed
//     flags tell it (SessionState).
//
// Each session keeps the sensor and provenance of its first record.
// Flows made from packet captures (event.ExportPcap) are left out: the
// capture's connections are in conn already.

// SessionGap is the longest silence inside one session.
const SessionGap = 60 * time.Second

// Sessions stitches flow records into connections, ordered by sensor,
// start and originator.
func Sessions(flows []event.Flow) []event.Conn {
	type key struct {
		sensor, exporter, proto string
		a, b                    netip.AddrPort
	}
	groups := map[key][]int{}
	for i := range flows {
		f := &flows[i]
		if f.Export == event.ExportPcap {
			continue
		}
		x, y := netip.AddrPortFrom(f.SrcIP, f.SrcPort), netip.AddrPortFrom(f.DstIP, f.DstPort)
		if compareEndpoints(y, x) < 0 {
			x, y = y, x
		}
		k := key{f.Src.Sensor, addrText(f.Exporter), f.Proto, x, y}
		groups[k] = append(groups[k], i)
	}
	var out []event.Conn
	for _, idx := range groups {
		slices.SortFunc(idx, func(i, j int) int {
			a, b := &flows[i], &flows[j]
			return cmp.Or(a.TS.Compare(b.TS), end(a).Compare(end(b)), cmp.Compare(a.Src.File, b.Src.File), cmp.Compare(a.Src.Line, b.Src.Line))
		})
		var latest time.Time
		start := 0
		for n, i := range idx {
			if n > 0 && flows[i].TS.Sub(latest) > SessionGap {
				out = append(out, session(flows, idx[start:n]))
				start = n
			}
			if n == 0 || end(&flows[i]).After(latest) {
				latest = end(&flows[i])
			}
		}
		out = append(out, session(flows, idx[start:]))
	}
	slices.SortFunc(out, func(a, b event.Conn) int {
		return cmp.Or(cmp.Compare(a.Src.Sensor, b.Src.Sensor), a.TS.Compare(b.TS), a.SrcIP.Compare(b.SrcIP), cmp.Compare(a.SrcPort, b.SrcPort),
			a.DstIP.Compare(b.DstIP), cmp.Compare(a.DstPort, b.DstPort), cmp.Compare(a.Proto, b.Proto))
	})
	return out
}

// end is when a flow record ends (its start when the exporter gave none).
func end(f *event.Flow) time.Time {
	if f.End.IsZero() || f.End.Before(f.TS) {
		return f.TS
	}
	return f.End
}

func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// compareEndpoints orders endpoints as the SQL backends do: by address
// text, then port.
func compareEndpoints(a, b netip.AddrPort) int {
	return cmp.Or(cmp.Compare(addrText(a.Addr()), addrText(b.Addr())), cmp.Compare(a.Port(), b.Port()))
}

// session makes one connection of the records idx (in order of start).
func session(flows []event.Flow, idx []int) event.Conn {
	first := &flows[idx[0]]
	orig := first
	for _, i := range idx[1:] {
		if origBefore(&flows[i], orig) {
			orig = &flows[i]
		}
	}
	c := event.Conn{TS: first.TS, SrcIP: orig.SrcIP, SrcPort: orig.SrcPort, DstIP: orig.DstIP, DstPort: orig.DstPort, Proto: first.Proto, Src: first.Src}
	var last time.Time
	var oFlags, rFlags uint8
	var oBytes, rBytes, oPkts, rPkts, oIP, rIP uint64
	replied := false
	for _, i := range idx {
		f := &flows[i]
		last = event.Latest(last, end(f))
		smp := uint64(max(f.Sampling, 1))
		pay := SessionPayload(f.Bytes, f.Packets, f.Proto, f.SrcIP.Is6() && !f.SrcIP.Is4In6())
		if f.SrcIP == orig.SrcIP && f.SrcPort == orig.SrcPort {
			oFlags |= f.TCPFlags
			oBytes, oPkts, oIP = oBytes+pay*smp, oPkts+f.Packets*smp, oIP+f.Bytes*smp
		} else {
			replied = true
			rFlags |= f.TCPFlags
			rBytes, rPkts, rIP = rBytes+pay*smp, rPkts+f.Packets*smp, rIP+f.Bytes*smp
		}
	}
	c.Duration = event.Some(last.Sub(first.TS))
	c.SrcBytes, c.DstBytes = event.Some(oBytes), event.Some(rBytes)
	c.SrcPkts, c.DstPkts, c.SrcIPBytes, c.DstIPBytes = event.Some(oPkts), event.Some(rPkts), event.Some(oIP), event.Some(rIP)
	c.ConnState = SessionState(c.Proto, oFlags, rFlags, replied)
	return c
}

// origBefore reports whether f is a better guess of the originator than
// o: it starts in an earlier millisecond; or in the same one, it is sent
// to the lower port (the service) where o is sent to the higher (a
// reply); then the lower source address and port.
func origBefore(f, o *event.Flow) bool {
	reply := func(x *event.Flow) int {
		if x.DstPort >= x.SrcPort {
			return 1
		}
		return 0
	}
	return cmp.Or(cmp.Compare(f.TS.UnixMilli(), o.TS.UnixMilli()), cmp.Compare(reply(f), reply(o)),
		cmp.Compare(addrText(f.SrcIP), addrText(o.SrcIP)), cmp.Compare(f.SrcPort, o.SrcPort)) < 0
}

// SessionHeader is the bytes of headers counted per packet of a protocol:
// IP (20, or 40 for IPv6) and TCP (20) or UDP and ICMP (8).
func SessionHeader(proto string, ipv6 bool) uint64 {
	h := uint64(20)
	if ipv6 {
		h = 40
	}
	switch proto {
	case "tcp":
		h += 20
	case "udp", "icmp", "ipv6-icmp":
		h += 8
	}
	return h
}

// SessionPayload estimates the payload of a flow record: its IP bytes
// less a header per packet.
func SessionPayload(bytes, packets uint64, proto string, ipv6 bool) uint64 {
	h := packets * SessionHeader(proto, ipv6)
	if bytes <= h {
		return 0
	}
	return bytes - h
}

// TCP flags as flow records carry them.
const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagRST = 0x04
	flagACK = 0x10
)

// SessionState is Zeek's conn_state as far as the ORed TCP flags of each
// direction tell it: S0 (no reply; an attempt), REJ (the responder reset
// without a SYN), SF (both sent SYN, and a FIN was seen), RSTO and RSTR (a
// reset, by originator or responder), S1 (established, not closed), OTH
// (no SYN seen). Other protocols are SF with a reply and S0 without.
func SessionState(proto string, orig, resp uint8, replied bool) string {
	if proto != "tcp" {
		if replied {
			return "SF"
		}
		return "S0"
	}
	switch {
	case !replied && orig&flagSYN != 0 && orig&flagACK == 0:
		return "S0"
	case !replied:
		return "OTH"
	case resp&flagRST != 0 && resp&flagSYN == 0:
		return "REJ"
	case orig&flagSYN == 0 || resp&flagSYN == 0:
		return "OTH"
	case (orig|resp)&flagFIN != 0:
		return "SF"
	case orig&flagRST != 0:
		return "RSTO"
	case resp&flagRST != 0:
		return "RSTR"
	}
	return "S1"
}
