package eve

import (
	"net/netip"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// dnsPairs pairs EVE's DNS query events with their answer events (same
// flow, same transaction id, same name), to make one dns.log record of
// both as Zeek does. Queries still waiting when a batch ends are written
// alone.
type dnsPairs struct {
	waiting map[dnsKey]int // index in queries
	queries []event.DNS
}

type dnsKey struct {
	flow string
	id   uint64
	name string
}

const maxWaiting = 65536

func (p *dnsPairs) take(r *record, ts time.Time, uid string, sip, dip netip.Addr, proto string, src event.Source, b *event.Batch) {
	d := r.DNS
	name, qtype := d.RRName, d.RRType
	if len(d.Queries) > 0 {
		name, qtype = d.Queries[0].RRName, d.Queries[0].RRType
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	rec := event.DNS{TS: ts, UID: uid, SrcIP: sip, SrcPort: r.SrcPort, DstIP: dip, DstPort: r.DestPort, Proto: proto,
		Query: name, QTypeName: qtype, Src: src}
	if d.ID != nil {
		rec.TransID = event.Some(*d.ID)
	}
	k := dnsKey{uid, rec.TransID.V, name}
	if d.Type == "query" || d.Type == "request" {
		rec.RD = event.Some(d.RD)
		if p.waiting == nil {
			p.waiting = map[dnsKey]int{}
		}
		if _, dup := p.waiting[k]; dup || len(p.waiting) >= maxWaiting {
			b.DNS = append(b.DNS, rec)
			return
		}
		p.waiting[k] = len(p.queries)
		p.queries = append(p.queries, rec)
		return
	}
	// An answer: flags, rcode and answers, on its query when it was seen.
	if i, ok := p.waiting[k]; ok {
		q := p.queries[i]
		delete(p.waiting, k)
		p.queries[i].TS = time.Time{} // taken
		// The query's side is the originator; the answer comes back.
		rec.TS, rec.SrcIP, rec.SrcPort, rec.DstIP, rec.DstPort, rec.Src = q.TS, q.SrcIP, q.SrcPort, q.DstIP, q.DstPort, q.Src
		rec.RTT = event.Some(ts.Sub(q.TS))
		if rec.QTypeName == "" {
			rec.QTypeName = q.QTypeName
		}
	} else {
		// Only the answer: it travels from the server.
		rec.SrcIP, rec.SrcPort, rec.DstIP, rec.DstPort = dip, r.DestPort, sip, r.SrcPort
	}
	rec.RCodeName = d.RCode
	rec.AA, rec.TC, rec.RD, rec.RA = event.Some(d.AA), event.Some(d.TC), event.Some(d.RD), event.Some(d.RA)
	for _, a := range d.Answers {
		rec.Answers = append(rec.Answers, a.RData)
		rec.TTLs = append(rec.TTLs, time.Duration(a.TTL)*time.Second) //nolint:gosec // G115: a TTL
	}
	b.DNS = append(b.DNS, rec)
}

// flush writes the queries no answer came for.
func (p *dnsPairs) flush(s *source, b *event.Batch) {
	n := 0
	for _, q := range p.queries {
		if !q.TS.IsZero() {
			b.DNS = append(b.DNS, q)
			n++
		}
	}
	s.rep.Rows += int64(n)
	p.queries, p.waiting = p.queries[:0], nil
}
