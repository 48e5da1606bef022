package sigma

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"go.yaml.in/yaml/v3"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Config maps rules' log sources onto Windows channels and event ids: the
// format of THOR's and SigmaHQ's CI configuration (logsources: entries of
// category/product/service with conditions on EventID, a rewrite to a
// service, the service's sources "WinEventLog:CHANNEL", field mappings).
type Config struct {
	Logsources map[string]lsEntry `yaml:"logsources"`
}

type lsEntry struct {
	Category      string            `yaml:"category"`
	Product       string            `yaml:"product"`
	Service       string            `yaml:"service"`
	Conditions    map[string]any    `yaml:"conditions"`
	Rewrite       Logsource         `yaml:"rewrite"`
	Sources       []string          `yaml:"sources"`
	FieldMappings map[string]string `yaml:"fieldmappings"`
}

// LoadConfig reads a log-source configuration file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Config
	if err := yaml.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// gate is where a rule applies: channels (lower case; none: any), event
// ids (none: any), and the renames of its fields for those events.
type gate struct {
	channels map[string]bool
	ids      map[uint32]bool
	fields   map[string]string
}

// gates returns the gates of a log source; ok is false when the
// configuration does not map it.
func (c *Config) gates(ls Logsource) ([]gate, bool) {
	channelsOf := func(product, service string) map[string]bool {
		out := map[string]bool{}
		for _, e := range c.Logsources {
			if e.Service == service && e.Category == "" && (e.Product == "" || product == "" || e.Product == product) {
				for _, s := range e.Sources {
					out[strings.ToLower(strings.TrimPrefix(s, "WinEventLog:"))] = true
				}
			}
		}
		return out
	}
	var out []gate
	switch {
	case ls.Category != "":
		for _, e := range c.Logsources {
			if e.Category != ls.Category || (e.Product != "" && ls.Product != "" && e.Product != ls.Product) {
				continue
			}
			g := gate{ids: eventIDs(e.Conditions["EventID"]), fields: e.FieldMappings}
			if e.Rewrite.Service != "" {
				g.channels = channelsOf(e.Rewrite.Product, e.Rewrite.Service)
			}
			out = append(out, g)
		}
	case ls.Service != "":
		ch := channelsOf(ls.Product, ls.Service)
		if len(ch) == 0 {
			return nil, false
		}
		ids := map[uint32]bool{}
		for _, e := range c.Logsources {
			if e.Service == ls.Service && e.Category == "" {
				for id := range eventIDs(e.Conditions["EventID"]) {
					ids[id] = true
				}
			}
		}
		out = append(out, gate{channels: ch, ids: ids})
	case ls.Product != "":
		out = append(out, gate{})
	}
	return out, len(out) > 0
}

// eventIDs reads the EventID condition: a number or a list of them.
func eventIDs(v any) map[uint32]bool {
	out := map[uint32]bool{}
	add := func(x any) {
		if n, err := strconv.ParseUint(fmt.Sprint(x), 10, 32); err == nil {
			out[uint32(n)] = true
		}
	}
	switch x := v.(type) {
	case nil:
	case []any:
		for _, y := range x {
			add(y)
		}
	default:
		add(x)
	}
	return out
}

// Engine runs compiled rules over Windows events.
type Engine struct {
	// byChannel indexes the gated rules by channel, then by event id (0:
	// rules for any event id of the channel).
	byChannel map[string]map[uint32]*prefiltered
	anywhere  *prefiltered
	pool      sync.Pool // of *HostEvent
	// Unfiltered evaluates every gated rule (tests compare it with the
	// prefilter).
	Unfiltered bool
	lists      map[*prefiltered][]*gated
}

// gated is a rule with one of its gates.
type gated struct {
	r *Rule
	g gate
}

// NewEngine indexes rules by the channels their log sources map to. A
// rule whose log source the configuration does not map is refused.
func NewEngine(rules []*Rule, cfg *Config) (*Engine, []error) {
	en := &Engine{byChannel: map[string]map[uint32]*prefiltered{}, lists: map[*prefiltered][]*gated{}}
	byChannel := map[string]map[uint32][]*gated{}
	var anywhere []*gated
	en.pool.New = func() any { return &HostEvent{} }
	var errs []error
	for _, r := range rules {
		if r.Corr != nil {
			continue // correlations read what their rules match
		}
		if _, _, ok := networkGate(r.Logsource); ok {
			continue // run over the network tables (network.go)
		}
		gs, ok := cfg.gates(r.Logsource)
		if !ok {
			errs = append(errs, &LoadError{File: r.File, Reason: fmt.Sprintf("rule %s: log source %+v is not mapped to Windows channels", r.ID, r.Logsource)})
			continue
		}
		for _, g := range gs {
			gr := &gated{r: r, g: g}
			if len(g.channels) == 0 {
				anywhere = append(anywhere, gr)
				continue
			}
			for ch := range g.channels {
				m := byChannel[ch]
				if m == nil {
					m = map[uint32][]*gated{}
					byChannel[ch] = m
				}
				if len(g.ids) == 0 {
					m[0] = append(m[0], gr)
				}
				for id := range g.ids {
					m[id] = append(m[id], gr)
				}
			}
		}
	}
	index := func(gs []*gated) *prefiltered {
		p := buildPrefilter(gs)
		en.lists[p] = gs
		return p
	}
	for ch, m := range byChannel {
		en.byChannel[ch] = map[uint32]*prefiltered{}
		for id, gs := range m {
			en.byChannel[ch][id] = index(gs)
		}
	}
	en.anywhere = index(anywhere)
	return en, errs
}

// Match calls fn for each rule that matches e (once per rule). It may be
// called from many goroutines at once.
func (en *Engine) Match(e *event.HostEvent, fn func(*Rule)) {
	ev := en.pool.Get().(*HostEvent)
	ev.reset(e)
	matched := ev.matched[:0]
	one := func(g *gated) {
		if (len(g.g.ids) > 0 && !g.g.ids[e.EventID]) || slices.Contains(matched, g.r) {
			return
		}
		ev.rename = g.g.fields
		if g.r.cond.eval(ev, g.r) {
			matched = append(matched, g.r)
			fn(g.r)
		}
	}
	try := func(p *prefiltered) {
		if p == nil {
			return
		}
		if en.Unfiltered {
			for _, g := range en.lists[p] {
				one(g)
			}
			return
		}
		ev.rename = nil
		ev.seen = p.candidates(ev, ev.seen, one)
	}
	if m := en.byChannel[ev.fold(e.Channel)]; m != nil {
		try(m[e.EventID])
		if e.EventID != 0 {
			try(m[0])
		}
	}
	try(en.anywhere)
	ev.matched = matched[:0]
	ev.e = nil
	en.pool.Put(ev)
}

// HostEvent adapts an event.HostEvent to Event: its data fields by name
// (also with spaces taken out: "Threat Name" is ThreatName) and its System
// fields by the names Sigma rules use (EventID, Channel, Provider_Name,
// Computer, ...). It keeps each value's lower-case form once computed.
type HostEvent struct {
	e       *event.HostEvent
	rename  map[string]string // rule field -> event field, for the gate in use
	low     []string          // lower-case values of e.Fields, once computed
	lowOK   []bool
	matched []*Rule
	seen    []bool            // the prefilter's scratch
	ids     map[uint32]string // event ids as text, kept across events
	// arena holds the lower-case values of the event being matched,
	// reused from one event to the next so that matching allocates
	// nothing: they are compared, never kept (Get returns the values as
	// written).
	arena []byte
}

// NewEvent returns the Event view of a host event.
func NewEvent(e *event.HostEvent) *HostEvent {
	h := &HostEvent{}
	h.reset(e)
	return h
}

func (h *HostEvent) reset(e *event.HostEvent) {
	h.e, h.rename = e, nil
	n := len(e.Fields)
	if cap(h.low) < n {
		h.low, h.lowOK = make([]string, n), make([]bool, n)
	}
	h.low, h.lowOK = h.low[:n], h.lowOK[:n]
	clear(h.lowOK)
	h.arena = h.arena[:0]
}

// fold returns s in lower case, as strings.ToLower does, written into the
// event's arena when it differs from s.
func (h *HostEvent) fold(s string) string {
	i := 0
	for i < len(s) && s[i] < utf8.RuneSelf && (s[i] < 'A' || s[i] > 'Z') {
		i++
	}
	if i == len(s) {
		return s
	}
	start := len(h.arena)
	h.arena = append(h.arena, s[:i]...)
	for _, r := range s[i:] {
		if r < utf8.RuneSelf {
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			h.arena = append(h.arena, byte(r)) //nolint:gosec // G115: r is ASCII here
			continue
		}
		h.arena = utf8.AppendRune(h.arena, unicode.ToLower(r))
	}
	b := h.arena[start:]
	return unsafe.String(unsafe.SliceData(b), len(b)) //nolint:gosec // G103: b is the arena's, valid until reset (see arena)
}

// field returns the index of a data field, or -1.
func (h *HostEvent) field(name string) int {
	for i := range h.e.Fields {
		if h.e.Fields[i].Name == name {
			return i
		}
	}
	if !strings.Contains(name, " ") {
		for i, f := range h.e.Fields {
			if strings.Contains(f.Name, " ") && equalNoSpaces(f.Name, name) {
				return i
			}
		}
	}
	return -1
}

// equalNoSpaces reports whether spaced, its spaces taken out, is name.
func equalNoSpaces(spaced, name string) bool {
	j := 0
	for i := 0; i < len(spaced); i++ {
		if spaced[i] == ' ' {
			continue
		}
		if j >= len(name) || spaced[i] != name[j] {
			return false
		}
		j++
	}
	return j == len(name)
}

func (h *HostEvent) lowAt(i int) string {
	if !h.lowOK[i] {
		h.low[i], h.lowOK[i] = h.fold(h.e.Fields[i].Value), true
	}
	return h.low[i]
}

// Get implements Event.
func (h *HostEvent) Get(name string) (string, bool) {
	v, _, ok := h.GetFold(name)
	return v, ok
}

// GetFold returns a field's value as written and in lower case.
func (h *HostEvent) GetFold(name string) (string, string, bool) {
	if to, ok := h.rename[name]; ok {
		name = to
	}
	if i := h.field(name); i >= 0 {
		return h.e.Fields[i].Value, h.lowAt(i), true
	}
	v, ok := h.system(name)
	return v, h.fold(v), ok
}

// system returns the System fields by their Sigma names.
func (h *HostEvent) system(name string) (string, bool) {
	e := h.e
	switch name {
	case "EventID":
		t, ok := h.ids[e.EventID]
		if !ok {
			if h.ids == nil || len(h.ids) > 4096 {
				h.ids = map[uint32]string{}
			}
			t = strconv.FormatUint(uint64(e.EventID), 10)
			h.ids[e.EventID] = t
		}
		return t, true
	case "Channel":
		return e.Channel, true
	case "Provider_Name", "Provider":
		return e.Provider, true
	case "Computer":
		return e.Computer, true
	case "EventRecordID":
		return strconv.FormatUint(e.RecordID, 10), true
	case "Level":
		return strconv.Itoa(int(e.Level)), true
	case "Task":
		return strconv.Itoa(int(e.Task)), true
	case "Keywords":
		return "0x" + strconv.FormatUint(e.Keywords, 16), true
	case "Execution_ProcessID":
		return strconv.FormatUint(uint64(e.ProcessID), 10), true
	case "Execution_ThreadID":
		return strconv.FormatUint(uint64(e.ThreadID), 10), true
	case "Security_UserID":
		return e.UserID, e.UserID != ""
	}
	return "", false
}

// Each implements Event.
func (h *HostEvent) Each(fn func(string) bool) {
	for _, f := range h.e.Fields {
		if !fn(f.Value) {
			return
		}
	}
}

// EachFold calls fn with every data value as written and in lower case.
func (h *HostEvent) EachFold(fn func(raw, low string) bool) {
	for i := range h.e.Fields {
		if !fn(h.e.Fields[i].Value, h.lowAt(i)) {
			return
		}
	}
}
