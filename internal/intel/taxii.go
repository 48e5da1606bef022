package intel

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// A TAXII 2.1 client (OASIS TAXII 2.1, sections 4 and 5): discovery, API
// roots, collections, and objects read page by page ("limit", "next",
// "more") from where the last read stopped ("added_after", from the
// X-TAXII-Date-Added-Last header).

// TAXIIMediaType is the media type of TAXII 2.1 responses.
const TAXIIMediaType = "application/taxii+json;version=2.1"

// TAXII reads collections from a TAXII 2.1 server.
type TAXII struct {
	HTTP *http.Client
	// User and Password for HTTP basic authentication, or Token for a
	// bearer token; none for an open server.
	User, Password, Token string
	// PageSize is the "limit" asked for (default 500).
	PageSize int
	// MaxBytes bounds one response (default 64 MiB).
	MaxBytes int64
	// MaxPages, MaxObjects and MaxTime bound one Read (defaults 1,000
	// pages, 200,000 objects, 30 minutes): a server that answers "more"
	// forever, with a new "next" each time, must not hold an import. A
	// Read that reaches one stops, keeps what it read and says so
	// (TAXIIRead.Stopped); the next import goes on from its cursor.
	MaxPages   int
	MaxObjects int
	MaxTime    time.Duration
}

// Collection is a TAXII collection.
type Collection struct {
	ID      string `json:"id"`
	Title   string `json:"title"`
	CanRead bool   `json:"can_read"`
	URL     string `json:"-"` // its objects are under URL + "objects/"
}

// TAXIIRead is what one collection gave.
type TAXIIRead struct {
	Collection Collection
	Objects    []json.RawMessage
	Pages      int
	// Cursor is the date added of the last object read: the next read
	// asks for objects added after it.
	Cursor string
	// Stopped says why the read stopped before the server's last page
	// ("" when it reached it).
	Stopped string
}

func (c *TAXII) get(ctx context.Context, u string, out any) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", TAXIIMediaType)
	switch {
	case c.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.Token)
	case c.User != "":
		req.SetBasicAuth(c.User, c.Password)
	}
	client := c.HTTP
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Minute}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("TAXII %s: %w", u, err)
	}
	defer func() { _ = resp.Body.Close() }()
	limit := c.MaxBytes
	if limit <= 0 {
		limit = 64 << 20
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("TAXII %s: %w", u, err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("TAXII %s: response larger than %d bytes", u, limit)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Title string `json:"title"`
		}
		_ = json.Unmarshal(body, &e)
		return nil, fmt.Errorf("TAXII %s: %s %s", u, resp.Status, e.Title)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return nil, fmt.Errorf("TAXII %s: %w", u, jsonErr(body, err))
	}
	return resp.Header, nil
}

// Collections returns the readable collections at u: a discovery URL
// (every API root), an API root, or one collection's URL.
func (c *TAXII) Collections(ctx context.Context, u string) ([]Collection, error) {
	if !strings.HasSuffix(u, "/") {
		u += "/"
	}
	if strings.Contains(u, "/collections/") {
		var col Collection
		if _, err := c.get(ctx, u, &col); err != nil {
			return nil, err
		}
		if col.ID == "" {
			return nil, fmt.Errorf("TAXII %s: not a collection", u)
		}
		col.URL = u
		return []Collection{col}, nil
	}
	var doc struct {
		Title    string   `json:"title"`
		APIRoots []string `json:"api_roots"`
		Versions []string `json:"versions"`
	}
	if _, err := c.get(ctx, u, &doc); err != nil {
		return nil, err
	}
	roots := []string{u}
	if doc.APIRoots != nil { // a discovery document
		roots = nil
		for _, r := range doc.APIRoots {
			ru, err := url.Parse(u)
			if err != nil {
				return nil, err
			}
			ref, err := ru.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("TAXII %s: API root %q: %w", u, r, err)
			}
			roots = append(roots, ensureSlash(ref.String()))
		}
	}
	var out []Collection
	for _, root := range roots {
		var cols struct {
			Collections []Collection `json:"collections"`
		}
		if _, err := c.get(ctx, root+"collections/", &cols); err != nil {
			return nil, err
		}
		for _, col := range cols.Collections {
			if col.CanRead {
				col.URL = root + "collections/" + url.PathEscape(col.ID) + "/"
				out = append(out, col)
			}
		}
	}
	return out, nil
}

func ensureSlash(s string) string {
	if strings.HasSuffix(s, "/") {
		return s
	}
	return s + "/"
}

// Read reads a collection's objects added after cursor ("" for all), page
// by page. With page set, each page's objects go to it with the cursor
// reached (what an interrupted import resumes from), and are not kept in
// the TAXIIRead; an error from page ends the read.
func (c *TAXII) Read(ctx context.Context, col Collection, cursor string, page func(objects []json.RawMessage, cursor string) error) (*TAXIIRead, error) {
	r := &TAXIIRead{Collection: col, Cursor: cursor}
	size := cmp.Or(c.PageSize, 500)
	maxPages, maxObjects, maxTime := cmp.Or(c.MaxPages, 1000), cmp.Or(c.MaxObjects, 200_000), cmp.Or(c.MaxTime, 30*time.Minute)
	start := time.Now()
	objects := 0
	next := ""
	seen := map[string]bool{}
	for {
		switch {
		case r.Pages >= maxPages:
			r.Stopped = fmt.Sprintf("stopped after %d pages (intel.taxii_max_pages)", r.Pages)
		case objects >= maxObjects:
			r.Stopped = fmt.Sprintf("stopped after %d objects (intel.taxii_max_objects)", objects)
		case time.Since(start) >= maxTime:
			r.Stopped = fmt.Sprintf("stopped after %s (intel.taxii_max_time)", maxTime)
		}
		if r.Stopped != "" {
			return r, nil
		}
		q := url.Values{}
		q.Set("limit", fmt.Sprint(size))
		if cursor != "" {
			q.Set("added_after", cursor)
		}
		if next != "" {
			q.Set("next", next)
		}
		var env struct {
			More    bool              `json:"more"`
			Next    string            `json:"next"`
			Objects []json.RawMessage `json:"objects"`
		}
		h, err := c.get(ctx, col.URL+"objects/?"+q.Encode(), &env)
		if err != nil {
			return nil, err
		}
		r.Pages++
		objects += len(env.Objects)
		if last := h.Get("X-TAXII-Date-Added-Last"); last != "" {
			r.Cursor = last
		}
		if page != nil {
			if err := page(env.Objects, r.Cursor); err != nil {
				return nil, err
			}
		} else {
			r.Objects = append(r.Objects, env.Objects...)
		}
		if !env.More || len(env.Objects) == 0 {
			return r, nil
		}
		if env.Next != "" && seen[env.Next] {
			r.Stopped = "stopped: the server sent a next page it had sent before"
			return r, nil
		}
		seen[env.Next] = true
		if env.Next == "" {
			// No "next": continue after the last object's date added.
			if r.Cursor == "" || r.Cursor == cursor {
				return nil, errors.New("TAXII: more objects but neither next nor X-TAXII-Date-Added-Last to continue from")
			}
			cursor = r.Cursor
		}
		next = env.Next
	}
}

// ParseTAXII turns what was read from collections into indicators: each
// collection's objects as one bundle, so that only the latest version of
// each object counts.
func ParseTAXII(reads []*TAXIIRead, source func(Collection) string) (*Result, error) {
	r := &Result{Format: "taxii"}
	for _, rd := range reads {
		bundle, err := json.Marshal(map[string]any{"type": "bundle", "id": "", "objects": rd.Objects})
		if err != nil {
			return nil, err
		}
		sr, err := ParseSTIX(bundle, source(rd.Collection))
		if err != nil {
			return nil, fmt.Errorf("collection %s: %w", rd.Collection.ID, err)
		}
		r.Merge(sr)
		r.Notes = append(r.Notes, fmt.Sprintf("collection %s (%s): %d objects in %d page(s), read up to %s",
			rd.Collection.ID, rd.Collection.Title, len(rd.Objects), rd.Pages, firstOf(rd.Cursor, "the start")))
		if rd.Stopped != "" {
			r.Notes = append(r.Notes, fmt.Sprintf("collection %s: %s; the next import goes on from there", rd.Collection.ID, rd.Stopped))
		}
	}
	return r, nil
}
