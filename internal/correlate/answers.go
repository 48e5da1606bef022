package correlate

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
)

// Answers are an incident's answers to the prosecutors' three questions
// beyond its infrastructure and first contact: what was taken, and who may
// be behind it (docs/attribution.md). They are hypotheses with their
// evidence, filled when the incident is shown; package attribution makes
// them.
type Answers struct {
	// Taken is what left for each destination of the infrastructure, most
	// bytes first.
	Taken []Taken `json:"taken"`
	// TakenBytes is the sum of Taken's bytes.
	TakenBytes int64 `json:"taken_bytes"`
	// HostActions are what the hosts' own events show of collection:
	// archives created, shares read, mailboxes exported.
	HostActions []HostAction `json:"host_actions,omitempty"`
	// PassiveDNS are the names the infrastructure's addresses had and the
	// addresses its names had, over all history.
	PassiveDNS []NameSeen `json:"passive_dns,omitempty"`
	// Hypotheses are the candidate actors, most likely first.
	Hypotheses []Hypothesis `json:"hypotheses"`
	// Catalogue says what the behavioural comparison was made against
	// ("" when no group catalogue is configured).
	Catalogue string `json:"catalogue,omitempty"`
	// Caveat is the warning every attribution carries.
	Caveat string `json:"caveat"`
	// Notes say what could not be answered and why.
	Notes []string `json:"notes,omitempty"`
}

// NameSeen is a name seen pointing at an address: in a DNS answer
// ("dns"), as a TLS server name ("ssl") or an HTTP host ("http").
type NameSeen struct {
	Log   string     `json:"log"`
	Name  string     `json:"name"`
	Addr  netip.Addr `json:"addr"`
	Count int64      `json:"count"`
	First time.Time  `json:"first"`
	Last  time.Time  `json:"last"`
}

// Taken is what the incident's hosts sent to one outside address.
type Taken struct {
	Dst   netip.Addr   `json:"dst"`
	Names []string     `json:"names,omitempty"` // server names and domains seen with it
	Hosts []netip.Addr `json:"hosts"`           // the internal hosts that sent
	// Bytes is the payload sent: the originator's bytes of connections the
	// hosts opened to it, the responder's of connections it opened to them.
	Bytes  int64      `json:"bytes"`
	Conns  int64      `json:"conns"`
	First  time.Time  `json:"first"`
	Last   time.Time  `json:"last"`
	PerDay []DayBytes `json:"per_day"`
	// Transfers are the records behind the bytes: every one that names a
	// file or a request, then the largest connections.
	Transfers []Transferred `json:"transfers"`
}

// Transferred is one record of data sent, with its provenance. Src and
// Dst are the record's own ends (the connection's originator and
// responder; for files, the sender and receiver); Bytes is what the
// incident's host sent in it.
type Transferred struct {
	At     time.Time  `json:"at"`
	Log    string     `json:"log"` // conn, http or files
	Src    netip.Addr `json:"src"`
	Dst    netip.Addr `json:"dst"`
	Port   uint16     `json:"port"`
	Bytes  int64      `json:"bytes"`
	Method string     `json:"method,omitempty"`
	Host   string     `json:"host,omitempty"`
	URI    string     `json:"uri,omitempty"`
	Name   string     `json:"filename,omitempty"`
	MIME   string     `json:"mime_type,omitempty"`
	MD5    string     `json:"md5,omitempty"`
	SHA1   string     `json:"sha1,omitempty"`
	SHA256 string     `json:"sha256,omitempty"`
	File   string     `json:"source_file"`
	Line   int64      `json:"source_line"`
}

// HostAction is one host event showing collection of data.
type HostAction struct {
	At       time.Time `json:"at"`
	Computer string    `json:"computer"`
	Account  string    `json:"account,omitempty"`
	What     string    `json:"what"`   // "archive created", "share read", "mailbox exported"
	Object   string    `json:"object"` // the file, share or mailbox
	EventID  int       `json:"event_id"`
	Count    int       `json:"count"` // events of the same action, object and computer; At is the first
	File     string    `json:"source_file"`
	Line     int64     `json:"source_line"`
}

// Hypothesis is a candidate actor for an incident, with the evidence for
// and against it. Score is in [0, 1]; it ranks, it does not prove.
type Hypothesis struct {
	Actor   string   `json:"actor"`
	ID      string   `json:"id,omitempty"` // the ATT&CK group id when known
	Aliases []string `json:"aliases,omitempty"`
	Country string   `json:"country,omitempty"` // where the sources place it
	Sponsor string   `json:"sponsor,omitempty"` // the state the sources suspect
	Score   float64  `json:"score"`
	// Intel is the share of the score from indicators attributed to the
	// actor; Behaviour the similarity of its known techniques.
	Intel     float64  `json:"intel"`
	Behaviour float64  `json:"behaviour"`
	For       []string `json:"for"`
	Against   []string `json:"against"`
	// Sources are the intel sources and catalogues behind it.
	Sources []string `json:"sources"`
}

// OriginSentence answers "where did it come from" in one sentence.
func (inc *Incident) OriginSentence() string {
	ips, domains := 0, 0
	countries, nets := map[string]bool{}, map[string]bool{}
	for _, x := range inc.Infrastructure {
		switch x.Kind {
		case "ip":
			ips++
		case "domain":
			domains++
		}
		if o := x.Origin; o != nil {
			if o.Country != "" {
				countries[o.Country] = true
			}
			if o.ASN != 0 {
				nets[fmt.Sprintf("AS%d %s", o.ASN, o.ASOrg)] = true
			}
		}
	}
	s := fmt.Sprintf("%d outside address(es) and %d domain(s)", ips, domains)
	if len(nets) > 0 {
		s += fmt.Sprintf(", in %s", strings.Join(slices.Sorted(maps.Keys(nets)), "; "))
	}
	if len(countries) > 0 {
		s += fmt.Sprintf(", registered in %s", strings.Join(slices.Sorted(maps.Keys(countries)), ", "))
	}
	if c := inc.FirstContact; c != nil {
		s += fmt.Sprintf("; first contact %s (%s)", c.At.UTC().Format("2006-01-02 15:04"), c.What())
		if before := inc.DwellStart.Sub(c.At); before >= 24*time.Hour {
			s += fmt.Sprintf(", %d days before the first finding", int(before.Hours()/24))
		}
	}
	return s + "."
}

// TakenSentence answers "what was taken" in one sentence.
func (ans *Answers) TakenSentence() string {
	if len(ans.Taken) == 0 && len(ans.HostActions) == 0 {
		return "nothing the logs show left for the infrastructure."
	}
	files := 0
	for _, t := range ans.Taken {
		for _, x := range t.Transfers {
			if x.Name != "" {
				files++
			}
		}
	}
	s := fmt.Sprintf("%s sent to %d destination(s) of the infrastructure", detect.HumanBytes(uint64(max(ans.TakenBytes, 0))), len(ans.Taken))
	if files > 0 {
		s += fmt.Sprintf(", %d named file(s) among the records", files)
	}
	if len(ans.HostActions) > 0 {
		s += fmt.Sprintf("; %d collection action(s) in the hosts' events", len(ans.HostActions))
	}
	return s + "."
}

// WhoSentence answers "who is behind it" in one sentence: the leading
// hypothesis and what it rests on.
func (ans *Answers) WhoSentence() string {
	if len(ans.Hypotheses) == 0 {
		return "no hypothesis: no matched indicator names an actor and no known group's techniques fit."
	}
	h := ans.Hypotheses[0]
	basis := "its techniques resemble this group's reported ones (behaviour only)"
	if h.Intel > 0 {
		basis = "indicators matched here are attributed to it by intel"
	}
	return fmt.Sprintf("the leading hypothesis is %s, score %.2f: %s.", h.Line(), h.Score, basis)
}

// Line names the hypothesis's actor with its id, country and sponsor.
func (h *Hypothesis) Line() string {
	s := h.Actor
	var more []string
	if h.ID != "" {
		more = append(more, h.ID)
	}
	if h.Country != "" {
		more = append(more, "placed in "+h.Country)
	}
	if h.Sponsor != "" {
		more = append(more, "suspected sponsor "+h.Sponsor)
	}
	if len(more) > 0 {
		s += " (" + strings.Join(more, "; ") + ")"
	}
	return s
}

// What says what the first contact was, in a few words.
func (c *Contact) What() string {
	if c.Log == "dns" {
		return fmt.Sprintf("a DNS answer gave %s as %s", c.Name, c.Dst)
	}
	return fmt.Sprintf("%s with %s, in the %s records", c.Src, c.Dst, c.Log)
}
