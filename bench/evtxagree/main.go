// Package main is the evtxagree command, which compares dwell's EVTX
// reader with libevtx's evtxexport (Debian libevtx-utils) on every .evtx
// file under the given directories: which records each reads, and for the
// records both read, the EventID, the time created, the record identifier,
// the computer, the channel and every EventData/UserData value.
//
// Values are compared after normalising the two renderings of the same
// number or identifier: evtxexport writes hexadecimal integers zero-padded
// to their width (0x00000000000003e7) where Windows and dwell write 0x3e7,
// and GUIDs in either case. Records dwell carves from unused chunk space
// are left out, as evtxexport's default mode leaves out recovered records.
//
//	go run ./bench/evtxagree DIR...
package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest/evtx"
)

// theirs is one record as evtxexport writes it.
type theirs struct {
	System struct {
		EventID     string `xml:"EventID"`
		TimeCreated struct {
			SystemTime string `xml:"SystemTime,attr"`
		} `xml:"TimeCreated"`
		EventRecordID uint64 `xml:"EventRecordID"`
		Channel       string `xml:"Channel"`
		Computer      string `xml:"Computer"`
	} `xml:"System"`
	EventData struct {
		Inner []byte `xml:",innerxml"`
	} `xml:"EventData"`
	UserData struct {
		Inner []byte `xml:",innerxml"`
	} `xml:"UserData"`
}

type tally struct {
	files, filesFailed           int
	ours, theirs, both           int
	onlyOurs, onlyTheirs         int
	eventID, ts, computer, chann int
	fields, fieldsDiffer         int
	fieldsMissing, fieldsExtra   int
	unparsable                   int
	examples                     map[string][]string
}

func (t *tally) example(kind, s string) {
	if len(t.examples[kind]) < 6 {
		t.examples[kind] = append(t.examples[kind], s)
	}
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: evtxagree DIR...")
		os.Exit(2)
	}
	if _, err := exec.LookPath("evtxexport"); err != nil {
		fmt.Fprintln(os.Stderr, "evtxagree: evtxexport not found (apt-get install libevtx-utils)")
		os.Exit(1)
	}
	t := &tally{examples: map[string][]string{}}
	for _, dir := range os.Args[1:] {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(strings.ToLower(p), ".evtx") {
				return err
			}
			compare(t, p)
			return nil
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "evtxagree:", err)
			os.Exit(1)
		}
	}
	fmt.Printf("files %d (evtxexport stopped early, unable to export, on %d)\n", t.files, t.filesFailed)
	fmt.Printf("records: dwell %d, evtxexport %d, both %d, only dwell %d, only evtxexport %d, evtxexport XML not parsable %d\n",
		t.ours, t.theirs, t.both, t.onlyOurs, t.onlyTheirs, t.unparsable)
	fmt.Printf("of the records both read: EventID differs %d, time %d, computer %d, channel %d\n", t.eventID, t.ts, t.computer, t.chann)
	fmt.Printf("data fields compared %d: value differs %d, only evtxexport %d, only dwell %d\n", t.fields, t.fieldsDiffer, t.fieldsMissing, t.fieldsExtra)
	kinds := make([]string, 0, len(t.examples))
	for k := range t.examples {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Printf("\n%s:\n", k)
		for _, e := range t.examples[k] {
			fmt.Println("  " + e)
		}
	}
}

// key identifies a record: files merged from several logs repeat record
// identifiers.
type key struct {
	id      uint64
	channel string
}

func compare(t *tally, path string) {
	t.files++
	ours := map[key]*event.HostEvent{}
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	fi, _ := f.Stat()
	rd := evtx.Reader{File: path}
	_, err = rd.ReadAll(context.Background(), f, fi.Size(), 1, func(e *event.HostEvent) error {
		if !e.Carved {
			c := *e
			ours[key{e.RecordID, e.Channel}] = &c
		}
		return nil
	})
	_ = f.Close() // read-only
	if err != nil && !errors.Is(err, evtx.ErrNotEVTX) {
		fmt.Fprintln(os.Stderr, path, err)
	}
	t.ours += len(ours)
	out, err := exec.CommandContext(context.Background(), "evtxexport", "-f", "xml", path).Output()
	if err != nil {
		// evtxexport stops at the first record it cannot render ("Unable
		// to export file"); what it wrote before is compared.
		t.filesFailed++
	}
	seen := map[key]bool{}
	for _, part := range bytes.Split(out, []byte("\n<Event ")) {
		i := bytes.Index(part, []byte("<System>"))
		if i < 0 {
			continue
		}
		var th theirs
		if err := xml.Unmarshal(append([]byte("<Event><System>"), part[i+len("<System>"):]...), &th); err != nil {
			t.unparsable++
			continue
		}
		t.theirs++
		id := th.System.EventRecordID
		k := key{id, th.System.Channel}
		seen[k] = true
		o, ok := ours[k]
		if !ok {
			t.onlyTheirs++
			t.example("only evtxexport", fmt.Sprintf("%s record %d", filepath.Base(path), id))
			continue
		}
		t.both++
		where := fmt.Sprintf("%s record %d", filepath.Base(path), id)
		if eid, _ := strconv.ParseUint(strings.TrimSpace(th.System.EventID), 10, 32); uint32(eid) != o.EventID {
			t.eventID++
			t.example("EventID", fmt.Sprintf("%s: dwell %d, evtxexport %s", where, o.EventID, th.System.EventID))
		}
		if tt, err := time.Parse(time.RFC3339Nano, th.System.TimeCreated.SystemTime); err != nil || !tt.Equal(o.TS) {
			t.ts++
			t.example("time", fmt.Sprintf("%s: dwell %s, evtxexport %s", where, o.TS.Format(time.RFC3339Nano), th.System.TimeCreated.SystemTime))
		}
		if th.System.Computer != o.Computer {
			t.computer++
			t.example("computer", fmt.Sprintf("%s: dwell %q, evtxexport %q", where, o.Computer, th.System.Computer))
		}
		if th.System.Channel != o.Channel {
			t.chann++
			t.example("channel", fmt.Sprintf("%s: dwell %q, evtxexport %q", where, o.Channel, th.System.Channel))
		}
		fields := dataFields(th.EventData.Inner)
		fields = append(fields, dataFields(th.UserData.Inner)...)
		compareFields(t, where, fields, o.Fields)
	}
	for k := range ours {
		if !seen[k] {
			t.onlyOurs++
			t.example("only dwell", fmt.Sprintf("%s record %d", filepath.Base(path), k.id))
		}
	}
}

// dataFields reads the leaf elements of an EventData or UserData section:
// Data elements by their Name, others by their element name.
func dataFields(inner []byte) []event.Field {
	var out []event.Field
	d := xml.NewDecoder(bytes.NewReader(inner))
	d.Strict = false
	type open struct {
		name string
		text strings.Builder
		kids bool
	}
	var stack []*open
	for {
		tok, err := d.Token()
		if err != nil {
			return out
		}
		switch v := tok.(type) {
		case xml.StartElement:
			if len(stack) > 0 {
				stack[len(stack)-1].kids = true
			}
			o := &open{name: v.Name.Local}
			if v.Name.Local == "Data" {
				for _, a := range v.Attr {
					if a.Name.Local == "Name" {
						o.name = a.Value
					}
				}
			}
			stack = append(stack, o)
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(v)
			}
		case xml.EndElement:
			o := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if !o.kids {
				out = append(out, event.Field{Name: o.name, Value: o.text.String()})
			}
		}
	}
}

func compareFields(t *tally, where string, th, ours []event.Field) {
	used := make([]bool, len(ours))
	for _, f := range th {
		t.fields++
		found := false
		for i, o := range ours {
			if used[i] || o.Name != f.Name {
				continue
			}
			used[i], found = true, true
			if norm(o.Value) != norm(f.Value) {
				t.fieldsDiffer++
				t.example("value of "+f.Name, fmt.Sprintf("%s: dwell %.80q, evtxexport %.80q", where, o.Value, f.Value))
			}
			break
		}
		if !found {
			t.fieldsMissing++
			t.example("field only evtxexport", fmt.Sprintf("%s: %s=%.60q", where, f.Name, f.Value))
		}
	}
	for i, o := range ours {
		if !used[i] {
			t.fieldsExtra++
			t.example("field only dwell", fmt.Sprintf("%s: %s=%.60q", where, o.Name, o.Value))
		}
	}
}

// norm puts the two renderings of one value in one form: numbers in
// decimal (evtxexport writes a size_t in decimal, Windows and dwell in
// hexadecimal; evtxexport pads hexadecimal numbers), times at their
// precision, text in lower case with line ends as \n and without
// surrounding space.
func norm(s string) string {
	s = strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
	if len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") {
		if v, err := strconv.ParseUint(s[2:], 16, 64); err == nil {
			return strconv.FormatUint(v, 10)
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && strings.ContainsAny(s, ".eE") {
		return strconv.FormatFloat(f, 'g', 6, 64)
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC().Format(time.RFC3339Nano)
	}
	return strings.ToLower(s)
}
