package intel

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/dwell-nsm/dwell/internal/event"
)

// medallion serves the OASIS reference server's test data as TAXII 2.1,
// with paging ("limit", "next", "more") and "added_after", and checks the
// client's authentication.
type medallion struct {
	data  map[string]json.RawMessage
	token string
	pages int
}

type medCollection struct {
	ID       string            `json:"id"`
	Title    string            `json:"title"`
	CanRead  bool              `json:"can_read"`
	CanWrite bool              `json:"can_write"`
	Objects  []json.RawMessage `json:"objects"`
	Manifest []struct {
		ID        string `json:"id"`
		DateAdded string `json:"date_added"`
		Version   string `json:"version"`
	} `json:"manifest"`
}

func (m *medallion) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+m.token {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"title": "unauthorized"}`))
		return
	}
	if !strings.HasPrefix(r.Header.Get("Accept"), "application/taxii+json") {
		w.WriteHeader(http.StatusNotAcceptable)
		return
	}
	w.Header().Set("Content-Type", TAXIIMediaType)
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	write := func(v any) {
		_ = json.NewEncoder(w).Encode(v)
	}
	if len(parts) == 1 && parts[0] == "taxii2" {
		var d map[string]any
		_ = json.Unmarshal(m.data["/discovery"], &d)
		roots := []string{}
		for _, r := range d["api_roots"].([]any) {
			roots = append(roots, "/"+strings.Split(strings.TrimPrefix(r.(string), "http://"), "/")[1]+"/") // relative
		}
		d["api_roots"] = roots
		write(d)
		return
	}
	var root struct {
		Information json.RawMessage `json:"information"`
		Collections []medCollection `json:"collections"`
	}
	raw, ok := m.data[parts[0]]
	if !ok || json.Unmarshal(raw, &root) != nil {
		http.NotFound(w, r)
		return
	}
	switch {
	case len(parts) == 1:
		_, _ = w.Write(root.Information)
	case len(parts) == 2 && parts[1] == "collections":
		cols := []map[string]any{}
		for _, c := range root.Collections {
			cols = append(cols, map[string]any{"id": c.ID, "title": c.Title, "can_read": c.CanRead, "can_write": c.CanWrite})
		}
		write(map[string]any{"collections": cols})
	case len(parts) == 3 && parts[1] == "collections":
		i := slices.IndexFunc(root.Collections, func(c medCollection) bool { return c.ID == parts[2] })
		if i < 0 {
			http.NotFound(w, r)
			return
		}
		c := root.Collections[i]
		write(map[string]any{"id": c.ID, "title": c.Title, "can_read": c.CanRead, "can_write": c.CanWrite})
	case len(parts) == 4 && parts[1] == "collections" && parts[3] == "objects":
		i := slices.IndexFunc(root.Collections, func(c medCollection) bool { return c.ID == parts[2] })
		if i < 0 || !root.Collections[i].CanRead {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		m.objects(w, r, root.Collections[i])
	default:
		http.NotFound(w, r)
	}
}

// objects pages through a collection in date-added order.
func (m *medallion) objects(w http.ResponseWriter, r *http.Request, c medCollection) {
	type entry struct {
		added string
		obj   json.RawMessage
	}
	var all []entry
	for _, o := range c.Objects {
		var h struct{ ID, Modified string }
		_ = json.Unmarshal(o, &h)
		added := ""
		for _, mf := range c.Manifest {
			if mf.ID == h.ID && (mf.Version == h.Modified || h.Modified == "") {
				added = mf.DateAdded
			}
		}
		if after := r.URL.Query().Get("added_after"); after != "" && added <= after {
			continue
		}
		all = append(all, entry{added, o})
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].added < all[j].added })
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	start, _ := strconv.Atoi(r.URL.Query().Get("next"))
	end := min(start+limit, len(all))
	if limit <= 0 {
		end = len(all)
	}
	page := all[start:end]
	m.pages++
	objs := []json.RawMessage{}
	for _, e := range page {
		objs = append(objs, e.obj)
	}
	env := map[string]any{"more": end < len(all), "objects": objs}
	if end < len(all) {
		env["next"] = strconv.Itoa(end)
	}
	if len(page) > 0 {
		w.Header().Set("X-TAXII-Date-Added-First", page[0].added)
		w.Header().Set("X-TAXII-Date-Added-Last", page[len(page)-1].added)
	}
	_ = json.NewEncoder(w).Encode(env)
}

func TestTAXII(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(datasets(t, "taxii21-medallion-fixture"), "default_data.json"))
	if err != nil {
		t.Fatal(err)
	}
	m := &medallion{token: "s3cret"}
	if err := json.Unmarshal(raw, &m.data); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m)
	defer srv.Close()

	if _, err := (&TAXII{Token: "wrong"}).Collections(t.Context(), srv.URL+"/taxii2/"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("bad token: %v", err)
	}
	c := &TAXII{Token: "s3cret", PageSize: 3}
	cols, err := c.Collections(t.Context(), srv.URL+"/taxii2/")
	if err != nil {
		t.Fatal(err)
	}
	var hv *Collection
	for i := range cols {
		if cols[i].ID == "91a7b528-80eb-42ed-a74d-c6fbd5a26116" {
			hv = &cols[i]
		}
		if cols[i].ID == "472c94ae-3113-4e3e-a4dd-a9f4ac7471d4" || cols[i].ID == "64993447-4d7e-4f70-b94d-d7f33742ee63" {
			t.Errorf("unreadable collection %s listed", cols[i].ID)
		}
	}
	if hv == nil {
		t.Fatalf("high-value collection not found in %v", cols)
	}
	rd, err := c.Read(t.Context(), *hv, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rd.Objects) != 8 || rd.Pages != 3 || rd.Cursor != "2017-12-31T13:49:53.935000Z" {
		t.Errorf("read %d objects in %d pages up to %s; want 8 in 3 up to 2017-12-31T13:49:53.935000Z", len(rd.Objects), rd.Pages, rd.Cursor)
	}
	res, err := ParseTAXII([]*TAXIIRead{rd}, func(c Collection) string { return "taxii:" + c.ID })
	if err != nil {
		t.Fatal(err)
	}
	// Two indicators: a file hash, and the latest of three versions of a URL indicator.
	if len(res.Indicators) != 2 || find(res, event.IOCURL, "x4z9arb.cn/4712") == nil ||
		find(res, event.IOCSHA256, "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c") == nil {
		t.Errorf("indicators %+v", res.Indicators)
	}
	if i := find(res, event.IOCURL, "x4z9arb.cn/4712"); i != nil && i.Source != "taxii:"+hv.ID {
		t.Errorf("source %q", i.Source)
	}
	// Read again from the cursor: nothing new.
	again, err := c.Read(t.Context(), *hv, rd.Cursor, nil)
	if err != nil || len(again.Objects) != 0 || again.Cursor != rd.Cursor {
		t.Errorf("second read: %d objects, cursor %q, %v", len(again.Objects), again.Cursor, err)
	}
	// A collection URL directly.
	one, err := c.Collections(t.Context(), srv.URL+"/trustgroup1/collections/91a7b528-80eb-42ed-a74d-c6fbd5a26116")
	if err != nil || len(one) != 1 || one[0].URL != hv.URL {
		t.Errorf("collection URL: %+v, %v (want %s)", one, err, hv.URL)
	}
}
