// Package duckdb is dwell's embedded store: one DuckDB file (./dwell.db by
// default) holding the tables of store.Schema and the ingest ledger.
//
// Records reach DuckDB through table functions that read the pending batch
// in vectors (no per-value boxing), inside one transaction per batch together
// with the ledger update, so a killed ingest resumes with every row exactly
// once. Analysts' SQL runs through Query, which accepts only read-only
// statements and cannot touch files.
//
// This is the only package that imports the DuckDB driver (cgo); keep it so,
// so that everything else builds and tests without it.
package duckdb

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Options tune Open.
type Options struct {
	// ReadOnly opens an existing store for queries only; DuckDB then
	// refuses every write, whatever the SQL.
	ReadOnly bool
	// MemoryLimit caps DuckDB's memory, e.g. "2GB"; default DuckDB's (80 % of RAM).
	MemoryLimit string
	// Threads caps DuckDB's worker threads; 0 means one per core.
	Threads int
	// CheckpointThreshold is the write-ahead log size that triggers a
	// checkpoint, e.g. "1GB"; default 256MB.
	CheckpointThreshold string
	// AllocatorFlushThreshold is how much freed memory DuckDB's allocator
	// gathers before it gives it back; default "8MB".
	AllocatorFlushThreshold string
	// Notice, when set, is told of long work the opening does before it
	// returns (a migration of the stored tables).
	Notice func(string)
}

// Store is a DuckDB-backed store.Store.
type Store struct {
	path   string
	db     *sql.DB
	schema *store.Schema
	intel  *store.IntelSchema
	ro     bool
	notice func(string) // Options.Notice, never nil

	// The writer's connection, its table functions and their pending rows;
	// Write is called from one goroutine at a time, mu makes sure of it. A
	// writer's match holds mu too: it names rows by rowid, which writes
	// change (retrohunt.go).
	mu     sync.Mutex
	wconn  *sql.Conn
	scans  *scans
	iscans *intelScans
	// The summary's last batch number, the last one compacted into
	// obs_value, and the daily rows written since (intel.go).
	seq, merged int64
	unmerged    int
	// merging is a compaction under way (nil: none), as dwell_meta
	// records it (mergingKey).
	merging *merging
	// compactChunk bounds the rows compact reads at a time
	// (defaultCompactChunk when 0).
	compactChunk int
	// matchUncompacted makes MatchIndicators read the daily rows not
	// compacted yet instead of compacting them, as a reader does (tests).
	matchUncompacted bool
	// failPiece, when set (tests), is asked before each compaction
	// piece commits: an error cuts the compaction short there.
	failPiece func(piece int64) error
	// The retro-hunt's prepared statements and what it knows of the
	// summary and the indicators (retrohunt.go).
	stmts     stmtCache
	matchMu   sync.Mutex
	matchSt   *matchState
	matchInds map[int64]matchedIndicator // by rowid
	// matchPause runs between a match's joins and its reading the rows
	// they name; maxBitSpan replaces the constant (tests).
	matchPause func()
	maxBitSpan int64
	// flowWrites counts the writes that changed the flow table; the
	// flow sessions stitched for an earlier count are stale (sessions.go).
	flowWrites atomic.Uint64
	sessions   sessionCache
	// Analysts' queries (query.go): the configuration locked before the
	// first, and the names of DuckDB's table functions.
	lockOnce sync.Once
	lockErr  error
	tablesMu sync.Mutex
	tables   map[string]bool
}

var (
	_ store.Store = (*Store)(nil)
)

// Open opens (and creates, unless read-only) the store at path. ":memory:"
// opens a store that lives in memory only, for tests.
func Open(ctx context.Context, path string, opt Options) (*Store, error) {
	if opt.ReadOnly && path != ":memory:" {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("no store at %s (run `dwell ingest` first): %w", path, err)
		}
	}
	q := url.Values{}
	if opt.ReadOnly {
		q.Set("access_mode", "READ_ONLY")
	}
	// No network, no extension downloads, no file access from SQL: the
	// store reads and writes its own file only.
	q.Set("autoinstall_known_extensions", "false")
	q.Set("autoload_known_extensions", "false")
	q.Set("enable_external_access", "false")
	// DuckDB checkpoints when its write-ahead log passes this size; its
	// default (16 MB) rewrites the growing tables every few batches, which
	// halved ingest speed on many small files (docs/benchmarks.md).
	q.Set("checkpoint_threshold", cmp.Or(opt.CheckpointThreshold, "256MB"))
	// DuckDB's allocator gives freed memory back only after a task whose
	// peak allocation passed allocator_flush_threshold (128 MB by
	// default), and purges nothing in the background: a month of rotated
	// logs then peaked at 2.05–2.35 GB resident under a 768MB
	// memory_limit. Flushing at 8 MB with the background thread on, it
	// peaked at 1.60–1.92 GB at the same speed (docs/benchmarks.md).
	q.Set("allocator_flush_threshold", cmp.Or(opt.AllocatorFlushThreshold, "8MB"))
	q.Set("allocator_background_threads", "true")
	if opt.MemoryLimit != "" {
		q.Set("memory_limit", opt.MemoryLimit)
	}
	if opt.Threads > 0 {
		q.Set("threads", fmt.Sprint(opt.Threads))
	}
	dsn := path
	if path == ":memory:" {
		dsn = ""
	}
	connector, err := duckdb.NewConnector(dsn+"?"+q.Encode(), nil)
	if err != nil {
		return nil, openError(path, err)
	}
	s := &Store{path: path, db: sql.OpenDB(connector), schema: store.NewSchema(), intel: store.NewIntelSchema(), ro: opt.ReadOnly, notice: opt.Notice}
	if s.notice == nil {
		s.notice = func(string) {}
	}
	if err := s.db.PingContext(ctx); err != nil {
		_ = s.db.Close()
		return nil, openError(path, err)
	}
	if err := s.migrate(ctx); err != nil {
		_ = s.db.Close()
		return nil, err
	}
	if !opt.ReadOnly {
		if err := s.prepareWriter(ctx); err != nil {
			_ = s.db.Close()
			return nil, err
		}
		if err := s.runBackfill(ctx); err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("store %s: building the intel summary of stored records: %w", path, err)
		}
	}
	return s, nil
}

// readOnlyError is what writing to a store opened read-only returns.
func (s *Store) readOnlyError() error { return fmt.Errorf("store %s is open read-only", s.path) }

// openError makes DuckDB's refusal to lock a file a store.InUseError
// with the holder's process id, which DuckDB's message gives ("Conflicting
// lock is held in /usr/bin/dwell (PID 1234)"); its advice (a CLI flag) is
// not for dwell's users.
func openError(path string, err error) error {
	msg := err.Error()
	if strings.Contains(msg, "Could not set lock") || strings.Contains(msg, "Conflicting lock") {
		e := &store.InUseError{Path: path}
		if _, rest, ok := strings.Cut(msg, "(PID "); ok {
			n := 0
			for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
				n++
			}
			e.PID, _ = strconv.Atoi(rest[:n])
		}
		return e
	}
	return fmt.Errorf("opening store %s: %w", path, err)
}

// Backend implements store.Store.
func (s *Store) Backend() string { return "duckdb" }

// Path returns the store's file.
func (s *Store) Path() string { return s.path }

// Close implements store.Store. It checkpoints, so the file is compact and
// complete without its write-ahead log.
func (s *Store) Close() error {
	var errs []error
	if s.wconn != nil {
		s.mu.Lock()
		if err := s.compact(context.Background()); err != nil {
			errs = append(errs, err)
		}
		s.mu.Unlock()
		if _, err := s.wconn.ExecContext(context.Background(), "CHECKPOINT"); err != nil {
			errs = append(errs, fmt.Errorf("checkpointing: %w", err))
		}
		errs = append(errs, s.wconn.Close())
	}
	errs = append(errs, s.stmts.close(), s.db.Close())
	return errors.Join(errs...)
}

// Count implements store.Reader.
func (s *Store) Count(ctx context.Context, k event.Kind) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM "+k.String()).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting %s: %w", k, err)
	}
	return n, nil
}

// rawConn runs f on the driver connection of c.
func rawConn(c *sql.Conn, f func(*duckdb.Conn) error) error {
	return c.Raw(func(dc any) error {
		conn, ok := dc.(*duckdb.Conn)
		if !ok {
			return fmt.Errorf("BUG: unexpected driver connection %T", dc)
		}
		return f(conn)
	})
}

var _ driver.Conn = (*duckdb.Conn)(nil)
