package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/store"
)

// schemaVersion is the version of the layout this code writes: 2 added
// the match keys (mkey, bkey) of obs_daily and intel_indicator, 3 the
// quarantine table, 4 the winlog table, 5 the alert table, 6 the HTTP
// reply's server header (http.server).
const schemaVersion = 6

// batchColumn numbers the Write that stored a row: a write cut short is
// found and removed by it (write.go). It is not part of store.Schema.
const batchColumn = "dwell_batch"

// sqlType maps a store column type to ClickHouse's (18.16 has no
// DateTime64: times are Int64 microseconds since the Unix epoch, UTC).
func sqlType(c store.ColumnInfo, notNull bool) string {
	var t string
	switch c.Type {
	case store.TypeTime:
		t = "Int64"
	case store.TypeString, store.TypeAddr:
		t = "String"
	case store.TypePort:
		t = "UInt16"
	case store.TypeCount:
		t = "UInt64"
	case store.TypeInterval:
		t = "Float64"
	case store.TypeBool:
		t = "UInt8"
	case store.TypeStrings:
		return "Array(String)" // no Nullable arrays: an empty list is NULL
	case store.TypeIntervals:
		return "Array(Float64)"
	default:
		panic(fmt.Sprintf("BUG: no ClickHouse type for %v", c.Type))
	}
	if notNull {
		return t
	}
	return "Nullable(" + t + ")"
}

// quote quotes an identifier; Zeek names such as "AA" keep their case.
func quote(id string) string { return "`" + strings.ReplaceAll(id, "`", "\\`") + "`" }

// layout is how one table is stored: its engine's keys and its shard key.
type layout struct {
	notNull   []string // columns stored without Nullable (keys)
	partition string
	order     string
	shard     string
	extra     string // columns dwell adds
}

// private is a condition on address text: RFC 1918, shared (100.64/10)
// and unique-local IPv6 space, dwell's default networks.local. (The store
// does not know a site's own networks.local; a shard key only needs to be
// the same for all of a host's records.)
func private(col string) string {
	return "(startsWith(" + col + ", '10.') OR startsWith(" + col + ", '192.168.') OR match(" + col + `, '^172\\.(1[6-9]|2[0-9]|3[01])\\.')` +
		" OR match(" + col + `, '^100\\.(6[4-9]|[7-9][0-9]|1[01][0-9]|12[0-7])\\.') OR match(` + col + `, '^f[cd][0-9a-f]{0,2}:'))`
}

// dayOf is the UTC day number of a microsecond time column.
func dayOf(col string) string { return "intDiv(" + col + ", 86400000000)" }

// layouts gives every table's storage. Records are partitioned by UTC day
// and ordered for the detectors' GROUP BYs (client, then server, then
// time); on a cluster they are sharded by the internal host (the end in
// private address space, else the client), so that a host's traffic, in
// and out, stays on one shard and its aggregates are computed there.
func layouts() map[string]layout {
	orig, resp := "ifNull(id_orig_h, '')", "ifNull(id_resp_h, '')"
	byHost := "cityHash64(multiIf(" + private(orig) + ", " + orig + ", " + private(resp) + ", " + resp + ", " + orig + "))"
	rec := func(order string) layout {
		return layout{notNull: []string{"ts"}, partition: dayOf("ts"), order: order, shard: byHost,
			extra: batchColumn + " UInt64"}
	}
	return map[string]layout{
		"conn":      rec("ifNull(id_orig_h, ''), ifNull(id_resp_h, ''), ts"),
		"open_conn": rec("ifNull(uid, ''), ts"),
		"dns":       rec("ifNull(id_orig_h, ''), ifNull(query, ''), ts"),
		"http":      rec("ifNull(id_orig_h, ''), ifNull(host, ''), ts"),
		"ssl":       rec("ifNull(id_orig_h, ''), ifNull(server_name, ''), ts"),
		"x509":      {notNull: []string{"ts"}, partition: dayOf("ts"), order: "ifNull(fingerprint, ''), ts", shard: "cityHash64(ifNull(fingerprint, ''))", extra: batchColumn + " UInt64"},
		"files":     {notNull: []string{"ts"}, partition: dayOf("ts"), order: "ts", shard: "cityHash64(ifNull(fuid, ''))", extra: batchColumn + " UInt64"},
		"flow":      {notNull: []string{"ts"}, partition: dayOf("ts"), order: "ifNull(dst_addr, ''), ts", shard: "cityHash64(ifNull(dst_addr, ''))", extra: batchColumn + " UInt64"},
		// A host's events stay on one shard: the host detections read
		// one host's sequence of events.
		"winlog": {notNull: []string{"ts"}, partition: dayOf("ts"), order: "ifNull(computer, ''), ifNull(event_id, 0), ts",
			shard: "cityHash64(ifNull(computer, ''))", extra: batchColumn + " UInt64"},
		"alert": {notNull: []string{"ts"}, partition: dayOf("ts"), order: "ifNull(src_addr, ''), ifNull(signature_id, 0), ts",
			shard: "cityHash64(ifNull(src_addr, ''))", extra: batchColumn + " UInt64"},
		"obs_daily": {notNull: []string{"day", "id", "kind", "value", "log", "sensor", "port"}, partition: dayOf("day"),
			order: "kind, value, day", shard: "id", extra: batchColumn + " UInt64"},
		"intel_indicator": {notNull: []string{"key"}, order: "key", shard: "cityHash64(key)", extra: "version UInt64"},
		// Few rows, read by analysts: by where they were read.
		"quarantine": {order: "ifNull(source_file, ''), ifNull(source_line, 0)", shard: "cityHash64(ifNull(source_file, ''))",
			extra: batchColumn + " UInt64"},
	}
}

// controlDDL are the tables of state, each versioned: the row with the
// highest version of a key wins, so updates are appends and a cluster needs
// no coordination (a key lives on one shard).
var controlDDL = map[string]string{
	"dwell_meta": "(key String, value String, deleted UInt8, version UInt64)",
	"ingest_ledger": `(id String, head_len Int64, path String, sensor String, format String, header String, offset Int64,
		line Int64, check String, size Int64, rows Int64, bad Int64, complete UInt8, updated Int64, deleted UInt8, version UInt64)`,
	"intel_sighting": `(gen UInt64, key String, sensor String, log String, observed String, first Int64, last Int64,
		count Int64, days Int64, peers Array(String))`,
}

var controlOrder = map[string]string{"dwell_meta": "key", "ingest_ledger": "id", "intel_sighting": "gen, key, sensor, log, observed"}

var controlShard = map[string]string{"dwell_meta": "cityHash64(key)", "ingest_ledger": "cityHash64(id)", "intel_sighting": "cityHash64(key)"}

// tableDDL returns the columns of a table described by the store.
func tableDDL(t store.TableInfo, l layout) string {
	var b strings.Builder
	b.WriteString("(")
	for i, c := range t.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		notNull := slices.Contains(l.notNull, c.Name)
		fmt.Fprintf(&b, "%s %s", quote(c.Name), sqlType(c, notNull))
	}
	if l.extra != "" {
		b.WriteString(", " + l.extra)
	}
	b.WriteString(")")
	return b.String()
}

// create returns the statements that create a table: on one server the
// table itself; on a cluster a local table on every node (run on each) and
// a Distributed table of the same name over them.
func (s *Store) create(name, cols, partition, order, shard string) (local, dist string) {
	engine := "MergeTree"
	if partition != "" {
		engine += " PARTITION BY " + partition
	}
	engine += " ORDER BY (" + order + ")"
	if s.cluster == "" {
		return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s %s ENGINE = %s", quote(name), cols, engine), ""
	}
	local = fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s %s ENGINE = %s", quote(name+localSuffix), cols, engine)
	dist = fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s AS %s ENGINE = Distributed(%s, %s, %s, %s)",
		quote(name), quote(name+localSuffix), quote(s.cluster), quote(s.c.database), quote(name+localSuffix), shard)
	return local, dist
}

// localSuffix names the shard-local table of a Distributed one.
const localSuffix = "_local"

// localName returns the table that holds a table's rows on each node.
func (s *Store) localName(name string) string {
	if s.cluster == "" {
		return name
	}
	return name + localSuffix
}

// migrate creates the database and tables, or checks their version. A
// store whose version is recorded is complete (the version is written
// last): it is opened with one query, not a statement per table and node.
func (s *Store) migrate(ctx context.Context) error {
	v, err := s.meta(ctx, "schema_version")
	var se *serverError
	missing := errors.As(err, &se) && (se.Code == codeUnknownDB || se.Code == codeUnknownTable)
	switch {
	case err != nil && !missing:
		return err
	case err == nil && v == fmt.Sprint(schemaVersion):
		return nil
	case err == nil && slices.Contains([]string{"1", "2", "3", "4", "5"}, v):
		// The columns added since; then the tables added since, created as
		// for a new database.
		count, str := sqlType(store.ColumnInfo{Type: store.TypeCount}, false), sqlType(store.ColumnInfo{Type: store.TypeString}, false)
		var cols []addedColumn
		if v == "1" {
			cols = append(cols, addedColumn{"obs_daily", "mkey", count}, addedColumn{"obs_daily", "bkey", count},
				addedColumn{"intel_indicator", "mkey", count})
		}
		cols = append(cols, addedColumn{"http", "server", str})
		if err := s.addColumns(ctx, cols); err != nil {
			return err
		}
	case err == nil && v != "":
		return fmt.Errorf("database %s has dwell schema %s; this dwell knows %d", s.c.database, v, schemaVersion)
	}
	for _, n := range s.c.nodes {
		if _, err := s.c.retry(ctx, request{node: n, query: "CREATE DATABASE IF NOT EXISTS " + quote(s.c.database), noDB: true}); err != nil {
			return fmt.Errorf("creating database %s on %s: %w", s.c.database, n.addr, err)
		}
	}
	var locals, dists []string
	add := func(l, d string) {
		locals = append(locals, l)
		if d != "" {
			dists = append(dists, d)
		}
	}
	for name, cols := range controlDDL {
		add(s.create(name, cols, "", controlOrder[name], controlShard[name]))
	}
	lay := layouts()
	tables := append(s.schema.Tables(), s.intel.Daily.Info(), s.intel.Indicators.Info())
	for _, t := range tables {
		l, ok := lay[t.Name]
		if !ok {
			return fmt.Errorf("BUG: no ClickHouse layout for table %s", t.Name)
		}
		add(s.create(t.Name, tableDDL(t, l), l.partition, l.order, l.shard))
	}
	for _, n := range s.c.nodes {
		for _, q := range append(locals, dists...) {
			if err := s.c.exec(ctx, n, q, nil); err != nil {
				return fmt.Errorf("creating tables on %s: %w\n%s", n.addr, err, q)
			}
		}
	}
	return s.setMeta(ctx, "schema_version", fmt.Sprint(schemaVersion))
}

// addedColumn is a column a later schema added to a table.
type addedColumn struct{ table, column, sqlType string }

// addColumns adds columns to a database of an earlier schema (migrate
// records the version once the tables of later versions are made too), on
// every node's local and Distributed tables. Rows written before read
// the column's default: schema 2's match keys (ClickHouse matches in Go,
// store.IndicatorMatcher, and reads no key of older rows), schema 6's
// http.server (NULL: the header was not kept). A column already there (a
// migration cut short) is left as it is.
func (s *Store) addColumns(ctx context.Context, cols []addedColumn) error {
	for _, n := range s.c.nodes {
		for _, c := range cols {
			names := []string{s.localName(c.table)}
			if s.cluster != "" {
				names = append(names, c.table)
			}
			for _, name := range names {
				err := s.c.exec(ctx, n, "ALTER TABLE "+quote(name)+" ADD COLUMN "+quote(c.column)+" "+c.sqlType, nil)
				if err != nil && !columnExists(err) {
					return fmt.Errorf("adding %s.%s on %s: %w", name, c.column, n.addr, err)
				}
			}
		}
	}
	return nil
}

// columnExists reports whether err is ClickHouse refusing to add a column
// a table has.
func columnExists(err error) bool {
	var se *serverError
	return errors.As(err, &se) && se.Code == codeIllegalColumn && strings.Contains(se.Message, "already exists")
}

// version returns a new row version: the wall clock in nanoseconds, kept
// increasing within this process.
func (s *Store) version() uint64 {
	s.verMu.Lock()
	defer s.verMu.Unlock()
	v := uint64(max(time.Now().UnixNano(), 0))
	if v <= s.lastVer {
		v = s.lastVer + 1
	}
	s.lastVer = v
	return v
}

// meta returns a dwell_meta value ("" when unset).
func (s *Store) meta(ctx context.Context, key string) (string, error) {
	v, err := s.c.scalar(ctx, `SELECT value FROM (SELECT argMax(value, version) AS value, argMax(deleted, version) AS deleted
		FROM dwell_meta WHERE key = `+quoteString(key)+`) WHERE deleted = 0`)
	if err != nil {
		return "", fmt.Errorf("reading %s from the store: %w", key, err)
	}
	return v, nil
}

// setMeta stores a dwell_meta value.
func (s *Store) setMeta(ctx context.Context, key, value string) error {
	q := fmt.Sprintf("INSERT INTO dwell_meta (key, value, deleted, version) VALUES (%s, %s, 0, %d)", quoteString(key), quoteString(value), s.version())
	if err := s.c.exec(ctx, s.c.nodes[0], q, syncInsert); err != nil {
		return fmt.Errorf("storing %s: %w", key, err)
	}
	return nil
}

// syncInsert makes an insert into a Distributed table return only once
// every shard has its rows (not queued for later).
var syncInsert = map[string]string{"insert_distributed_sync": "1"}

// seconds converts fractional seconds to a duration rounded to the
// microsecond; NaN and infinities are 0.
func seconds(f float64) time.Duration {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return time.Duration(math.Round(f*1e6)) * time.Microsecond
}
