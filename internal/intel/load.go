package intel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Loader reads intel sources: local files and directories, and HTTP(S)
// URLs, in whichever format their content is.
type Loader struct {
	HTTP *http.Client
	// MaxBytes bounds one file or response (default 256 MiB).
	MaxBytes int64
}

func (l *Loader) limit() int64 {
	if l.MaxBytes > 0 {
		return l.MaxBytes
	}
	return 256 << 20
}

// Load reads src (a file, a directory, or an http(s) URL) and names its
// indicators' source name.
func (l *Loader) Load(ctx context.Context, src, name string) (*Result, error) {
	if u, err := url.Parse(src); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		return l.loadURL(ctx, src, name)
	}
	st, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		data, err := l.readFile(src)
		if err != nil {
			return nil, err
		}
		r, err := Parse(data, name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		return r, nil
	}
	if _, err := os.Stat(filepath.Join(src, "manifest.json")); err == nil {
		return ReadMISPFeed(ctx, func(_ context.Context, f string) ([]byte, error) { return l.readFile(filepath.Join(src, f)) }, name)
	}
	// Any other directory: its intel files, recursively (JSON, CSV and
	// lists by their extension; READMEs and licences are not intel).
	all := &Result{Format: "directory"}
	var files []string
	others := 0
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		switch strings.ToLower(filepath.Ext(d.Name())) {
		case ".json", ".csv", ".txt", ".list", ".lst", ".ioc", ".iocs":
			files = append(files, p)
		default:
			others++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	if others > 0 {
		all.Notes = append(all.Notes, fmt.Sprintf("%d file(s) not read: not .json, .csv, .txt, .list, .lst or .ioc(s)", others))
	}
	for _, f := range files {
		data, err := l.readFile(f)
		if err != nil {
			return nil, err
		}
		r, err := Parse(data, name)
		if err != nil {
			all.Notes = append(all.Notes, fmt.Sprintf("%s: skipped: %v", f, err))
			continue
		}
		all.Merge(r)
	}
	return all, nil
}

func (l *Loader) readFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, l.limit()+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if int64(len(data)) > l.limit() {
		return nil, fmt.Errorf("%s: larger than %d bytes", p, l.limit())
	}
	return data, nil
}

// fetch GETs a URL.
func (l *Loader) fetch(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	client := l.HTTP
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Minute}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", u, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, l.limit()+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	if int64(len(data)) > l.limit() {
		return nil, fmt.Errorf("%s: larger than %d bytes", u, l.limit())
	}
	return data, nil
}

// loadURL reads a URL: a MISP feed when it ends in "/" or
// "manifest.json" and serves a manifest, any other format otherwise.
func (l *Loader) loadURL(ctx context.Context, u, name string) (*Result, error) {
	base := strings.TrimSuffix(u, "manifest.json")
	if strings.HasSuffix(base, "/") {
		if man, err := l.fetch(ctx, base+"manifest.json"); err == nil {
			if _, err := ParseMISPManifest(man); err == nil {
				return ReadMISPFeed(ctx, func(ctx context.Context, f string) ([]byte, error) {
					if f == "manifest.json" {
						return man, nil
					}
					return l.fetch(ctx, base+f)
				}, name)
			}
		}
	}
	data, err := l.fetch(ctx, u)
	if err != nil {
		return nil, err
	}
	r, err := Parse(data, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	return r, nil
}

// Parse reads one document in whichever format it is: a STIX bundle or
// object, a MISP event or a list of them, CSV, or a plain list.
func Parse(data []byte, source string) (*Result, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("empty")
	}
	switch trimmed[0] {
	case '{':
		// Which keys the top object has, without copying their values: a
		// MISP event may be hundreds of megabytes.
		var probe struct {
			Event, Attribute, Object, Type, Objects present
		}
		if err := json.Unmarshal(trimmed, &probe); err != nil {
			return nil, fmt.Errorf("bad JSON: %w", jsonErr(trimmed, err))
		}
		if probe.Event || probe.Attribute || probe.Object {
			return ParseMISPEvent(trimmed, source)
		}
		if probe.Type || probe.Objects {
			return ParseSTIX(trimmed, source)
		}
		if _, err := ParseMISPManifest(trimmed); err == nil {
			return nil, errors.New("a MISP feed manifest: import the feed's directory or URL")
		}
		return nil, errors.New("JSON, but neither STIX nor a MISP event")
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(trimmed, &items); err != nil {
			return nil, fmt.Errorf("bad JSON: %w", jsonErr(trimmed, err))
		}
		all := &Result{Format: "misp-events"}
		for i, it := range items {
			r, err := ParseMISPEvent(it, source)
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i+1, err)
			}
			all.Merge(r)
		}
		return all, nil
	}
	return ParseList(data, source)
}
