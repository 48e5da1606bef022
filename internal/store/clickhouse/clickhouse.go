// Package clickhouse is dwell's scale-out store: the tables of store.Schema
// in ClickHouse, on one server or sharded over a cluster, selected with
// --db clickhouse://[user[:password]@]host:port/database[?cluster=NAME].
//
// It speaks ClickHouse's HTTP interface with net/http (http.go): inserts
// as compressed RowBinary, queries as SQL returning TabSeparated, in the
// subset of SQL that ClickHouse 18.16 (Debian's, tested) has
// (docs/clickhouse.md). Detector aggregations run in ClickHouse;
// only their results travel.
//
// ClickHouse has no transactions. A Write is made exactly-once with the
// ingest ledger: every row carries the number of the Write that stored it,
// the number is recorded as pending before the rows and as done after the
// ledger, and the first Write of a store removes the rows of a write that
// never finished (write.go).
package clickhouse

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Options tune Open.
type Options struct {
	// ReadOnly opens the store for queries only: nothing is created and
	// every write is refused.
	ReadOnly bool
	// Timeout bounds one statement; default 30 minutes.
	Timeout time.Duration
	// Retries is how many times a statement that failed on the network is
	// sent again; default 3.
	Retries int
	// Transport replaces the HTTP transport (tests inject failures).
	Transport http.RoundTripper
}

// Store is a ClickHouse-backed store.Store.
type Store struct {
	c       *client
	url     string // without the password, for messages
	cluster string
	schema  *store.Schema
	intel   *store.IntelSchema
	ro      bool

	mu  sync.Mutex // serialises writers
	enc *encoders  // used with mu held
	// recovered is set once the first Write has removed the rows of a
	// write that never finished (write.go).
	recovered bool

	verMu   sync.Mutex
	lastVer uint64
}

var _ store.Store = (*Store)(nil)

// IsURL reports whether db names a ClickHouse store.
func IsURL(db string) bool { return strings.HasPrefix(db, "clickhouse://") }

// Open connects to the store db names, creating its database and tables
// unless read-only.
//
// The URL's query may hold cluster=NAME (a cluster of remote_servers: the
// tables become Distributed over shard-local ones), nodes=HOST:PORT,... (the
// HTTP address of every node, where dwell creates the local tables; by
// default the cluster's hosts from system.clusters at the URL's port),
// secure=true (HTTPS) and compress=true|false (gzip inserts; by default
// only to a server that is not on loopback, where compressing costs both
// ends CPU and saves no network).
func Open(ctx context.Context, db string, opt Options) (*Store, error) {
	u, err := url.Parse(db)
	if err != nil || u.Scheme != "clickhouse" || u.Host == "" {
		return nil, fmt.Errorf("bad ClickHouse URL %q: want clickhouse://[user[:password]@]host:port/database[?cluster=NAME]", redact(db))
	}
	q := u.Query()
	scheme, port := "http", "8123"
	if q.Get("secure") == "true" {
		scheme, port = "https", "8443"
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), port)
	}
	database := cmp.Or(strings.Trim(u.Path, "/"), "dwell")
	if strings.ContainsAny(database, "/`") {
		return nil, fmt.Errorf("bad ClickHouse database name %q", database)
	}
	timeout := cmp.Or(opt.Timeout, 30*time.Minute)
	tr := opt.Transport
	if tr == nil {
		tr = &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 8,
			IdleConnTimeout:     90 * time.Second,
			// A statement's answer starts when it has run (the server
			// runs with wait_end_of_query=1): a server that says nothing
			// for longer than max_execution_time allows is gone.
			ResponseHeaderTimeout: timeout + time.Minute,
		}
	}
	c := &client{
		http:     &http.Client{Transport: tr},
		nodes:    []node{{base: scheme + "://" + host + "/", addr: host}},
		user:     u.User.Username(),
		database: database,
		compress: compressInserts(q.Get("compress"), u.Hostname()),
		timeout:  timeout,
		retries:  cmp.Or(opt.Retries, 3),
	}
	c.password, _ = u.User.Password()
	s := &Store{c: c, url: redact(db), cluster: q.Get("cluster"), schema: store.NewSchema(), intel: store.NewIntelSchema(), ro: opt.ReadOnly}
	s.enc = newEncoders(s.schema, s.intel)
	if s.cluster != "" {
		if err := s.findNodes(ctx, scheme, q.Get("nodes")); err != nil {
			return nil, err
		}
	}
	if err := c.ping(ctx); err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", s.url, err)
	}
	if opt.ReadOnly {
		v, err := s.meta(ctx, "schema_version")
		if err != nil {
			var se *serverError
			if errors.As(err, &se) && (se.Code == codeUnknownDB || se.Code == codeUnknownTable) {
				return nil, fmt.Errorf("no dwell store at %s (run `dwell ingest --db ...` first): %w", s.url, err)
			}
			return nil, err
		}
		if v == "" {
			return nil, fmt.Errorf("no dwell store at %s (run `dwell ingest --db ...` first)", s.url)
		}
		return s, nil
	}
	if err := s.migrate(ctx); err != nil {
		return nil, fmt.Errorf("store %s: %w", s.url, err)
	}
	return s, nil
}

// compressInserts says whether inserts are gzipped: as the URL's
// compress says, else unless the server is on loopback.
func compressInserts(option, host string) bool {
	switch option {
	case "true":
		return true
	case "false":
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err != nil || !a.IsLoopback()
}

// findNodes sets the nodes DDL runs on: those the URL lists, or the hosts
// of the cluster at the URL's HTTP port.
func (s *Store) findNodes(ctx context.Context, scheme, list string) error {
	first := s.c.nodes[0]
	var addrs []string
	if list != "" {
		addrs = strings.Split(list, ",")
	} else {
		_, port, _ := net.SplitHostPort(first.addr)
		err := s.c.each(ctx, "reading the cluster", "SELECT DISTINCT host_address FROM system.clusters WHERE cluster = "+quoteString(s.cluster),
			func(r *tsvReader) error {
				addrs = append(addrs, net.JoinHostPort(r.Field(0), port))
				return nil
			})
		if err != nil {
			return fmt.Errorf("store %s: %w", s.url, err)
		}
		if len(addrs) == 0 {
			return fmt.Errorf("store %s: the server knows no cluster %q (remote_servers in its config)", s.url, s.cluster)
		}
	}
	nodes := []node{first}
	for _, a := range addrs {
		a = strings.TrimSpace(a)
		if a == "" || a == first.addr {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("store %s: bad node %q in nodes= (want host:port): %w", s.url, a, err)
		}
		nodes = append(nodes, node{base: scheme + "://" + a + "/", addr: a})
	}
	s.c.nodes = nodes
	return nil
}

// redact removes the password from a URL for messages.
func redact(db string) string {
	u, err := url.Parse(db)
	if err != nil || u.User == nil {
		return db
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Backend implements store.Store.
func (s *Store) Backend() string { return "clickhouse" }

// URL returns the store's URL without its password.
func (s *Store) URL() string { return s.url }

// Close implements store.Store. Nothing is buffered: every Write has been
// stored when it returned.
func (s *Store) Close() error {
	s.c.http.CloseIdleConnections()
	return nil
}

func (s *Store) readOnlyError() error { return fmt.Errorf("store %s is open read-only", s.url) }

// Count implements store.Reader.
func (s *Store) Count(ctx context.Context, k event.Kind) (int64, error) {
	v, err := s.c.scalar(ctx, "SELECT count() FROM "+quote(k.String()))
	if err != nil {
		return 0, fmt.Errorf("counting %s: %w", k, err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("counting %s: %q", k, v)
	}
	return n, nil
}
