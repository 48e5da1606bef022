package clickhouse

import (
	"context"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Alerts implements store.Analytics.
func (s *Store) Alerts(ctx context.Context, w store.Window, fn func(*event.Alert) error) error {
	q := "SELECT " + store.AlertColumns + " FROM alert WHERE " + where(w, "ts") +
		" ORDER BY ifNull(sensor, ''), ifNull(src_addr, ''), ifNull(dst_addr, ''), ifNull(signature_id, 0), ts, ifNull(source_file, ''), ifNull(source_line, 0)"
	return s.c.each(ctx, "alerts", q, func(r *tsvReader) error {
		a := event.Alert{TS: r.Time(0), FlowID: r.Field(1), SrcIP: r.Addr(2), SrcPort: uint16(r.Int(3)), DstIP: r.Addr(4), //nolint:gosec // G115: UInt16 columns
			DstPort: uint16(r.Int(5)), Proto: r.Field(6), AppProto: r.Field(7), Action: r.Field(8), Signature: r.Field(11), //nolint:gosec // G115: as above
			Category: r.Field(12), CommunityID: r.Field(15), Src: event.Source{Sensor: r.Field(16), File: r.Field(17), Line: r.Int(18)}}
		a.SignatureID, a.Rev, a.Severity = r.OptCount(9), r.OptCount(10), r.OptCount(13)
		attack, err := r.Strings(14)
		if err != nil {
			return err
		}
		if len(attack) > 0 {
			a.Attack = attack
		}
		return fn(&a)
	})
}

// OptCount reads a nullable count column.
func (r *tsvReader) OptCount(i int) event.Opt[uint64] {
	if r.Null(i) {
		return event.Opt[uint64]{}
	}
	return event.Some(uint64(r.Int(i))) //nolint:gosec // G115: UInt64 columns hold what was written
}
