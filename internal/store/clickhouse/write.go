package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Exactly-once without transactions. Each Write has a number (a fresh row
// version, so numbers increase across processes). Before its rows, the
// number is stored in dwell_meta as write_pending; every row carries it in
// dwell_batch; after the rows and the ledger, write_done. A store opened
// for writing whose write_pending is past write_done deletes that write's
// rows before its own first Write: the ledger was not updated, so the
// resumed ingest reads them again. Only a writer of records does this, not
// a store opened to keep state (dwell hunt saving its incidents while an
// ingest runs must not take that ingest's write for an unfinished one).
//
// An insert whose answer was lost (a timeout, a reset connection) may have
// been stored or not: before sending it again, the rows of its batch in
// its table are counted, and a partial insert (one of several blocks, or
// one shard of two) is deleted first. A Write blocks until ClickHouse has
// stored its rows on every shard, so a slow cluster slows ingest down
// instead of filling memory.
//
// One writer per database at a time: a second would take the first's
// pending write for a crashed one.

const (
	metaPending = "write_pending"
	metaDone    = "write_done"
)

// recordTables are the tables that carry dwell_batch.
func (s *Store) recordTables() []string {
	out := make([]string, 0, 8)
	for _, t := range s.schema.Tables() {
		out = append(out, t.Name)
	}
	return append(out, s.intel.Daily.Name())
}

// recover removes the rows of a write that did not finish.
func (s *Store) recover(ctx context.Context) error {
	pending, err := s.meta(ctx, metaPending)
	if err != nil {
		return err
	}
	done, err := s.meta(ctx, metaDone)
	if err != nil {
		return err
	}
	if pending == "" || pending == done {
		return nil
	}
	n, err := strconv.ParseUint(pending, 10, 64)
	if err != nil {
		return fmt.Errorf("bad %s %q in dwell_meta", metaPending, pending)
	}
	for _, t := range s.recordTables() {
		if err := s.deleteBatch(ctx, t, n); err != nil {
			return fmt.Errorf("removing the rows of an unfinished write: %w", err)
		}
	}
	return s.setMeta(ctx, metaDone, pending)
}

// deleteBatch deletes the rows of write n from table t.
func (s *Store) deleteBatch(ctx context.Context, t string, n uint64) error {
	return s.deleteWhere(ctx, t, fmt.Sprintf("%s = %d", batchColumn, n))
}

// deleteWhere deletes the rows of table t that cond keeps on every node
// and waits until ClickHouse has done so.
func (s *Store) deleteWhere(ctx context.Context, t, cond string) error {
	for _, nd := range s.c.nodes {
		q := fmt.Sprintf("ALTER TABLE %s DELETE WHERE %s", quote(s.localName(t)), cond)
		if err := s.c.exec(ctx, nd, q, nil); err != nil {
			return fmt.Errorf("%s on %s: %w", q, nd.addr, err)
		}
	}
	for _, nd := range s.c.nodes {
		for wait := 10 * time.Millisecond; ; wait = min(2*wait, time.Second) {
			rc, err := s.c.retry(ctx, request{node: nd, query: "SELECT count() FROM system.mutations WHERE is_done = 0 AND database = " +
				quoteString(s.c.database) + " AND table = " + quoteString(s.localName(t)) + " FORMAT TabSeparated"})
			if err != nil {
				return err
			}
			r := newTSVReader(rc)
			left := int64(0)
			if r.Next() {
				left = r.Int(0)
			}
			err = errors.Join(r.Err(), r.Close())
			if err != nil {
				return err
			}
			if left == 0 {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
	}
	return nil
}

// insert sends the insert q of rows already encoded as RowBinary into
// table t as part of write n, again after a transient failure without
// doubling rows.
func (s *Store) insert(ctx context.Context, t, q string, body []byte, rows int, n uint64) error {
	for attempt := 1; ; attempt++ {
		err := s.c.insertOnce(ctx, s.c.nodes[0], q, body, syncInsert)
		if err == nil {
			return nil
		}
		if !retryable(err) || attempt > s.c.retries {
			return fmt.Errorf("inserting into %s: %w", t, err)
		}
		if err := backoff(ctx, attempt); err != nil {
			return err
		}
		// Did it land, in whole or in part?
		v, cerr := s.c.scalar(ctx, fmt.Sprintf("SELECT count() FROM %s WHERE %s = %d", quote(t), batchColumn, n))
		if cerr != nil {
			continue // the server is still away: try again
		}
		switch stored, _ := strconv.Atoi(v); {
		case stored == rows:
			return nil
		case stored > 0:
			if err := s.deleteBatch(ctx, t, n); err != nil {
				return fmt.Errorf("inserting into %s: removing a partial insert: %w", t, err)
			}
		}
	}
}

// writeTable encodes and inserts one table's rows of a write.
func writeTable[R any](ctx context.Context, s *Store, e *encoder[R], rows []R, n uint64) error {
	if len(rows) == 0 {
		return nil
	}
	body, err := e.encode(rows, n)
	if err != nil {
		return err
	}
	return s.insert(ctx, e.table.Name(), e.insert, body, len(rows), n)
}

// Write implements store.Writer.
func (s *Store) Write(ctx context.Context, b *event.Batch) error {
	if s.ro {
		return s.readOnlyError()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.recovered {
		if err := s.recover(ctx); err != nil {
			return fmt.Errorf("store %s: %w", s.url, err)
		}
		s.recovered = true
	}
	// The intel summary is computed while the records are sent.
	summary := make(chan []store.DailyRow, 1)
	go func() { summary <- store.Summarize(b) }()
	daily := func() []store.DailyRow { return <-summary }
	n := s.version()
	records := b.Len() > 0 || len(b.Quarantine) > 0
	if records {
		if err := s.setMeta(ctx, metaPending, fmt.Sprint(n)); err != nil {
			daily()
			return err
		}
	}
	e := s.enc
	for _, err := range []error{
		writeTable(ctx, s, e.conn, b.Conns, n),
		writeTable(ctx, s, e.openConn, b.OpenConns, n),
		writeTable(ctx, s, e.dns, b.DNS, n),
		writeTable(ctx, s, e.http, b.HTTP, n),
		writeTable(ctx, s, e.tls, b.TLS, n),
		writeTable(ctx, s, e.x509, b.X509, n),
		writeTable(ctx, s, e.files, b.Files, n),
		writeTable(ctx, s, e.flow, b.Flows, n),
		writeTable(ctx, s, e.winlog, b.Host, n),
		writeTable(ctx, s, e.alert, b.Alerts, n),
		writeTable(ctx, s, e.held, b.Quarantine, n),
	} {
		if err != nil {
			daily() // wait for it: b is the caller's again after return
			return err
		}
	}
	rows := daily()
	for i := range rows {
		rows[i].Seq = int64(n) //nolint:gosec // G115: versions are below 2^63
	}
	if err := writeTable(ctx, s, e.daily, rows, n); err != nil {
		return err
	}
	if err := s.saveProgress(ctx, b.Progress); err != nil {
		return err
	}
	if records {
		return s.setMeta(ctx, metaDone, fmt.Sprint(n))
	}
	return nil
}

// ledgerCols are the ledger's columns but deleted and version.
var ledgerCols = []string{"id", "head_len", "path", "sensor", "format", "header", "offset", "line", "check", "size", "rows", "bad", "complete", "updated"}

// saveProgress appends the ledger entries of a batch (the last of each
// input) and tombstones for the entries they replace.
func (s *Store) saveProgress(ctx context.Context, progress []event.Progress) error {
	if len(progress) == 0 {
		return nil
	}
	last := make(map[event.InputID]int, len(progress))
	for i, p := range progress {
		last[p.ID] = i
	}
	var values strings.Builder
	row := func(p event.Progress, deleted int, v uint64) {
		updated := p.Updated
		if updated.IsZero() {
			updated = time.Now().UTC()
		}
		complete := 0
		if p.Complete {
			complete = 1
		}
		if values.Len() > 0 {
			values.WriteString(", ")
		}
		fmt.Fprintf(&values, "(%s, %d, %s, %s, %s, %s, %d, %d, %s, %d, %d, %d, %d, %d, %d, %d)",
			quoteString(string(p.ID)), p.HeadLen, quoteString(p.Path), quoteString(p.Sensor), quoteString(p.Format), quoteString(p.Header),
			p.Offset, p.Line, quoteString(p.Check), p.Size, p.Rows, p.Bad, complete, updated.UnixMicro(), deleted, v)
	}
	for i, p := range progress {
		if last[p.ID] != i {
			continue
		}
		v := s.version()
		if p.Replaces != "" && p.Replaces != p.ID {
			row(event.Progress{ID: p.Replaces, Updated: p.Updated}, 1, v)
			v = s.version()
		}
		row(p, 0, v)
	}
	q := "INSERT INTO ingest_ledger (" + strings.Join(append(ledgerCols, "deleted", "version"), ", ") + ") VALUES " + values.String()
	if err := s.c.exec(ctx, s.c.nodes[0], q, syncInsert); err != nil {
		return fmt.Errorf("updating the ingest ledger: %w", err)
	}
	return nil
}

// latest returns a query of the newest row of each key of a versioned
// table, with the given columns (aliased v_<column>) and no tombstones.
func latest(table, key string, cols []string, where string) string {
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("v_" + c)
	}
	b.WriteString(" FROM (SELECT ")
	for _, c := range cols {
		if c == key {
			fmt.Fprintf(&b, "%s AS v_%s, ", quote(c), c)
			continue
		}
		fmt.Fprintf(&b, "argMax(%s, version) AS v_%s, ", quote(c), c)
	}
	fmt.Fprintf(&b, "argMax(deleted, version) AS v_deleted FROM %s GROUP BY %s) WHERE v_deleted = 0", table, quote(key))
	if where != "" {
		b.WriteString(" AND (" + where + ")")
	}
	return b.String()
}

func (s *Store) readLedger(ctx context.Context, where, order string) ([]event.Progress, error) {
	q := latest("ingest_ledger", "id", ledgerCols, where)
	if order != "" {
		q += " ORDER BY " + order
	}
	var out []event.Progress
	err := s.c.each(ctx, "reading the ingest ledger", q, func(r *tsvReader) error {
		p := event.Progress{ID: event.InputID(r.Field(0)), HeadLen: int(r.Int(1)), Path: r.Field(2), Sensor: r.Field(3), Format: r.Field(4),
			Header: r.Field(5), Offset: r.Int(6), Line: r.Int(7), Check: r.Field(8), Size: r.Int(9), Rows: r.Int(10), Bad: r.Int(11),
			Complete: r.Int(12) == 1, Updated: r.Time(13)}
		out = append(out, p)
		return nil
	})
	return out, err
}

// DeleteSensor implements store.Writer: the records, quarantined ones and
// the summary rows go by mutation on every node, the ledger entries by
// tombstones.
func (s *Store) DeleteSensor(ctx context.Context, sensor string) (int64, error) {
	if s.ro {
		return 0, s.readOnlyError()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sensor, _ = event.EscapeText(sensor) // as stored
	cond := "ifNull(sensor, '') = " + quoteString(sensor)
	var n int64
	for _, t := range s.schema.Tables() {
		if t.Kind != 0 {
			v, err := s.c.scalar(ctx, "SELECT count() FROM "+quote(t.Name)+" WHERE "+cond)
			if err != nil {
				return 0, fmt.Errorf("deleting sensor %s: %w", sensor, err)
			}
			k, _ := strconv.ParseInt(v, 10, 64)
			n += k
		}
		if err := s.deleteWhere(ctx, t.Name, cond); err != nil {
			return 0, fmt.Errorf("deleting sensor %s from %s: %w", sensor, t.Name, err)
		}
	}
	if err := s.deleteWhere(ctx, s.intel.Daily.Name(), "sensor = "+quoteString(sensor)); err != nil {
		return 0, fmt.Errorf("deleting sensor %s from the summary: %w", sensor, err)
	}
	inputs, err := s.readLedger(ctx, "v_sensor = "+quoteString(sensor), "")
	if err != nil {
		return 0, err
	}
	var tombs []event.Progress
	for _, p := range inputs {
		tombs = append(tombs, event.Progress{ID: p.ID, Updated: time.Now().UTC()})
	}
	if err := s.tombstones(ctx, tombs); err != nil {
		return 0, err
	}
	return n, nil
}

// tombstones marks ledger entries deleted.
func (s *Store) tombstones(ctx context.Context, ps []event.Progress) error {
	if len(ps) == 0 {
		return nil
	}
	var values strings.Builder
	for i, p := range ps {
		if i > 0 {
			values.WriteString(", ")
		}
		fmt.Fprintf(&values, "(%s, 0, '', '', '', '', 0, 0, '', 0, 0, 0, 0, %d, 1, %d)", quoteString(string(p.ID)), p.Updated.UnixMicro(), s.version())
	}
	q := "INSERT INTO ingest_ledger (" + strings.Join(append(ledgerCols, "deleted", "version"), ", ") + ") VALUES " + values.String()
	if err := s.c.exec(ctx, s.c.nodes[0], q, syncInsert); err != nil {
		return fmt.Errorf("updating the ingest ledger: %w", err)
	}
	return nil
}

// Inputs implements store.Writer.
func (s *Store) Inputs(ctx context.Context, id event.InputID, path string) ([]event.Progress, error) {
	return s.readLedger(ctx, "v_id = "+quoteString(string(id))+" OR v_path = "+quoteString(path), "v_id")
}

// Ledger implements store.Reader.
func (s *Store) Ledger(ctx context.Context) ([]event.Progress, error) {
	return s.readLedger(ctx, "", "v_path, v_id")
}
