// Package store defines how dwell keeps telemetry: the Writer and Reader
// contracts every backend implements, the schema of the tables (named after
// Zeek's logs, with Zeek's field names), and the ingest ledger that makes
// ingest idempotent.
//
// Backends live in sub-packages (duckdb, clickhouse) and must pass the
// conformance suite in storetest. Only internal/app chooses a backend; every
// other package sees these interfaces.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Writer appends telemetry and remembers how far each input was read.
//
// Write is called from one goroutine at a time; a backend may assume so. The
// batch is owned by the caller again when Write returns, so a backend copies
// what it keeps.
type Writer interface {
	// Write stores every record of b and the progress b carries as one
	// unit: after a crash, either all of it is stored or none of it, so a
	// resumed ingest neither loses nor doubles rows.
	Write(ctx context.Context, b *event.Batch) error
	// Inputs returns the stored progress of inputs whose ID is id or whose
	// last path is path (a growing file shorter than event.HeadSize changes
	// its ID as it grows; the path finds it again).
	Inputs(ctx context.Context, id event.InputID, path string) ([]event.Progress, error)
	// DeleteSensor removes every record of a sensor (quarantined ones
	// too), its part of the intel summary and the progress of its inputs
	// (read again, they are stored again), and returns how many records
	// it removed. The sightings are the retro-hunt's to redo.
	DeleteSensor(ctx context.Context, sensor string) (int64, error)
}

// Reader answers questions about stored telemetry.
//
// Methods may be called from many goroutines at once.
type Reader interface {
	// Query runs one read-only SQL statement written by an analyst. Any
	// statement that could change the store or touch files is refused with
	// an error wrapping ErrReadOnly, and one that reads StateTable with an
	// error wrapping ErrState.
	Query(ctx context.Context, sql string) (Rows, error)
	// Count returns the number of stored records of kind k.
	Count(ctx context.Context, k event.Kind) (int64, error)
	// Ledger returns the progress of every input ever ingested, by path.
	Ledger(ctx context.Context) ([]event.Progress, error)
	// Analytics are the aggregate queries detectors use.
	Analytics
	// IntelReader reads indicators, sightings and intel source state.
	IntelReader
}

// Store is a backend: both contracts plus Close.
type Store interface {
	Writer
	IntelWriter
	Reader
	// Backend names the backend ("duckdb", "clickhouse") for messages.
	Backend() string
	// Close flushes and releases the store; it must be called once.
	Close() error
}

// Rows is the result of Query, read one row at a time as with database/sql.
type Rows interface {
	// Columns returns the result's column names.
	Columns() []string
	// Next advances to the next row; false at the end or on error.
	Next() bool
	// Values returns the current row. The slice is reused by Next.
	// Values are nil, bool, int64, uint64, float64, string, []byte,
	// time.Time or []any.
	Values() []any
	// Err returns the error that ended iteration, if any.
	Err() error
	// Close releases the result.
	Close() error
}

// InUseError says that another process holds the store (DuckDB lets one
// process write, or several read, at a time). PID is that process's, 0
// when the backend does not say.
type InUseError struct {
	Path string
	PID  int
}

func (e *InUseError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("store %s is in use by process %d", e.Path, e.PID)
	}
	return fmt.Sprintf("store %s is in use by another process", e.Path)
}

// ErrReadOnly is wrapped by errors from Reader.Query for statements that
// are not read-only queries.
var ErrReadOnly = errors.New("only read-only queries (SELECT, EXPLAIN, DESCRIBE, SHOW) are allowed")

// ErrOutOfMemory is matched (errors.Is) by errors of queries that ran out
// of the store's memory (DuckDB's memory_limit): the same query may pass
// when it has the memory to itself.
var ErrOutOfMemory = errors.New("the store ran out of memory")

// StateTable is the table where dwell keeps its own state: the last
// hunt's incidents, their triage and notes, what alerts were sent, intel
// cursors. It holds TLP:RED incidents whole, so analysts' SQL
// (Reader.Query) never reads it: incidents are read through the commands
// and the console, which apply TLP need-to-know (docs/console.md).
const StateTable = "dwell_meta"

// ErrState is wrapped by errors from Reader.Query for statements that
// would read StateTable (or, on ClickHouse, the server's logs of the
// statements that wrote it).
var ErrState = errors.New("dwell's own state (" + StateTable + ": hunts, triage, notes) is not readable by SQL: " +
	"read incidents with dwell incidents or in the console, which apply TLP need-to-know")

// SkipComments returns an analyst's SQL after its leading blanks and
// comments (-- to the end of the line, /* to */): where the statement's
// first word is, for the read-only guards of both backends.
func SkipComments(q string) string {
	for {
		q = strings.TrimLeftFunc(q, unicode.IsSpace)
		switch {
		case strings.HasPrefix(q, "--"):
			i := strings.IndexByte(q, '\n')
			if i < 0 {
				return ""
			}
			q = q[i+1:]
		case strings.HasPrefix(q, "/*"):
			i := strings.Index(q, "*/")
			if i < 0 {
				return ""
			}
			q = q[i+2:]
		default:
			return q
		}
	}
}
