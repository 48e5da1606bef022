package app

import (
	"maps"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store/settled"
)

// Under dwell serve a hunt does not run again a detector whose inputs have
// not changed since it last ran: its findings over all history could not
// be different. The served store counts, per input, the writes that
// changed it (a generation: records of a kind stored, a sensor deleted,
// indicators or sightings changed, the stored allow-list changed), and the
// memo keeps each detector's findings with the generations they were
// computed from. A reloaded configuration forgets them all. Which inputs
// each detector reads is detectorInputs, documented in docs/serve.md.

// Inputs besides the record kinds.
const (
	inputIntel = "intel" // indicators and sightings
	inputAllow = "allow" // the allow-list entries kept in the store
)

// detectorInputs returns what a detector's findings depend on, besides
// the configuration. It errs on the side of more: a detector that may
// read a table (through the support its findings get, or rules that
// reach the network tables) lists it. Only iocmatch reads intel; host
// reads Windows events, suricata IDS alerts, sigma Windows events and,
// for its network rules, the network tables.
func detectorInputs(name string) []string {
	var network, all []string
	for _, k := range event.Kinds {
		all = append(all, k.String())
		if k != event.KindWinlog && k != event.KindAlert {
			network = append(network, k.String())
		}
	}
	switch name {
	case "host":
		return []string{event.KindWinlog.String(), inputAllow}
	case "suricata":
		return []string{event.KindAlert.String(), inputAllow}
	case "iocmatch":
		return append(all, inputIntel, inputAllow)
	case "sigma":
		return append(all, inputAllow)
	default:
		return append(network, inputAllow)
	}
}

// generations counts the changes of each input.
type generations struct {
	mu sync.Mutex
	n  map[string]uint64
}

func (g *generations) bump(inputs ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n == nil {
		g.n = map[string]uint64{}
	}
	for _, in := range inputs {
		g.n[in]++
	}
}

// bumpBatch bumps the kinds a batch stores records of.
func (g *generations) bumpBatch(b *event.Batch) {
	var kinds []string
	for _, k := range event.Kinds {
		if b.Count(k) > 0 {
			kinds = append(kinds, k.String())
		}
	}
	if len(kinds) > 0 {
		g.bump(kinds...)
	}
}

// bumpAll marks every input changed.
func (g *generations) bumpAll() {
	ins := []string{inputIntel, inputAllow}
	for _, k := range event.Kinds {
		ins = append(ins, k.String())
	}
	g.bump(ins...)
}

func (g *generations) snapshot() map[string]uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.n)
}

// memo keeps each detector's last findings over all history, the
// incremental detectors' tallies, and the settled answers of the
// aggregate queries (settled.Kept).
type memo struct {
	gens    generations
	tallies tallies
	settled settled.Kept
	mu      sync.Mutex
	runs    map[string]memoRun
	// counter counts detector runs by how they were had (nil: not
	// counted).
	counter *prometheus.CounterVec
	// settledCounter counts aggregate queries by how they were
	// answered (nil: not counted).
	settledCounter *prometheus.CounterVec
}

// countSettled counts how a hunt's aggregate queries were answered:
// merged with kept settled history, reading it to keep it, extending it
// over the days the cut moved over, or passed to the store whole.
func (m *memo) countSettled(merged, read, extended, passed int64) {
	if m.settledCounter != nil {
		m.settledCounter.WithLabelValues("merged").Add(float64(merged))
		m.settledCounter.WithLabelValues("settled_read").Add(float64(read))
		m.settledCounter.WithLabelValues("extended").Add(float64(extended))
		m.settledCounter.WithLabelValues("passed").Add(float64(passed))
	}
}

// count counts one run of a detector: run, reused, tallied or tally_read.
func (m *memo) count(detector, how string) {
	if m.counter != nil {
		m.counter.WithLabelValues(detector, how).Inc()
	}
}

type memoRun struct {
	at       map[string]uint64
	findings []detect.Finding
}

// lookup returns the findings a detector's job gave when its inputs were
// as they are in now, if it ran then.
func (m *memo) lookup(key, detector string, now map[string]uint64) ([]detect.Finding, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.runs[key]
	if !ok {
		return nil, false
	}
	for _, in := range detectorInputs(detector) {
		if r.at[in] != now[in] {
			return nil, false
		}
	}
	return cloneFindings(r.findings), true
}

func (m *memo) keep(key string, at map[string]uint64, fs []detect.Finding) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.runs == nil {
		m.runs = map[string]memoRun{}
	}
	m.runs[key] = memoRun{at: at, findings: cloneFindings(fs)}
}

// forget drops every kept run and tally (the configuration changed).
func (m *memo) forget() {
	m.tallies.reset()
	m.settled.Reset()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runs = nil
}

// cloneFindings copies findings deeply enough that what a hunt does to
// its findings after the detectors (grouping, merging, marking flow
// records) never reaches the kept ones.
func cloneFindings(fs []detect.Finding) []detect.Finding {
	out := slices.Clone(fs)
	for i := range out {
		f := &out[i]
		f.Evidence = maps.Clone(f.Evidence)
		f.Components = maps.Clone(f.Components)
		f.Attack = slices.Clone(f.Attack)
		f.Infra = slices.Clone(f.Infra)
		f.Accounts = slices.Clone(f.Accounts)
	}
	return out
}
