package store

import (
	"net/netip"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

func alertTable() *Table[event.Alert] {
	type R = event.Alert
	cols := []Column[R]{
		timeCol("ts", "", "when the alert fired (UTC)", func(r *R) (time.Time, bool) { return r.TS, true }),
		strCol("flow_id", "", "the IDS's flow id, shared by the flow's other events", func(r *R) string { return r.FlowID }),
		addrCol("src_addr", "", "source address of the packet that matched", func(r *R) netip.Addr { return r.SrcIP }),
		portCol("src_port", "", "its source port", func(r *R) (uint16, bool) { return some(r.SrcPort) }),
		addrCol("dst_addr", "", "destination address", func(r *R) netip.Addr { return r.DstIP }),
		portCol("dst_port", "", "destination port", func(r *R) (uint16, bool) { return some(r.DstPort) }),
		strCol("proto", "", "transport protocol: tcp, udp, icmp, ...", func(r *R) string { return r.Proto }),
		strCol("app_proto", "", "application protocol the IDS saw", func(r *R) string { return r.AppProto }),
		strCol("action", "", "allowed or blocked", func(r *R) string { return r.Action }),
		countCol("signature_id", "", "the rule's sid", func(r *R) event.Opt[uint64] { return r.SignatureID }),
		countCol("rev", "", "the rule's revision", func(r *R) event.Opt[uint64] { return r.Rev }),
		strCol("signature", "", "the rule's message", func(r *R) string { return r.Signature }),
		strCol("category", "", "the rule's classification", func(r *R) string { return r.Category }),
		countCol("severity", "", "1 (highest) to 4", func(r *R) event.Opt[uint64] { return r.Severity }),
		strsCol("attack", "", "ATT&CK technique ids from the rule's metadata", func(r *R) []string { return r.Attack }),
		strCol("community_id", "", "Community ID flow hash, when the IDS wrote it", func(r *R) string { return r.CommunityID }),
	}
	src := func(r *R) *event.Source { return &r.Src }
	return &Table[R]{Kind: event.KindAlert, Doc: "One row per IDS alert (Suricata's EVE alert events).",
		Columns: append(cols, provenance(src)...), Rows: func(b *event.Batch) []R { return b.Alerts }, Source: src,
		Time: func(r *R) time.Time { return r.TS }}
}

// AlertColumns are the alert columns Alerts reads, in the order the
// backends scan them.
const AlertColumns = "ts, flow_id, src_addr, src_port, dst_addr, dst_port, proto, app_proto, action, signature_id, rev, signature, " +
	"category, severity, attack, community_id, sensor, source_file, source_line"
