package clickhouse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/dwell-nsm/dwell/internal/store"
)

// ClickHouse is spoken to over its HTTP interface with net/http alone:
// statements in the request body, settings as URL parameters, inserts as
// RowBinary (gzip-compressed unless told otherwise), results as
// TabSeparated. This works with ClickHouse 18.16 (Debian's, which the
// tests use), where clickhouse-go's HTTP mode does not (docs/clickhouse.md).

// node is one server's HTTP endpoint.
type node struct {
	base string // scheme://host:port/
	addr string // host:port, for messages
}

// client sends statements to the nodes of a store.
type client struct {
	http     *http.Client
	nodes    []node // the first takes queries and inserts; all take DDL
	user     string
	password string
	database string
	compress bool
	timeout  time.Duration
	retries  int
}

// serverError is an exception ClickHouse returned.
type serverError struct {
	Code    int
	Message string
	Status  int
}

func (e *serverError) Error() string {
	return fmt.Sprintf("clickhouse: code %d: %s", e.Code, e.Message)
}

// Is reports a query over the server's memory limit as
// store.ErrOutOfMemory (the hunt runs such a detector again alone).
func (e *serverError) Is(target error) bool {
	return target == store.ErrOutOfMemory && e.Code == codeMemoryLimit
}

// Error codes dwell reacts to.
const (
	codeIllegalColumn = 44 // also "column with this name already exists"
	codeUnknownTable  = 60
	codeSyntaxError   = 62
	codeUnknownDB     = 81
	codeReadOnly      = 164
	codeMemoryLimit   = 241 // MEMORY_LIMIT_EXCEEDED
	codeTooManyParts  = 252
)

// parseServerError reads an exception from a response body.
func parseServerError(status int, body []byte) error {
	msg := strings.TrimSpace(string(body))
	e := &serverError{Status: status, Message: msg}
	if rest, ok := strings.CutPrefix(msg, "Code: "); ok {
		if i := strings.IndexByte(rest, ','); i > 0 {
			e.Code, _ = strconv.Atoi(rest[:i])
			m := strings.TrimSpace(rest[i+1:])
			m = strings.TrimPrefix(m, "e.displayText() = ")
			if j := strings.LastIndex(m, ", e.what() = "); j > 0 {
				m = m[:j]
			}
			e.Message = strings.TrimPrefix(m, "DB::Exception: ")
		}
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

// retryable reports whether a failed request may succeed if sent again:
// the network failed, the server was busy or overloaded.
func retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var se *serverError
	if errors.As(err, &se) {
		return se.Code == codeTooManyParts || se.Status == http.StatusServiceUnavailable || se.Status == http.StatusBadGateway
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "connection refused")
}

// backoff waits before attempt n (1, 2, ...), or until ctx ends.
func backoff(ctx context.Context, n int) error {
	d := time.Duration(1<<min(n-1, 6)) * 100 * time.Millisecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// request is one statement for one node.
type request struct {
	node     node
	query    string            // in the URL (inserts) or the body (everything else)
	body     func() io.Reader  // insert data; nil for a statement in the body
	settings map[string]string // extra settings
	noDB     bool              // before the database exists
}

// do sends r and returns the response body, which the caller closes.
func (c *client) do(ctx context.Context, r request) (io.ReadCloser, error) {
	q := url.Values{}
	if !r.noDB {
		q.Set("database", c.database)
	}
	// The whole result is computed before the first byte is sent, so that
	// an error always comes as an HTTP status, never as text appended to
	// half a result.
	q.Set("wait_end_of_query", "1")
	if c.timeout > 0 {
		q.Set("max_execution_time", strconv.Itoa(int(c.timeout.Seconds())))
	}
	for k, v := range r.settings {
		q.Set(k, v)
	}
	var body io.Reader
	var gz bool
	if r.body != nil {
		q.Set("query", r.query)
		body, gz = r.body(), c.compress
	} else {
		body = strings.NewReader(r.query)
	}
	if gz {
		pr, pw := io.Pipe()
		src := body
		go func() {
			zw, _ := gzip.NewWriterLevel(pw, gzip.BestSpeed)
			_, err := io.Copy(zw, src)
			if err == nil {
				err = zw.Close()
			}
			pw.CloseWithError(err)
		}()
		body = pr
	}
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.node.base+"?"+q.Encode(), body)
	if err != nil {
		cancel()
		return nil, err
	}
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	if c.user != "" || c.password != "" {
		req.SetBasicAuth(c.user, c.password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("clickhouse %s: %w", r.node.addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		cancel()
		return nil, parseServerError(resp.StatusCode, data)
	}
	return &cancelBody{ReadCloser: resp.Body, cancel: cancel}, nil
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// exec runs a statement that returns nothing on node n, retrying when the
// network fails. Only statements that are safe to repeat (DDL with IF
// [NOT] EXISTS, SELECTs) go through here; inserts go through insert.
func (c *client) exec(ctx context.Context, n node, query string, settings map[string]string) error {
	rc, err := c.retry(ctx, request{node: n, query: query, settings: settings})
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, rc)
	return rc.Close()
}

// retry sends r, again after a pause when the failure is transient.
func (c *client) retry(ctx context.Context, r request) (io.ReadCloser, error) {
	for attempt := 1; ; attempt++ {
		rc, err := c.do(ctx, r)
		if err == nil || attempt > c.retries || !retryable(err) {
			return rc, err
		}
		if err := backoff(ctx, attempt); err != nil {
			return nil, err
		}
	}
}

// query runs a SELECT on the first node and returns its rows as
// TabSeparated text.
func (c *client) query(ctx context.Context, query string) (*tsvReader, error) {
	rc, err := c.retry(ctx, request{node: c.nodes[0], query: query + "\nFORMAT TabSeparated", settings: bigQuery})
	if err != nil {
		return nil, err
	}
	return newTSVReader(rc), nil
}

// bigQuery lets statements carry long literal lists (the inside
// addresses, indicator values) rather than external tables: the lists go
// with the query to every shard.
var bigQuery = map[string]string{"max_query_size": strconv.Itoa(64 << 20)}

// ping checks that the first node answers.
func (c *client) ping(ctx context.Context) error {
	rc, err := c.retry(ctx, request{node: c.nodes[0], query: "SELECT 1", noDB: true})
	if err != nil {
		return err
	}
	return rc.Close()
}

// scalar runs a query returning one value.
func (c *client) scalar(ctx context.Context, query string) (string, error) {
	r, err := c.query(ctx, query)
	if err != nil {
		return "", err
	}
	defer func() { _ = r.Close() }()
	if !r.Next() {
		if err := r.Err(); err != nil {
			return "", err
		}
		return "", nil
	}
	v := r.Field(0)
	return v, r.Err()
}

// insertOnce sends an insert of body (already encoded) to node n once:
// whether an insert may be sent again is the caller's decision.
func (c *client) insertOnce(ctx context.Context, n node, query string, body []byte, settings map[string]string) error {
	rc, err := c.do(ctx, request{node: n, query: query, body: func() io.Reader { return bytes.NewReader(body) }, settings: settings})
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, rc)
	return rc.Close()
}
