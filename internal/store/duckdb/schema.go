package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/dwell-nsm/dwell/internal/store"
)

// schemaVersion is the version of the on-disk layout this code writes.
// Raise it with a new entry in migrations whenever the layout changes.
const schemaVersion = 9

// sqlType maps a store column type to DuckDB's.
func sqlType(t store.Type) string {
	switch t {
	case store.TypeTime:
		return "TIMESTAMP"
	case store.TypeString, store.TypeAddr:
		return "VARCHAR"
	case store.TypePort:
		return "USMALLINT"
	case store.TypeCount:
		return "UBIGINT"
	case store.TypeInterval:
		return "DOUBLE"
	case store.TypeBool:
		return "BOOLEAN"
	case store.TypeStrings:
		return "VARCHAR[]"
	case store.TypeIntervals:
		return "DOUBLE[]"
	}
	panic(fmt.Sprintf("BUG: no DuckDB type for %v", t))
}

// quote quotes an identifier; Zeek names such as "AA" and "TTLs" keep their case.
func quote(id string) string { return `"` + strings.ReplaceAll(id, `"`, `""`) + `"` }

// createTable returns the DDL of a table: of its stored form for a coded
// table (layout.go), whose coded columns are ENUMs and whose other values
// come last.
func createTable(t store.TableInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s (", physical(t))
	for i, c := range t.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		typ := sqlType(c.Type)
		if len(c.Codes) > 0 {
			typ = enumType(c.Codes)
		}
		fmt.Fprintf(&b, "%s %s", quote(c.Name), typ)
		if c.Raw {
			b.WriteString(" USING COMPRESSION uncompressed")
		}
	}
	for _, c := range t.Columns {
		if len(c.Codes) > 0 {
			fmt.Fprintf(&b, ", %s VARCHAR", quote(otherName(c.Name)))
		}
	}
	if len(t.Key) > 0 {
		b.WriteString(", PRIMARY KEY (")
		for i, k := range t.Key {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quote(k))
		}
		b.WriteString(")")
	}
	b.WriteString(")")
	return b.String()
}

const ledgerDDL = `CREATE TABLE IF NOT EXISTS ingest_ledger (
	id VARCHAR PRIMARY KEY,
	head_len INTEGER NOT NULL,
	path VARCHAR NOT NULL,
	sensor VARCHAR,
	format VARCHAR,
	header VARCHAR,
	"offset" UBIGINT NOT NULL,
	line UBIGINT NOT NULL,
	"check" VARCHAR,
	size UBIGINT,
	rows UBIGINT NOT NULL,
	bad UBIGINT NOT NULL,
	complete BOOLEAN NOT NULL,
	updated TIMESTAMP
)`

// migrations[i] brings a store from version i to i+1.
func (s *Store) migrations() []func(context.Context, *sql.Tx) error {
	return []func(context.Context, *sql.Tx) error{
		func(ctx context.Context, tx *sql.Tx) error {
			stmts := []string{ledgerDDL, `CREATE INDEX IF NOT EXISTS ingest_ledger_path ON ingest_ledger (path)`}
			for _, t := range s.schema.Tables() {
				stmts = append(stmts, tableDDL(t)...)
			}
			for _, q := range stmts {
				if _, err := tx.ExecContext(ctx, q); err != nil {
					return fmt.Errorf("%s: %w", q, err)
				}
			}
			return nil
		},
		// 2: threat intelligence and the value summary. Data ingested
		// before has no summary: it is built from the stored records.
		func(ctx context.Context, tx *sql.Tx) error {
			stmts := []string{sightingDDL}
			for _, t := range s.intel.Tables() {
				stmts = append(stmts, createTable(t))
			}
			for _, q := range stmts {
				if _, err := tx.ExecContext(ctx, q); err != nil {
					return fmt.Errorf("%s: %w", q, err)
				}
			}
			return s.backfillSummary(ctx, tx)
		},
		// 3: exported flows (NetFlow, IPFIX).
		func(ctx context.Context, tx *sql.Tx) error {
			q := createTable(s.schema.Flow.Info())
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
			return nil
		},
		// 4: match keys, which retro-hunts join on (retrohunt.go).
		addMatchKeys,
		// 5: records held out of the hunt (ingest's clock screen).
		func(ctx context.Context, tx *sql.Tx) error {
			q := createTable(s.schema.Quarantine.Info())
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
			return nil
		},
		// 6: Windows events (EVTX, JSON exports).
		func(ctx context.Context, tx *sql.Tx) error {
			q := createTable(s.schema.Winlog.Info())
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
			return nil
		},
		// 7: IDS alerts (Suricata's EVE).
		func(ctx context.Context, tx *sql.Tx) error {
			q := createTable(s.schema.Alert.Info())
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
			return nil
		},
		// 8: the HTTP reply's Server header. The column comes last in a
		// store made before; inserts name their columns (write.go).
		func(ctx context.Context, tx *sql.Tx) error {
			q := `ALTER TABLE http ADD COLUMN IF NOT EXISTS server VARCHAR`
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
			return nil
		},
		// 9: closed sets (proto, conn_state) stored as codes, the tables
		// read through views (layout.go).
		s.codeTables,
	}
}

// migrate creates the schema or brings it up to date.
func (s *Store) migrate(ctx context.Context) error {
	version := 0
	if !s.ro {
		if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS dwell_meta (key VARCHAR PRIMARY KEY, value VARCHAR)`); err != nil {
			return fmt.Errorf("creating store metadata: %w", err)
		}
	}
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM dwell_meta WHERE key = 'schema_version'`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("store %s is not a dwell store: %w", s.path, err)
	default:
		if _, err := fmt.Sscan(v, &version); err != nil {
			return fmt.Errorf("store %s has a bad schema version %q", s.path, v)
		}
	}
	if version > schemaVersion {
		return fmt.Errorf("store %s was written by a newer dwell (schema %d; this one knows %d): upgrade dwell", s.path, version, schemaVersion)
	}
	if version == schemaVersion {
		return nil
	}
	if s.ro {
		return fmt.Errorf("store %s has schema %d and needs migrating to %d: open it once for writing (dwell ingest)", s.path, version, schemaVersion)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	for i, m := range s.migrations()[version:] {
		if err := m(ctx, tx); err != nil {
			return fmt.Errorf("migrating store %s to schema %d: %w", s.path, version+i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO dwell_meta VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, fmt.Sprint(schemaVersion)); err != nil {
		return fmt.Errorf("recording schema version: %w", err)
	}
	return tx.Commit()
}
