package duckdb

import (
	"context"
	"database/sql"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Alerts implements store.Analytics.
func (s *Store) Alerts(ctx context.Context, w store.Window, fn func(*event.Alert) error) error {
	cond, args := where(w, "")
	q := "SELECT " + store.AlertColumns + " FROM alert WHERE " + cond +
		" ORDER BY coalesce(sensor, ''), coalesce(src_addr, ''), coalesce(dst_addr, ''), coalesce(signature_id, 0), ts, source_file, source_line"
	return s.each(ctx, "alerts", q, args, func(r *sql.Rows) error {
		var a event.Alert
		var flow, src, dst, proto, app, action, sig, cat, cid, sensor, file sql.NullString
		var sp, dp, sid, rev, sev, line sql.NullInt64
		var attack any
		if err := r.Scan(&a.TS, &flow, &src, &sp, &dst, &dp, &proto, &app, &action, &sid, &rev, &sig, &cat, &sev, &attack, &cid,
			&sensor, &file, &line); err != nil {
			return err
		}
		a.TS = a.TS.UTC()
		a.FlowID, a.SrcIP, a.DstIP, a.Proto, a.AppProto, a.Action = flow.String, addr(src), addr(dst), proto.String, app.String, action.String
		a.SrcPort, a.DstPort = uint16(sp.Int64), uint16(dp.Int64) //nolint:gosec // G115: USMALLINT columns
		a.Signature, a.Category, a.CommunityID = sig.String, cat.String, cid.String
		a.SignatureID, a.Rev, a.Severity = optCount(sid), optCount(rev), optCount(sev)
		a.Attack = strs(attack)
		a.Src = event.Source{Sensor: sensor.String, File: file.String, Line: line.Int64}
		return fn(&a)
	})
}

func optCount(v sql.NullInt64) event.Opt[uint64] {
	if !v.Valid {
		return event.Opt[uint64]{}
	}
	return event.Some(uint64(v.Int64)) //nolint:gosec // G115: UBIGINT columns hold what was written
}
