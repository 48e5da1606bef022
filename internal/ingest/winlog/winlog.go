// Package winlog reads Windows events exported as JSON lines, in the shapes
// investigators receive them, into event.HostEvent — the model the EVTX
// reader (ingest/evtx) fills too:
//
//   - flat objects with the System fields and the event data side by side:
//     NXLog's im_msvistalog output (EventTime, Hostname, SourceName,
//     RecordNumber, ...), the OTRF Security Datasets (Mordor) built from it,
//     and dwell's own scenario (TimeCreated, Computer, Provider, ...);
//   - Winlogbeat 7+ and Elastic Agent (ECS): winlog.channel,
//     winlog.event_id, winlog.event_data, ...; and Winlogbeat 6: log_name,
//     event_id, event_data at the top;
//   - evtx_dump's JSON (the Rust evtx crate, used by Chainsaw and
//     Hayabusa): Event.System and Event.EventData.
//
// A line that is not a JSON object, or has no event identifier, is skipped,
// counted and reported with its file and line; the lines around it are kept.
package winlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
)

// FormatName names the format in reports and the ingest ledger.
const FormatName = "winlog-json"

// Formats returns the JSON Windows event format for ingest.
func Formats() []ingest.Format {
	return []ingest.Format{{Name: FormatName, Detect: detect, Open: open}}
}

// detect claims JSON lines whose first object (as far as the head holds
// it) names a Windows event id, or Winlogbeat, in one of the shapes the
// package reads.
func detect(in *ingest.Input) bool {
	l := in.Head
	if i := bytes.IndexByte(l, '\n'); i >= 0 {
		l = l[:i]
	}
	l = bytes.TrimSpace(l)
	if len(l) == 0 || l[0] != '{' {
		return false
	}
	for _, k := range []string{`"EventID"`, `"event_id"`, `"winlog"`, `"winlogbeat"`} {
		if bytes.Contains(l, []byte(k)) {
			return true
		}
	}
	return bytes.Contains(l, []byte(`"Event"`)) && bytes.Contains(l, []byte(`"System"`))
}

type source struct {
	in   *ingest.Input
	lr   *ingest.LineReader
	pos  ingest.Position
	rep  ingest.Report
	done bool
}

func open(r io.Reader, in *ingest.Input) (ingest.Source, error) {
	s := &source{in: in, lr: ingest.NewLineReader(r, in.Resume.Offset, in.Before), pos: in.Resume}
	s.rep.Format = FormatName
	s.rep.Kinds = []event.Kind{event.KindWinlog}
	return s, nil
}

// Next implements ingest.Source.
func (s *source) Next(ctx context.Context, b *event.Batch, max int) error {
	if s.done {
		return io.EOF
	}
	err := ingest.ReadLines(ctx, s.lr, s.in, &s.pos, &s.rep, max, func(line string, start int64) { s.take(b, line, start) }, s.bad)
	s.done = errors.Is(err, io.EOF)
	return err
}

// take decodes one line into b.
func (s *source) take(b *event.Batch, line string, start int64) {
	if strings.TrimSpace(line) == "" {
		return
	}
	e, err := Decode([]byte(line))
	if err != nil {
		s.bad(start, err.Error())
		return
	}
	e.Src = event.Source{Sensor: s.in.Sensor, File: s.in.Path, Line: s.pos.Line}
	b.Host = append(b.Host, e)
	s.rep.Rows++
}

func (s *source) bad(start int64, why string) {
	s.rep.Bad++
	if len(s.rep.Errors) < ingest.MaxParseErrors {
		s.rep.Errors = append(s.rep.Errors, ingest.ParseError{File: s.in.Path, Line: s.pos.Line, Offset: start, Reason: why})
	}
}

// Position implements ingest.Source.
func (s *source) Position() ingest.Position { return s.pos }

// Report implements ingest.Source.
func (s *source) Report() ingest.Report { return s.rep }

// member is one member of a JSON object, in document order.
type member struct {
	key string
	raw json.RawMessage
}

// object returns the members of a JSON object, in document order; ok is
// false when raw is not an object. raw must be valid JSON (Decode checks
// the whole line once with json.Valid): the scan only finds boundaries.
func object(raw []byte) ([]member, bool, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, false, nil
	}
	var out []member
	i := skipSpace(raw, 1)
	if i < len(raw) && raw[i] == '}' {
		return out, true, nil
	}
	for i < len(raw) {
		if raw[i] != '"' {
			return nil, true, errors.New("malformed object")
		}
		end := skipString(raw, i)
		key, err := unquote(raw[i:end])
		if err != nil {
			return nil, true, err
		}
		i = skipSpace(raw, end)
		if i >= len(raw) || raw[i] != ':' {
			return nil, true, errors.New("malformed object")
		}
		i = skipSpace(raw, i+1)
		vend := skipValue(raw, i)
		out = append(out, member{key, raw[i:vend]})
		i = skipSpace(raw, vend)
		if i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
			continue
		}
		break
	}
	return out, true, nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] ('"').
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\n' && b[i] != '\t' && b[i] != '\r' {
		i++
	}
	return i
}

// unquote returns the text of a JSON string literal (the line was
// validated whole: the escapes are well formed). An unpaired surrogate
// becomes U+FFFD, as encoding/json does.
func unquote(q []byte) (string, error) {
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		return "", errors.New("not a JSON string")
	}
	q = q[1 : len(q)-1]
	i := bytes.IndexByte(q, '\\')
	if i < 0 {
		return string(q), nil
	}
	out := make([]byte, 0, len(q))
	out = append(out, q[:i]...)
	for i < len(q) {
		c := q[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(q) {
			return "", errors.New("a JSON string ends in a backslash")
		}
		switch e := q[i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, n := hex4(q[i+2:])
			if n == 0 {
				return "", errors.New("a bad \\u escape")
			}
			i += 2 + n
			if utf16.IsSurrogate(r) {
				if i+1 < len(q) && q[i] == '\\' && q[i+1] == 'u' {
					if r2, n2 := hex4(q[i+2:]); n2 > 0 {
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							out = utf8.AppendRune(out, d)
							i += 2 + n2
							continue
						}
					}
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			return "", fmt.Errorf("a bad escape \\%c", e)
		}
		i += 2
	}
	return string(out), nil
}

// hex4 reads the four hex digits of a \u escape; n is 0 when they are not.
func hex4(b []byte) (rune, int) {
	if len(b) < 4 {
		return 0, 0
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, 0
		}
	}
	return r, 4
}

// get returns the member named key.
func get(ms []member, key string) (json.RawMessage, bool) {
	for _, m := range ms {
		if m.key == key {
			return m.raw, true
		}
	}
	return nil, false
}

// text returns a JSON value as text: strings unquoted, numbers and
// booleans as written, null as "" (ok false), objects and arrays compact.
func text(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", false
	}
	if raw[0] == '"' {
		if s, err := unquote(raw); err == nil {
			return s, true
		}
	}
	if raw[0] == '{' || raw[0] == '[' {
		var b bytes.Buffer
		if json.Compact(&b, raw) == nil {
			return b.String(), true
		}
	}
	return string(raw), true
}

// str returns the text of the first of keys present.
func str(ms []member, keys ...string) string {
	for _, k := range keys {
		if raw, ok := get(ms, k); ok {
			if s, ok := text(raw); ok {
				return s
			}
		}
	}
	return ""
}

// num reads a decimal or 0x-hexadecimal number from the first of keys
// present; 0 when absent or not a number.
func num(ms []member, keys ...string) uint64 {
	s := strings.TrimSpace(str(ms, keys...))
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		v, _ := strconv.ParseUint(h, 16, 64)
		return v
	}
	v, _ := strconv.ParseUint(s, 10, 64)
	return v
}

// timeLayouts are the time forms exports use: RFC 3339 (any precision),
// and the space-separated forms of NXLog and Sysmon.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00"}

func parseTime(s string) (time.Time, bool) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// skipFlat are the members of a flat export that are not event data: the
// System fields (read into HostEvent's own fields) and what the shipper
// added (rendered message, receive time, shipper metadata).
var skipFlat = map[string]bool{
	"EventTime": true, "TimeCreated": true, "@timestamp": true, "@version": true, "EventReceivedTime": true,
	"EventID": true, "Channel": true, "Provider": true, "SourceName": true, "ProviderName": true, "ProviderGuid": true,
	"Computer": true, "Hostname": true, "EventRecordID": true, "RecordNumber": true, "Level": true, "Task": true,
	"Opcode": true, "OpcodeValue": true, "Keywords": true, "Version": true, "ExecutionProcessID": true, "ExecutionThreadID": true,
	"Message": true, "EventType": true, "Severity": true, "SeverityValue": true, "SourceModuleName": true, "SourceModuleType": true,
	"Category": true, "ActivityID": true, "RelatedActivityID": true, "UserID": true, "AccountName": true, "AccountType": true,
	"Domain": true, "host": true, "port": true, "tags": true, "beat": true, "agent": true, "ecs": true, "log": true,
}

// Decode reads one Windows event from a JSON object in any of the shapes
// the package reads.
func Decode(line []byte) (event.HostEvent, error) {
	var e event.HostEvent
	if !json.Valid(line) {
		return e, errors.New("not valid JSON")
	}
	ms, isObj, err := object(line)
	if err != nil {
		return e, fmt.Errorf("not JSON: %w", err)
	}
	if !isObj {
		return e, errors.New("not a JSON object")
	}
	switch {
	case has(ms, "winlog"):
		err = ecs(&e, ms)
	case has(ms, "Event"):
		err = evtxDump(&e, ms)
	case has(ms, "event_data") || has(ms, "log_name"):
		err = beat6(&e, ms)
	default:
		err = flat(&e, ms)
	}
	if err != nil {
		return e, err
	}
	if e.TS.IsZero() {
		return e, errors.New("no event time (TimeCreated, EventTime or @timestamp)")
	}
	return e, nil
}

func has(ms []member, key string) bool { _, ok := get(ms, key); return ok }

// eventID reads an event id that must be there.
func eventID(ms []member, keys ...string) (uint32, error) {
	s := strings.TrimSpace(str(ms, keys...))
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("no event id (%s): %q", strings.Join(keys, ", "), s)
	}
	return uint32(v), nil
}

func flat(e *event.HostEvent, ms []member) error {
	id, err := eventID(ms, "EventID")
	if err != nil {
		return err
	}
	e.EventID = id
	e.TS, _ = parseTime(str(ms, "TimeCreated", "EventTime", "@timestamp"))
	e.Channel = str(ms, "Channel")
	e.Provider = str(ms, "Provider", "SourceName", "ProviderName")
	e.Computer = str(ms, "Computer", "Hostname")
	e.RecordID = num(ms, "EventRecordID", "RecordNumber")
	e.Level = uint8(min(num(ms, "Level"), 255))
	e.Task = uint16(min(num(ms, "Task"), 65535))
	e.Opcode = uint8(min(num(ms, "OpcodeValue", "Opcode"), 255))
	e.Keywords = num(ms, "Keywords")
	e.UserID = str(ms, "UserID")
	e.ProcessID = uint32(min(num(ms, "ExecutionProcessID"), 1<<32-1))
	e.ThreadID = uint32(min(num(ms, "ExecutionThreadID"), 1<<32-1))
	for _, m := range ms {
		if skipFlat[m.key] {
			continue
		}
		addField(e, m.key, m.raw)
	}
	return nil
}

// addField appends one event data member; a nested object's members
// become fields of their own (UserData's shape).
func addField(e *event.HostEvent, key string, raw json.RawMessage) {
	if inner, ok, _ := object(raw); ok {
		for _, m := range inner {
			addField(e, m.key, m.raw)
		}
		return
	}
	if v, ok := text(raw); ok {
		e.Fields = append(e.Fields, event.Field{Name: key, Value: v})
	}
}

func sub(ms []member, key string) []member {
	raw, ok := get(ms, key)
	if !ok {
		return nil
	}
	inner, _, _ := object(raw)
	return inner
}

func ecs(e *event.HostEvent, ms []member) error {
	w := sub(ms, "winlog")
	id, err := eventID(w, "event_id")
	if err != nil {
		if id, err = eventID(sub(ms, "event"), "code"); err != nil {
			return err
		}
	}
	e.EventID = id
	e.TS, _ = parseTime(str(ms, "@timestamp"))
	e.Channel = str(w, "channel")
	e.Provider = str(w, "provider_name")
	e.Computer = str(w, "computer_name")
	if e.Computer == "" {
		e.Computer = str(sub(ms, "host"), "name", "hostname")
	}
	e.RecordID = num(w, "record_id")
	e.UserID = str(sub(w, "user"), "identifier")
	p := sub(w, "process")
	e.ProcessID = uint32(min(num(p, "pid"), 1<<32-1))
	e.ThreadID = uint32(min(num(sub(p, "thread"), "id"), 1<<32-1))
	eventData(e, w)
	return nil
}

// eventData adds the members of a Beat's event_data and user_data.
func eventData(e *event.HostEvent, ms []member) {
	for _, section := range []string{"event_data", "user_data"} {
		for _, m := range sub(ms, section) {
			addField(e, m.key, m.raw)
		}
	}
}

func beat6(e *event.HostEvent, ms []member) error {
	id, err := eventID(ms, "event_id")
	if err != nil {
		return err
	}
	e.EventID = id
	e.TS, _ = parseTime(str(ms, "@timestamp"))
	e.Channel = str(ms, "log_name")
	e.Provider = str(ms, "source_name")
	e.Computer = str(ms, "computer_name")
	e.RecordID = num(ms, "record_number")
	e.ProcessID = uint32(min(num(ms, "process_id"), 1<<32-1))
	e.ThreadID = uint32(min(num(ms, "thread_id"), 1<<32-1))
	e.UserID = str(sub(ms, "user"), "identifier")
	eventData(e, ms)
	return nil
}

// evtxDump reads the evtx crate's JSON: attributes under "#attributes",
// element text under "#text" when the element has attributes too.
func evtxDump(e *event.HostEvent, ms []member) error {
	ev := sub(ms, "Event")
	sys := sub(ev, "System")
	if sys == nil {
		return errors.New("no Event.System")
	}
	attr := func(el []member, name string) string { return str(sub(el, "#attributes"), name) }
	idRaw, _ := get(sys, "EventID")
	idText, _ := text(idRaw)
	if inner, ok, _ := object(idRaw); ok {
		idText = str(inner, "#text")
	}
	id, err := strconv.ParseUint(strings.TrimSpace(idText), 10, 32)
	if err != nil {
		return fmt.Errorf("no event id (Event.System.EventID): %q", idText)
	}
	e.EventID = uint32(id)
	e.TS, _ = parseTime(attr(sub(sys, "TimeCreated"), "SystemTime"))
	e.Channel = str(sys, "Channel")
	e.Provider = attr(sub(sys, "Provider"), "Name")
	e.Computer = str(sys, "Computer")
	e.RecordID = num(sys, "EventRecordID")
	e.Level = uint8(min(num(sys, "Level"), 255))
	e.Task = uint16(min(num(sys, "Task"), 65535))
	e.Opcode = uint8(min(num(sys, "Opcode"), 255))
	e.Keywords = num(sys, "Keywords")
	e.UserID = attr(sub(sys, "Security"), "UserID")
	x := sub(sys, "Execution")
	e.ProcessID = uint32(min(num(sub(x, "#attributes"), "ProcessID"), 1<<32-1))
	e.ThreadID = uint32(min(num(sub(x, "#attributes"), "ThreadID"), 1<<32-1))
	for _, section := range []string{"EventData", "UserData"} {
		for _, m := range sub(ev, section) {
			if m.key == "#attributes" {
				continue
			}
			addField(e, m.key, m.raw)
		}
	}
	return nil
}
