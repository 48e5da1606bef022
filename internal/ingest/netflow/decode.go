package netflow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Decoding NetFlow v5 (fixed records), NetFlow v9 (RFC 3954) and IPFIX
// (RFC 7011): v9 and IPFIX describe their records with templates, sent
// from time to time by each exporter and observation domain (v9's source
// ID), which the decoder keeps. Options records that give a sampling
// interval set it for the exporter's later flows.

// Information elements dwell reads (IANA IPFIX registry; v9's field types
// are the same numbers).
const (
	ieOctets           = 1
	iePackets          = 2
	ieProto            = 4
	ieTCPFlags         = 6
	ieSrcPort          = 7
	ieSrc4             = 8
	ieDstPort          = 11
	ieDst4             = 12
	ieEndUptime        = 21
	ieStartUptime      = 22
	ieSrc6             = 27
	ieDst6             = 28
	ieICMPv4           = 32
	ieSamplingInterval = 34
	ieSamplerInterval  = 50
	ieOctetsTotal      = 85
	iePacketsTotal     = 86
	ieICMPv6           = 139
	ieStartSec         = 150
	ieEndSec           = 151
	ieStartMilli       = 152
	ieEndMilli         = 153
	ieStartMicro       = 154
	ieEndMicro         = 155
	ieStartNano        = 156
	ieEndNano          = 157
	ieSysInitMilli     = 160
	iePacketInterval   = 305
)

// maxTemplates bounds the templates kept over all exporters: a flood of
// messages with forged exporters and template ids must not grow the
// decoder without end.
const maxTemplates = 1 << 16

// variable marks an IPFIX field of variable length.
const variable = 65535

type field struct {
	id     uint16
	length uint16
	ent    uint32 // enterprise number; 0 for IANA's elements
}

type template struct {
	fields  []field
	options bool
	minLen  int // bytes of a record with empty variable-length fields
}

type tplKey struct {
	exporter netip.Addr
	domain   uint32
	id       uint16
	version  uint8
}

type domainKey struct {
	exporter netip.Addr
	domain   uint32
	version  uint8
}

// decoder keeps the templates and sampling rates seen so far.
type decoder struct {
	templates map[tplKey]*template
	sampling  map[domainKey]uint32
	// unknown counts data sets whose template has not been seen.
	unknown int64
}

func newDecoder() *decoder {
	return &decoder{templates: map[tplKey]*template{}, sampling: map[domainKey]uint32{}}
}

// isFlowDatagram reports whether payload looks like a NetFlow v5, v9,
// IPFIX or sFlow v5 message.
func isFlowDatagram(p []byte) bool {
	if isSFlow(p) {
		return true
	}
	if len(p) < 16 {
		return false
	}
	switch binary.BigEndian.Uint16(p) {
	case 5:
		n := int(binary.BigEndian.Uint16(p[2:]))
		return n >= 1 && n <= 30 && len(p) >= 24+48*n
	case 9:
		return len(p) >= 24
	case 10:
		return int(binary.BigEndian.Uint16(p[2:])) == len(p)
	}
	return false
}

// header is what a message header gives the records in it.
type header struct {
	version  uint8
	exporter netip.Addr
	domain   uint32
	export   time.Time // the message's export time
	boot     time.Time // the exporter's boot (v5, v9), for uptime stamps
}

// decode appends the flows of one message to out.
func (d *decoder) decode(dg datagram, out []event.Flow) ([]event.Flow, error) {
	p := dg.payload
	if isSFlow(p) {
		return sflow(p, dg.ts, out)
	}
	if len(p) < 4 {
		return out, errors.New("datagram shorter than a flow header")
	}
	switch v := binary.BigEndian.Uint16(p); v {
	case 5:
		return d.v5(dg, out)
	case 9, 10:
		return d.templated(dg, uint8(v), out)
	default:
		return out, fmt.Errorf("not a NetFlow v5/v9 or IPFIX message (version %d)", v)
	}
}

func (d *decoder) v5(dg datagram, out []event.Flow) ([]event.Flow, error) {
	p := dg.payload
	if len(p) < 24 {
		return out, errors.New("NetFlow v5 header cut short")
	}
	n := int(binary.BigEndian.Uint16(p[2:]))
	uptime := time.Duration(binary.BigEndian.Uint32(p[4:])) * time.Millisecond
	now := time.Unix(int64(binary.BigEndian.Uint32(p[8:])), int64(binary.BigEndian.Uint32(p[12:])%1e9)).UTC()
	boot := now.Add(-uptime)
	sampling := uint32(binary.BigEndian.Uint16(p[22:]) & 0x3fff)
	if len(p) < 24+48*n {
		return out, fmt.Errorf("NetFlow v5 message says %d records but holds %d bytes", n, len(p))
	}
	for i := range n {
		r := p[24+48*i:]
		f := event.Flow{
			SrcIP: netip.AddrFrom4([4]byte(r[0:4])), DstIP: netip.AddrFrom4([4]byte(r[4:8])),
			Packets: uint64(binary.BigEndian.Uint32(r[16:])), Bytes: uint64(binary.BigEndian.Uint32(r[20:])),
			TS:      boot.Add(time.Duration(binary.BigEndian.Uint32(r[24:])) * time.Millisecond),
			End:     boot.Add(time.Duration(binary.BigEndian.Uint32(r[28:])) * time.Millisecond),
			SrcPort: binary.BigEndian.Uint16(r[32:]), DstPort: binary.BigEndian.Uint16(r[34:]),
			TCPFlags: r[37], Proto: protoName(r[38]), Sampling: sampling, Exporter: dg.src, Export: event.ExportNetFlow5,
		}
		if f.End.Before(f.TS) {
			f.End = f.TS // an uptime counter that wrapped, or garbage
		}
		out = append(out, f)
	}
	return out, nil
}

// templated decodes a v9 or IPFIX message.
func (d *decoder) templated(dg datagram, version uint8, out []event.Flow) ([]event.Flow, error) {
	p := dg.payload
	h := header{version: version, exporter: dg.src}
	var sets []byte
	if version == 9 {
		if len(p) < 20 {
			return out, errors.New("NetFlow v9 header cut short")
		}
		uptime := time.Duration(binary.BigEndian.Uint32(p[4:])) * time.Millisecond
		h.export = time.Unix(int64(binary.BigEndian.Uint32(p[8:])), 0).UTC()
		h.boot = h.export.Add(-uptime)
		h.domain = binary.BigEndian.Uint32(p[16:])
		sets = p[20:]
	} else {
		if len(p) < 16 {
			return out, errors.New("IPFIX header cut short")
		}
		l := int(binary.BigEndian.Uint16(p[2:]))
		if l < 16 || l > len(p) {
			return out, fmt.Errorf("IPFIX message length %d, datagram %d bytes", l, len(p))
		}
		p = p[:l]
		h.export = time.Unix(int64(binary.BigEndian.Uint32(p[4:])), 0).UTC()
		h.domain = binary.BigEndian.Uint32(p[12:])
		sets = p[16:]
	}
	tplSet, optSet := uint16(2), uint16(3)
	if version == 9 {
		tplSet, optSet = 0, 1
	}
	// Templates first: an exporter may put a data set before the
	// template that describes it in the same message.
	for pass := range 2 {
		rest := sets
		for len(rest) >= 4 {
			id, l := binary.BigEndian.Uint16(rest), int(binary.BigEndian.Uint16(rest[2:]))
			if l < 4 || l > len(rest) {
				return out, fmt.Errorf("set %d: length %d, %d bytes left", id, l, len(rest))
			}
			body := rest[4:l]
			rest = rest[l:]
			var err error
			switch {
			case pass == 0 && id == tplSet:
				err = d.readTemplates(h, body, false)
			case pass == 0 && id == optSet:
				err = d.readTemplates(h, body, true)
			case pass == 1 && id >= 256:
				out, err = d.readData(h, id, body, out)
			}
			if err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// readTemplates reads a template or options template set.
func (d *decoder) readTemplates(h header, b []byte, options bool) error {
	for len(b) >= 4 {
		id := binary.BigEndian.Uint16(b)
		if id < 256 {
			return nil // padding
		}
		var fields []field
		var err error
		if h.version == 9 {
			fields, b, err = v9Fields(b, options)
		} else {
			fields, b, err = ipfixFields(b, options)
		}
		if err != nil {
			return fmt.Errorf("template %d: %w", id, err)
		}
		t := &template{fields: fields, options: options}
		for _, f := range fields {
			if f.length != variable {
				t.minLen += int(f.length)
			} else {
				t.minLen++
			}
		}
		if len(fields) == 0 {
			delete(d.templates, tplKey{h.exporter, h.domain, id, h.version}) // a withdrawal
			continue
		}
		k := tplKey{h.exporter, h.domain, id, h.version}
		if _, ok := d.templates[k]; !ok && len(d.templates) >= maxTemplates {
			return fmt.Errorf("template %d from %s: %d templates known already, no more are kept", id, h.exporter, maxTemplates)
		}
		d.templates[k] = t
	}
	return nil
}

// v9Fields reads one v9 template record.
func v9Fields(b []byte, options bool) ([]field, []byte, error) {
	var n int
	if options {
		if len(b) < 6 {
			return nil, nil, errors.New("options template cut short")
		}
		scopeLen, optLen := int(binary.BigEndian.Uint16(b[2:])), int(binary.BigEndian.Uint16(b[4:]))
		n = (scopeLen + optLen) / 4
		b = b[6:]
	} else {
		n = int(binary.BigEndian.Uint16(b[2:]))
		b = b[4:]
	}
	if len(b) < 4*n {
		return nil, nil, fmt.Errorf("%d fields in %d bytes", n, len(b))
	}
	fields := make([]field, n)
	for i := range fields {
		fields[i] = field{id: binary.BigEndian.Uint16(b[4*i:]), length: binary.BigEndian.Uint16(b[4*i+2:])}
		if fields[i].length == variable {
			return nil, nil, errors.New("a NetFlow v9 field of variable length")
		}
	}
	return fields, b[4*n:], nil
}

// ipfixFields reads one IPFIX template record.
func ipfixFields(b []byte, options bool) ([]field, []byte, error) {
	n := int(binary.BigEndian.Uint16(b[2:]))
	b = b[4:]
	if options {
		if len(b) < 2 {
			return nil, nil, errors.New("options template cut short")
		}
		b = b[2:] // the scope field count: scope fields come first
	}
	fields := make([]field, 0, min(n, 512))
	for range n {
		if len(b) < 4 {
			return nil, nil, errors.New("field specifier cut short")
		}
		f := field{id: binary.BigEndian.Uint16(b), length: binary.BigEndian.Uint16(b[2:])}
		b = b[4:]
		if f.id&0x8000 != 0 {
			if len(b) < 4 {
				return nil, nil, errors.New("enterprise number cut short")
			}
			f.id &^= 0x8000
			f.ent = binary.BigEndian.Uint32(b)
			b = b[4:]
		}
		fields = append(fields, f)
	}
	return fields, b, nil
}

// readData decodes a data set with template id.
func (d *decoder) readData(h header, id uint16, b []byte, out []event.Flow) ([]event.Flow, error) {
	t := d.templates[tplKey{h.exporter, h.domain, id, h.version}]
	if t == nil {
		d.unknown++
		return out, nil
	}
	dk := domainKey{h.exporter, h.domain, h.version}
	for len(b) >= t.minLen && t.minLen > 0 {
		var rec record
		n, err := rec.read(t, b)
		if err != nil {
			if allZero(b) {
				break // padding at the end of the set
			}
			return out, fmt.Errorf("data set %d: %w", id, err)
		}
		b = b[n:]
		if t.options {
			if rec.sampling > 0 {
				d.sampling[dk] = rec.sampling
			}
			continue
		}
		if !rec.src.IsValid() && !rec.dst.IsValid() {
			continue // not a flow (another template's kind of record)
		}
		out = append(out, rec.flow(h, d.sampling[dk]))
	}
	return out, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// record holds the fields of one data record that dwell keeps.
type record struct {
	src, dst         netip.Addr
	sport, dport     uint16
	proto            uint8
	flags            uint8
	packets, octets  uint64
	start, end       time.Time
	startUp, endUp   int64 // uptime stamps, ms; -1 when absent
	sysInit          time.Time
	sampling         uint32
	icmpType, icmpCd uint8
	icmp             bool
}

// read decodes one record of template t from b and returns its length.
func (r *record) read(t *template, b []byte) (int, error) {
	r.startUp, r.endUp = -1, -1
	at := 0
	for _, f := range t.fields {
		l := int(f.length)
		if f.length == variable {
			if at >= len(b) {
				return 0, errors.New("record cut short")
			}
			l = int(b[at])
			at++
			if l == 255 {
				if at+2 > len(b) {
					return 0, errors.New("record cut short")
				}
				l = int(binary.BigEndian.Uint16(b[at:]))
				at += 2
			}
		}
		if at+l > len(b) {
			return 0, errors.New("record cut short")
		}
		if f.ent == 0 {
			r.set(f.id, b[at:at+l])
		}
		at += l
	}
	return at, nil
}

// setAddr sets the source or destination address. Templates with both
// IPv4 and IPv6 fields leave the unused family all zeros: an unspecified
// address does not replace one already set.
func (r *record) setAddr(src bool, a netip.Addr) {
	p := &r.dst
	if src {
		p = &r.src
	}
	if !a.IsUnspecified() || !p.IsValid() {
		*p = a
	}
}

// uintOf reads a big-endian unsigned value of 1 to 8 bytes (reduced-size
// encoding, RFC 7011 6.2).
func uintOf(v []byte) uint64 {
	var n uint64
	for _, c := range v[:min(len(v), 8)] {
		n = n<<8 | uint64(c)
	}
	return n
}

// ntpTime converts a 64-bit NTP timestamp; unit is the fraction's
// resolution to keep.
func ntpTime(v []byte) time.Time {
	if len(v) != 8 {
		return time.Time{}
	}
	sec := int64(binary.BigEndian.Uint32(v)) - 2208988800
	frac := uint64(binary.BigEndian.Uint32(v[4:]))
	return time.Unix(sec, int64((frac*1e9)>>32)).UTC()
}

func (r *record) set(id uint16, v []byte) {
	switch id {
	case ieOctets, ieOctetsTotal:
		r.octets = uintOf(v)
	case iePackets, iePacketsTotal:
		r.packets = uintOf(v)
	case ieProto:
		r.proto = uint8(uintOf(v)) //nolint:gosec // G115: one byte
	case ieTCPFlags:
		r.flags = uint8(uintOf(v)) //nolint:gosec // G115: the low byte holds FIN..URG
	case ieSrcPort:
		r.sport = uint16(uintOf(v)) //nolint:gosec // G115: two bytes
	case ieDstPort:
		r.dport = uint16(uintOf(v)) //nolint:gosec // G115: two bytes
	case ieSrc4, ieDst4:
		if len(v) == 4 {
			r.setAddr(id == ieSrc4, netip.AddrFrom4([4]byte(v)))
		}
	case ieSrc6, ieDst6:
		if len(v) == 16 {
			r.setAddr(id == ieSrc6, netip.AddrFrom16([16]byte(v)))
		}
	case ieICMPv4, ieICMPv6:
		if len(v) == 2 {
			r.icmp, r.icmpType, r.icmpCd = true, v[0], v[1]
		}
	case ieStartUptime:
		r.startUp = int64(uintOf(v)) //nolint:gosec // G115: milliseconds of uptime
	case ieEndUptime:
		r.endUp = int64(uintOf(v)) //nolint:gosec // G115: milliseconds of uptime
	case ieStartSec, ieEndSec:
		t := time.Unix(int64(uintOf(v)), 0).UTC() //nolint:gosec // G115: seconds since 1970
		if id == ieStartSec {
			r.start = t
		} else {
			r.end = t
		}
	case ieStartMilli, ieEndMilli:
		t := time.UnixMilli(int64(uintOf(v))).UTC() //nolint:gosec // G115: milliseconds since 1970
		if id == ieStartMilli {
			r.start = t
		} else {
			r.end = t
		}
	case ieStartMicro, ieEndMicro, ieStartNano, ieEndNano:
		t := ntpTime(v)
		if id == ieStartMicro || id == ieStartNano {
			r.start = t
		} else {
			r.end = t
		}
	case ieSysInitMilli:
		r.sysInit = time.UnixMilli(int64(uintOf(v))).UTC() //nolint:gosec // G115: milliseconds since 1970
	case ieSamplingInterval, ieSamplerInterval, iePacketInterval:
		r.sampling = uint32(min(uintOf(v), 1<<31))
	}
}

// flow makes the event of a decoded record.
func (r *record) flow(h header, sampling uint32) event.Flow {
	boot := h.boot
	if !r.sysInit.IsZero() {
		boot = r.sysInit
	}
	start, end := r.start, r.end
	if start.IsZero() && r.startUp >= 0 && !boot.IsZero() {
		start = boot.Add(time.Duration(r.startUp) * time.Millisecond)
	}
	if end.IsZero() && r.endUp >= 0 && !boot.IsZero() {
		end = boot.Add(time.Duration(r.endUp) * time.Millisecond)
	}
	if start.IsZero() {
		start = h.export
	}
	if end.IsZero() || end.Before(start) {
		end = start
	}
	if r.sampling > 0 {
		sampling = r.sampling
	}
	f := event.Flow{TS: start, End: end, SrcIP: r.src, DstIP: r.dst, SrcPort: r.sport, DstPort: r.dport,
		Proto: protoName(r.proto), TCPFlags: r.flags, Packets: r.packets, Bytes: r.octets, Sampling: sampling,
		Exporter: h.exporter, Export: event.ExportIPFIX}
	if h.version == 9 {
		f.Export = event.ExportNetFlow9
	}
	if r.icmp && (r.proto == 1 || r.proto == 58) {
		f.SrcPort, f.DstPort = uint16(r.icmpType), uint16(r.icmpCd) // as Zeek has them: type, code
	}
	return f
}

// protoName names an IP protocol as Zeek's conn.log does.
func protoName(p uint8) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 1, 58:
		return "icmp"
	}
	return strconv.Itoa(int(p))
}
