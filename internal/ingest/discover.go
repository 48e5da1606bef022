package ingest

import (
	"errors"
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
	// Err says why the input cannot be read at all (a directory it may
	// not list, a path that does not exist, a FIFO or a device named on
	// the command line): the run reports it failed and goes on.
	Err string
}

// Discover expands paths into the files to ingest, sorted by path so that
// Zeek's dated directories come in time order. Directories are walked to any
// depth, following symbolic links (Zeek's current/ is often one) without
// looping. Hidden files and directories (names starting with '.') are left
// out. What cannot be read — a path that does not exist, a directory it
// may not list (a root-only lost+found), something named that is not a
// regular file — is a Candidate with Err, never the end of the run.
func Discover(paths []string) ([]Candidate, error) {
	seen := map[string]bool{}
	var out []Candidate
	add := func(path string, info fs.FileInfo, explicit bool) {
		if seen[path] {
			return
		}
		if !info.Mode().IsRegular() {
			if explicit {
				seen[path] = true
				out = append(out, Candidate{Path: path, Explicit: true, Err: "not a regular file (" + fileKind(info.Mode()) + ")"})
			}
			return
		}
		seen[path] = true
		out = append(out, Candidate{Path: path, Size: info.Size(), ModTime: info.ModTime(), Explicit: explicit})
	}
	fail := func(path string, explicit bool, err error) {
		if !seen[path] {
			seen[path] = true
			out = append(out, Candidate{Path: path, Explicit: explicit, Err: err.Error()})
		}
	}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		info, err := os.Stat(abs)
		if err != nil {
			fail(abs, true, unwrapPath(err))
			continue
		}
		if !info.IsDir() {
			add(abs, info, true)
			continue
		}
		walk(abs, map[string]bool{}, func(path string, info fs.FileInfo) { add(path, info, false) },
			func(path string, err error) { fail(path, path == abs, err) })
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// unwrapPath drops the path an os error repeats: the candidate names it.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// fileKind names what a non-regular file is.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeDevice != 0 || m&fs.ModeCharDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return m.Type().String()
}

// walk visits the regular files under dir, following symbolic links to
// directories once each (visited holds resolved directory paths); a
// directory it cannot list goes to failed, and the walk goes on.
func walk(dir string, visited map[string]bool, visit func(string, fs.FileInfo), failed func(string, error)) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		failed(dir, fmt.Errorf("cannot follow it: %w", unwrapPath(err)))
		return
	}
	if visited[real] {
		return
	}
	visited[real] = true
	entries, err := os.ReadDir(dir)
	if err != nil {
		failed(dir, fmt.Errorf("cannot list the directory: %w", unwrapPath(err)))
		return
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
			walk(path, visited, visit, failed)
			continue
		}
		visit(path, info)
	}
}
