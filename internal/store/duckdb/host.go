package duckdb

import (
	"context"
	"database/sql"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// HostEvents implements store.Analytics.
func (s *Store) HostEvents(ctx context.Context, w store.Window, f store.HostFilter, fn func(*event.HostEvent) error) error {
	cond, args := where(w, "")
	if len(f.EventIDs) > 0 {
		cond += " AND event_id IN (" + f.IDList() + ")"
	}
	if !f.Carved {
		cond += " AND NOT coalesce(carved, false)"
	}
	q := "SELECT " + store.HostColumns() + " FROM winlog WHERE " + cond +
		" ORDER BY coalesce(computer, ''), ts, record_id, source_file, source_line"
	return s.each(ctx, "host events", q, args, func(r *sql.Rows) error {
		var e event.HostEvent
		var ch, prov, comp, kw, sid, sensor, file sql.NullString
		var id, rec, level, task, op, pid, tid, line sql.NullInt64
		var names, values any
		var carved sql.NullBool
		if err := r.Scan(&e.TS, &ch, &prov, &id, &comp, &rec, &level, &task, &op, &kw, &sid, &pid, &tid, &names, &values, &carved,
			&sensor, &file, &line); err != nil {
			return err
		}
		e.TS = e.TS.UTC()
		e.Channel, e.Provider, e.Computer, e.UserID = ch.String, prov.String, comp.String, sid.String
		e.EventID, e.RecordID = uint32(id.Int64), uint64(rec.Int64)                         //nolint:gosec // G115: columns written from these types
		e.Level, e.Task, e.Opcode = uint8(level.Int64), uint16(task.Int64), uint8(op.Int64) //nolint:gosec // G115: as above
		e.ProcessID, e.ThreadID = uint32(pid.Int64), uint32(tid.Int64)                      //nolint:gosec // G115: as above
		e.Carved = carved.Bool
		e.Keywords = store.ParseKeywords(kw.String)
		e.Src = event.Source{Sensor: sensor.String, File: file.String, Line: line.Int64}
		ns, vs := strs(names), strs(values)
		e.Fields = make([]event.Field, min(len(ns), len(vs)))
		for i := range e.Fields {
			e.Fields[i] = event.Field{Name: ns[i], Value: vs[i]}
		}
		return fn(&e)
	})
}
