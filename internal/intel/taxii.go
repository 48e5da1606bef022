package intel

import (
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
// by page.
func (c *TAXII) Read(ctx context.Context, col Collection, cursor string) (*TAXIIRead, error) {
	r := &TAXIIRead{Collection: col, Cursor: cursor}
	size := c.PageSize
	if size <= 0 {
		size = 500
	}
	next := ""
	for page := 0; ; page++ {
		if page > 100_000 {
			return nil, errors.New("TAXII: more than 100,000 pages; stopping")
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
		r.Objects = append(r.Objects, env.Objects...)
		if last := h.Get("X-TAXII-Date-Added-Last"); last != "" {
			r.Cursor = last
		}
		if !env.More || len(env.Objects) == 0 {
			return r, nil
		}
		if env.Next != "" && env.Next == next {
			return nil, errors.New("TAXII: the server returned the same next page again")
		}
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
		r.merge(sr)
		r.Notes = append(r.Notes, fmt.Sprintf("collection %s (%s): %d objects in %d page(s), read up to %s",
			rd.Collection.ID, rd.Collection.Title, len(rd.Objects), rd.Pages, firstOf(rd.Cursor, "the start")))
	}
	return r, nil
}
