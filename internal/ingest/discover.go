package ingest

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Candidate is a file found for ingest.
type Candidate struct {
	Path     string // absolute, cleaned
	Size     int64
	ModTime  time.Time
	Explicit bool // named on the command line, not found in a directory
}

// Discover expands paths into the files to ingest, sorted by path so that
// Zeek's dated directories come in time order. Directories are walked to any
// depth, following symbolic links (Zeek's current/ is often one) without
// looping. Hidden files and directories (names starting with '.') are left
// out. A path that does not exist is an error.
func Discover(paths []string) ([]Candidate, error) {
	seen := map[string]bool{}
	var out []Candidate
	add := func(path string, info fs.FileInfo, explicit bool) {
		if seen[path] || !info.Mode().IsRegular() {
			return
		}
		seen[path] = true
		out = append(out, Candidate{Path: path, Size: info.Size(), ModTime: info.ModTime(), Explicit: explicit})
	}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		info, err := os.Stat(abs)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", p, err)
		}
		if !info.IsDir() {
			add(abs, info, true)
			continue
		}
		if err := walk(abs, map[string]bool{}, func(path string, info fs.FileInfo) { add(path, info, false) }); err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// walk visits the regular files under dir, following symbolic links to
// directories once each (visited holds resolved directory paths).
func walk(dir string, visited map[string]bool, visit func(string, fs.FileInfo)) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("input %s: %w", dir, err)
	}
	if visited[real] {
		return nil
	}
	visited[real] = true
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading directory %s: %w", dir, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		info, err := os.Stat(path) // follows links
		if err != nil {
			continue // a dangling link or a file removed meanwhile (rotation)
		}
		if info.IsDir() {
			if err := walk(path, visited, visit); err != nil {
				return err
			}
			continue
		}
		visit(path, info)
	}
	return nil
}
