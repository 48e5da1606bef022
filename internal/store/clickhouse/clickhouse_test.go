package clickhouse_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"

	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/clickhouse"
	"github.com/dwell-nsm/dwell/internal/store/clickhouse/chtest"
	"github.com/dwell-nsm/dwell/internal/store/storetest"
)

// servers are the test servers TestMain started; nil, with skipWhy, when
// ClickHouse is not installed.
var (
	servers *chtest.Servers
	skipWhy string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dwell-clickhouse-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	servers, err = chtest.Start(context.Background(), dir)
	if err != nil {
		skipWhy = err.Error()
	}
	code := m.Run()
	if servers != nil {
		servers.Stop()
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func need(t *testing.T) {
	t.Helper()
	if servers == nil {
		t.Skip(skipWhy)
	}
}

func open(t *testing.T, url string) *clickhouse.Store {
	t.Helper()
	s, err := clickhouse.Open(t.Context(), url, clickhouse.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformanceSingle(t *testing.T) {
	need(t)
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, servers.SingleURL()) })
}

// TestConformanceCluster sends its inserts gzipped (the single server's
// go uncompressed, as to any server on loopback): both paths are checked.
func TestConformanceCluster(t *testing.T) {
	need(t)
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, servers.ClusterURL()+"&compress=true") })
}

// faulty is a transport that breaks the requests fail selects.
type faulty struct {
	fail func(query string) (forward bool, err error)
}

func (f *faulty) RoundTrip(r *http.Request) (*http.Response, error) {
	q := r.URL.Query().Get("query")
	if r.Body != nil && q == "" {
		data, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		_ = r.Body.Close()
		q = string(data)
		r.Body = io.NopCloser(bytes.NewReader(data))
	}
	forward, err := f.fail(q)
	if err == nil {
		return http.DefaultTransport.RoundTrip(r)
	}
	if forward {
		resp, ferr := http.DefaultTransport.RoundTrip(r)
		if ferr == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	}
	return nil, err
}

func sample(n int) *event.Batch {
	b := &event.Batch{}
	t0 := time.Date(2024, 4, 19, 0, 0, 0, 0, time.UTC)
	for i := range n {
		b.Conns = append(b.Conns, event.Conn{TS: t0.Add(time.Duration(i) * time.Second), UID: fmt.Sprint("C", i),
			SrcIP: netip.MustParseAddr(fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)), DstIP: netip.MustParseAddr("192.0.2.1"), DstPort: 443,
			Proto: "tcp", Src: event.Source{Sensor: "s", File: "f", Line: int64(i + 1)}})
	}
	b.Progress = []event.Progress{{ID: "in", HeadLen: 4096, Path: "f", Offset: int64(n), Line: int64(n), Rows: int64(n)}}
	return b
}

func count(t *testing.T, s store.Store) int64 {
	t.Helper()
	n, err := s.Count(t.Context(), event.KindConn)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// An insert whose answer is lost after ClickHouse stored it is not
// stored twice when sent again; one that never arrived is sent again.
func TestInsertRetryNoDoubles(t *testing.T) {
	need(t)
	for _, forward := range []bool{true, false} {
		for _, url := range []string{servers.SingleURL(), servers.ClusterURL()} {
			broke := false
			tr := &faulty{fail: func(q string) (bool, error) {
				if strings.HasPrefix(q, "INSERT INTO `conn`") && !broke {
					broke = true
					return forward, &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer (injected)")}
				}
				return false, nil
			}}
			s, err := clickhouse.Open(t.Context(), url, clickhouse.Options{Transport: tr})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Write(t.Context(), sample(1000)); err != nil {
				t.Fatal(err)
			}
			if !broke {
				t.Fatal("the fault was not injected")
			}
			if n := count(t, s); n != 1000 {
				t.Errorf("%s (stored before the failure: %v): %d rows, want 1000", url, forward, n)
			}
			_ = s.Close()
		}
	}
}

// A write cut short before its ledger entry leaves no rows behind once
// the store is opened again, so the resumed ingest stores them once.
func TestUnfinishedWriteRemoved(t *testing.T) {
	need(t)
	for _, url := range []string{servers.SingleURL(), servers.ClusterURL()} {
		tr := &faulty{fail: func(q string) (bool, error) {
			if strings.HasPrefix(q, "INSERT INTO ingest_ledger") {
				return false, errors.New("killed (injected)")
			}
			return false, nil
		}}
		s, err := clickhouse.Open(t.Context(), url, clickhouse.Options{Transport: tr, Retries: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Write(t.Context(), sample(500)); err == nil {
			t.Fatal("Write succeeded without its ledger")
		}
		if n := count(t, s); n != 500 {
			t.Fatalf("before recovery: %d rows, want the 500 of the unfinished write", n)
		}
		_ = s.Close()
		// A store opened to keep state (as dwell hunt does while an
		// ingest runs) leaves the pending write alone.
		other := open(t, url)
		if err := other.SetState(t.Context(), "hunt:last", "x"); err != nil {
			t.Fatal(err)
		}
		if n := count(t, other); n != 500 {
			t.Errorf("%s: a store that writes no records removed a pending write: %d rows", url, n)
		}
		_ = other.Close()
		// The resumed ingest's first Write removes it, then stores the
		// rows once.
		s = open(t, url)
		if l, err := s.Ledger(t.Context()); err != nil || len(l) != 0 {
			t.Errorf("ledger = %v, %v", l, err)
		}
		if err := s.Write(t.Context(), sample(500)); err != nil {
			t.Fatal(err)
		}
		if n := count(t, s); n != 500 {
			t.Errorf("%s: after the resumed write: %d rows, want 500", url, n)
		}
		_ = s.Close()
	}
}

// On the cluster, each shard holds part of the rows, and all of an
// internal host's records, outbound and inbound, are on one shard.
func TestClusterShards(t *testing.T) {
	need(t)
	url := servers.ClusterURL()
	s := open(t, url)
	defer func() { _ = s.Close() }()
	b := sample(2000)
	// The same hosts reached from outside.
	for i := range 2000 {
		c := b.Conns[i]
		c.SrcIP, c.DstIP, c.UID = netip.MustParseAddr("203.0.113.9"), c.SrcIP, c.UID+"in"
		b.Conns = append(b.Conns, c)
	}
	if err := s.Write(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, addr := range servers.HTTP() {
		hosts := strings.Fields(chExec(t, addr, "SELECT DISTINCT if(startsWith(id_orig_h, '10.'), id_orig_h, id_resp_h) FROM "+
			clusterDB(url)+".conn_local FORMAT TSV"))
		if len(hosts) == 0 || len(hosts) == 2000 {
			t.Errorf("shard %s holds %d of the 2000 hosts", addr, len(hosts))
		}
		for _, h := range hosts {
			if other, ok := seen[h]; ok {
				t.Fatalf("host %s has records on %s and on %s", h, other, addr)
			}
			seen[h] = addr
		}
	}
	if len(seen) != 2000 {
		t.Errorf("%d hosts on the shards, want 2000", len(seen))
	}
	if n := count(t, s); n != 4000 {
		t.Errorf("%d rows through the Distributed table, want 4000", n)
	}
}

func TestReadOnlyOpen(t *testing.T) {
	need(t)
	url := servers.SingleURL()
	if _, err := clickhouse.Open(t.Context(), url, clickhouse.Options{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "no dwell store") {
		t.Errorf("read-only open of a missing store: %v", err)
	}
	s := open(t, url)
	_ = s.Close()
	ro, err := clickhouse.Open(t.Context(), url, clickhouse.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := ro.Write(t.Context(), sample(1)); err == nil {
		t.Error("read-only store accepted a write")
	}
	_ = ro.Close()
}

func TestBadURL(t *testing.T) {
	for _, u := range []string{"clickhouse://", "clickhouse://h:1/a/b`c", "http://h:1/db"} {
		if _, err := clickhouse.Open(t.Context(), u, clickhouse.Options{}); err == nil {
			t.Errorf("Open(%q) succeeded", u)
		}
	}
	_, err := clickhouse.Open(t.Context(), "clickhouse://u:secret@127.0.0.1:1/db", clickhouse.Options{Retries: 1})
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error %v: want a failure without the password", err)
	}
}

// A database of schema 1 gets the match key columns on every node when
// opened for writing, also when a first attempt added some of them.
func TestMigrateMatchKeys(t *testing.T) {
	need(t)
	// Schema 1, except that obs_daily has its column already.
	url, db := earlierSchema(t, "1", "intel_indicator.mkey")
	s := open(t, url)
	defer func() { _ = s.Close() }()
	for _, addr := range servers.HTTP() {
		got := chExec(t, addr, "SELECT table, name FROM system.columns WHERE database = '"+db+"' AND name IN ('mkey', 'bkey') ORDER BY table, name FORMAT TSV")
		want := "intel_indicator\tmkey\nintel_indicator_local\tmkey\nobs_daily\tbkey\nobs_daily\tmkey\nobs_daily_local\tbkey\nobs_daily_local\tmkey\n"
		if got != want {
			t.Errorf("%s: match key columns:\n%swant:\n%s", addr, got, want)
		}
	}
	if _, _, err := s.PutIndicators(t.Context(), []event.Indicator{{Source: "t", Type: event.IOCIP, Value: "192.0.2.1"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(t.Context(), sample(3)); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := s.MatchIndicators(t.Context(), store.Window{}, func(x *event.Sighting) error { n += int(x.Count); return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("after the migration, 192.0.2.1 seen %d times, want 3", n)
	}
}

// A database of schema 5 gets http.server on every node when opened for
// writing; rows written after keep their server.
func TestMigrateHTTPServer(t *testing.T) {
	need(t)
	url, db := earlierSchema(t, "5", "http.server")
	s := open(t, url)
	defer func() { _ = s.Close() }()
	for _, addr := range servers.HTTP() {
		got := chExec(t, addr, "SELECT table FROM system.columns WHERE database = '"+db+"' AND name = 'server' ORDER BY table FORMAT TSV")
		if got != "http\nhttp_local\n" {
			t.Errorf("%s: tables with a server column: %q", addr, got)
		}
	}
	b := &event.Batch{HTTP: []event.HTTP{{TS: time.Date(2024, 4, 19, 0, 0, 0, 0, time.UTC), UID: "Hm", SrcIP: netip.MustParseAddr("10.0.0.1"),
		DstIP: netip.MustParseAddr("192.0.2.1"), DstPort: 80, Method: "GET", Server: "Kestrel-C2/0.9", Src: event.Source{Sensor: "s", File: "h", Line: 1}}}}
	if err := s.Write(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	rows, err := s.Query(t.Context(), "SELECT server FROM http WHERE uid = 'Hm'")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	if !rows.Next() || fmt.Sprint(rows.Values()...) != "Kestrel-C2/0.9" {
		t.Errorf("server after the migration: %v (%v)", rows.Values(), rows.Err())
	}
}

// earlierSchema makes a new cluster database look like one written by an
// earlier dwell: columns ("table.column") dropped from the Distributed
// and local tables on every node, and the schema version recorded as
// version. It returns the database's URL and name.
func earlierSchema(t *testing.T, version string, columns ...string) (url, db string) {
	t.Helper()
	url = servers.ClusterURL()
	_ = open(t, url).Close()
	db = clusterDB(url)
	for _, addr := range servers.HTTP() {
		for _, c := range columns {
			tbl, col, _ := strings.Cut(c, ".")
			for _, name := range []string{tbl, tbl + "_local"} {
				chExec(t, addr, "ALTER TABLE "+db+"."+name+" DROP COLUMN "+col)
			}
		}
	}
	chExec(t, servers.HTTP()[0], fmt.Sprintf("INSERT INTO %s.dwell_meta (key, value, deleted, version) VALUES ('schema_version', '%s', 0, %d)",
		db, version, time.Now().UnixNano()))
	return url, db
}

// clusterDB returns the database a cluster URL names.
func clusterDB(url string) string {
	path, _, _ := strings.Cut(url, "?")
	return path[strings.LastIndex(path, "/")+1:]
}

// chExec runs a statement on the server at addr and returns its output.
// Inserts into Distributed tables are synchronous.
func chExec(t *testing.T, addr, q string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+addr+"/?insert_distributed_sync=1", strings.NewReader(q))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s: %s", addr, q, body)
	}
	return string(body)
}

// TestQueryCannotTouchFilesOrSettings is the ClickHouse side of the
// DuckDB store's test (issue #14, item 7): analyst queries run with
// readonly=1, under which the server itself refuses table functions that
// reach files or the network, setting changes and SYSTEM statements.
func TestQueryCannotTouchFilesOrSettings(t *testing.T) {
	need(t)
	s := open(t, servers.SingleURL())
	defer func() { _ = s.Close() }()
	ctx := context.Background()
	for _, q := range []string{
		"SELECT * FROM file('/etc/passwd', 'TSV', 'a String')",
		"SELECT * FROM url('http://127.0.0.1:1/', 'TSV', 'a String')",
		"SELECT * FROM remote('127.0.0.1:1', system.one)",
		"SET readonly = 0",
		"SYSTEM SHUTDOWN",
		"KILL QUERY WHERE 1",
		"OPTIMIZE TABLE conn",
		"SELECT 1 SETTINGS readonly = 0",
	} {
		rows, err := s.Query(ctx, q)
		if err == nil {
			for rows.Next() {
			}
			err = rows.Err()
			_ = rows.Close()
		}
		if !errors.Is(err, store.ErrReadOnly) {
			t.Errorf("%q: %v, want a refusal (store.ErrReadOnly)", q, err)
		}
	}
	rows, err := s.Query(ctx, "SELECT count() FROM system.one")
	if err != nil {
		t.Fatalf("a plain query was refused: %v", err)
	}
	_ = rows.Close()
}

// TestQueryCannotReadState checks ClickHouse's own ways of naming a table
// against the state guard, beyond the conformance suite's; a table
// function that could find it by pattern is refused by the server.
func TestQueryCannotReadState(t *testing.T) {
	need(t)
	for _, url := range []string{servers.SingleURL(), servers.ClusterURL()} {
		s := open(t, url)
		storetest.CheckStateRefused(t, s, []string{
			"SELECT * FROM `dwell_meta`",
			"SELECT * FROM `dwell\\x5fmeta`",
			"SELECT * FROM \"dwell\\_meta\"",
			"SELECT value FROM dwell_meta ARRAY JOIN [1] AS x",
			"SELECT * FROM default.dwell_meta",
			"SELECT * FROM dwell_meta_local",
			"SELECT * FROM dwell_meta FINAL",
			"SELECT query FROM system.query_log",
			"SELECT query FROM system.processes",
			"DESCRIBE TABLE dwell_meta",
			"SHOW CREATE TABLE dwell_meta",
			"EXISTS TABLE dwell_meta",
		})
		ctx := context.Background()
		for _, q := range []string{
			"SELECT * FROM merge(currentDatabase(), '^dwell_me')",
			"SELECT * FROM cluster('x', currentDatabase(), 'dwell_meta')",
		} {
			rows, err := s.Query(ctx, q)
			if err == nil {
				_ = rows.Close()
				t.Errorf("%q ran", q)
			} else if !errors.Is(err, store.ErrReadOnly) && !errors.Is(err, store.ErrState) {
				t.Errorf("%q: %v, want a refusal", q, err)
			}
		}
		_ = s.Close()
	}
}
