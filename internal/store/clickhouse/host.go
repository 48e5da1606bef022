package clickhouse

import (
	"context"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// HostEvents implements store.Analytics.
func (s *Store) HostEvents(ctx context.Context, w store.Window, f store.HostFilter, fn func(*event.HostEvent) error) error {
	cond := where(w, "ts")
	if len(f.EventIDs) > 0 {
		cond += " AND ifNull(event_id, 0) IN (" + f.IDList() + ")"
	}
	if !f.Carved {
		cond += " AND ifNull(carved, 0) = 0"
	}
	q := "SELECT " + store.HostColumns() + " FROM winlog WHERE " + cond +
		" ORDER BY ifNull(computer, ''), ts, ifNull(record_id, 0), ifNull(source_file, ''), ifNull(source_line, 0)"
	return s.c.each(ctx, "host events", q, func(r *tsvReader) error {
		e := event.HostEvent{TS: r.Time(0), Channel: r.Field(1), Provider: r.Field(2), EventID: uint32(r.Int(3)), Computer: r.Field(4), //nolint:gosec // G115: UInt32 column
			RecordID: uint64(r.Int(5)), Level: uint8(r.Int(6)), Task: uint16(r.Int(7)), Opcode: uint8(r.Int(8)), Keywords: store.ParseKeywords(r.Field(9)), //nolint:gosec // G115: columns of these types
			UserID: r.Field(10), ProcessID: uint32(r.Int(11)), ThreadID: uint32(r.Int(12)), Carved: r.Int(15) != 0, //nolint:gosec // G115: as above
			Src: event.Source{Sensor: r.Field(16), File: r.Field(17), Line: r.Int(18)}}
		ns, err := r.Strings(13)
		if err != nil {
			return err
		}
		vs, err := r.Strings(14)
		if err != nil {
			return err
		}
		e.Fields = make([]event.Field, min(len(ns), len(vs)))
		for i := range e.Fields {
			e.Fields[i] = event.Field{Name: ns[i], Value: vs[i]}
		}
		return fn(&e)
	})
}
