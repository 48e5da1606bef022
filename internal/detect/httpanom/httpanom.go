// Package httpanom finds HTTP that people and ordinary software do not
// make. Outbound, from internal hosts: requests without a Host header,
// requests to bare IP addresses, user agents no other host uses, programs
// (PE, ELF, Mach-O by their content) downloaded in clear text — more so
// by a command-line client such as wget or curl, the way droppers fetch
// their payload (ingress tool transfer, T1105) — to destinations and
// names few hosts visit. Inbound, to internal servers: POSTs to
// script pages (.aspx, .php, .jsp, ...) from a handful of outside
// addresses, the way a web shell on an internet-facing server is driven.
package httpanom

import (
	"context"
	"fmt"
	"net/netip"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Config tunes the detector (no options yet).
type Config struct{}

// Detector is the HTTP anomaly detector.
type Detector struct {
	env *detect.Env
}

var _ detect.Detector = (*Detector)(nil)

// New returns an HTTP anomaly detector.
func New(env *detect.Env, _ Config) *Detector { return &Detector{env: env} }

// Name implements detect.Detector.
func (d *Detector) Name() string { return "httpanom" }

var scriptExt = map[string]bool{".aspx": true, ".asp": true, ".ashx": true, ".asmx": true, ".php": true, ".jsp": true,
	".jspx": true, ".cgi": true, ".pl": true, ".cfm": true}

type outKey struct {
	sensor   string
	src, dst netip.Addr
	host     string
}

type outAgg struct {
	port        uint16
	count       int64
	noHost      int64
	executables int64
	scripted    bool
	bareIP      bool
	agents      map[string]bool
	paths       map[string]bool
	first, last time.Time
}

type shellKey struct {
	sensor string
	dst    netip.Addr
	path   string
}

type shellAgg struct {
	path        string // as first seen; the key is lower-cased
	posts, gets int64
	sources     map[netip.Addr]int64
	ok          bool
	days        map[string]bool
	first, last time.Time
	port        uint16
}

// Detect implements detect.Detector.
func (d *Detector) Detect(ctx context.Context, r store.Reader, w store.Window) ([]detect.Finding, error) {
	out := map[outKey]*outAgg{}
	shells := map[shellKey]*shellAgg{}
	uaHosts := map[string]map[netip.Addr]bool{}
	dstHosts := map[netip.Addr]map[netip.Addr]bool{}
	nameHosts := map[string]map[netip.Addr]bool{}
	httpHosts := map[netip.Addr]bool{}
	err := r.HTTPRequests(ctx, w, func(h *store.HTTPRequest) error {
		srcLocal, dstLocal := d.env.IsLocal(h.Src), d.env.IsLocal(h.Dst)
		if srcLocal && !dstLocal {
			httpHosts[h.Src] = true
			if uaHosts[h.UserAgent] == nil {
				uaHosts[h.UserAgent] = map[netip.Addr]bool{}
			}
			uaHosts[h.UserAgent][h.Src] = true
			if dstHosts[h.Dst] == nil {
				dstHosts[h.Dst] = map[netip.Addr]bool{}
			}
			dstHosts[h.Dst][h.Src] = true
			name := strings.ToLower(store.HostOnly(h.Host))
			if nameHosts[name] == nil {
				nameHosts[name] = map[netip.Addr]bool{}
			}
			nameHosts[name][h.Src] = true
			k := outKey{h.Sensor, h.Src, h.Dst, strings.ToLower(h.Host)}
			a := out[k]
			if a == nil {
				a = &outAgg{agents: map[string]bool{}, paths: map[string]bool{}, first: h.First, last: h.Last, port: h.DstPort}
				out[k] = a
			}
			a.count += h.Count
			if h.Host == "" && h.Method != "CONNECT" {
				a.noHost += h.Count
			}
			if _, err := netip.ParseAddr(strings.Trim(store.HostOnly(h.Host), "[]")); err == nil {
				a.bareIP = true
			}
			if h.Executables > 0 {
				a.executables += h.Executables
				a.scripted = a.scripted || scriptedClient(h.UserAgent)
			}
			a.agents[h.UserAgent] = true
			if len(a.paths) < 5 {
				a.paths[h.Path] = true
			}
			a.first, a.last = event.Earliest(a.first, h.First), event.Latest(a.last, h.Last)
		}
		if dstLocal && !srcLocal {
			k := shellKey{h.Sensor, h.Dst, strings.ToLower(h.Path)}
			a := shells[k]
			if a == nil {
				a = &shellAgg{path: h.Path, sources: map[netip.Addr]int64{}, days: map[string]bool{}, first: h.First, last: h.Last, port: h.DstPort}
				shells[k] = a
			}
			switch h.Method {
			case "POST":
				a.posts += h.Count
				a.sources[h.Src] += h.Count
				a.days[h.First.Format("2006-01-02")] = true
				a.days[h.Last.Format("2006-01-02")] = true
				for _, s := range h.Statuses {
					a.ok = a.ok || (s >= 200 && s < 300)
				}
			case "GET", "HEAD":
				a.gets += h.Count
			}
			a.first, a.last = event.Earliest(a.first, h.First), event.Latest(a.last, h.Last)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var fs []detect.Finding
	population := len(httpHosts)
	for k, a := range out {
		c := map[string]float64{}
		var why []string
		if a.noHost > 0 {
			c["no_host"] = 0.4
			why = append(why, fmt.Sprintf("%d request(s) without a Host header", a.noHost))
		}
		if a.bareIP {
			c["bare_ip"] = 0.25
			why = append(why, "requests to a bare IP address")
		}
		for ua := range a.agents {
			if population >= 10 && len(uaHosts[ua]) <= 1 {
				c["rare_user_agent"] = 0.35
				why = append(why, fmt.Sprintf("a user agent no other host uses (%q)", clip(ua)))
				break
			}
		}
		attack := []string{"T1071.001"}
		if a.executables > 0 {
			c["executable"] = 0.35
			why = append(why, fmt.Sprintf("%d program(s) downloaded in clear text", a.executables))
			attack = []string{"T1105", "T1071.001"}
			if a.scripted {
				c["scripted_client"] = 0.15
				why = append(why, "by a command-line client")
			}
		}
		raw := 0.0
		for _, v := range c {
			raw += v
		}
		if raw == 0 {
			continue
		}
		rarity := 1.0
		if population >= 10 {
			// An address or a name many hosts use is no one's channel:
			// content networks put many names on one address, and one
			// name on many addresses.
			reach := len(dstHosts[k.dst])
			if name := store.HostOnly(k.host); name != "" && !a.bareIP {
				reach = max(reach, len(nameHosts[name]))
			}
			rarity = 1 - detect.Ramp(float64(reach), 1, 6)
		}
		c["rarity"] = rarity
		score := min(raw, 1) * (0.35 + 0.65*rarity)
		f := detect.Finding{Detector: d.Name(), Sensor: k.sensor, Src: k.src, Dst: k.dst, Domain: store.HostOnly(k.host), Score: score,
			Severity: detect.SeverityOf(score), FirstSeen: a.first, LastSeen: a.last, Components: round(c), Attack: attack}
		if score < 0.25 || d.env.Allowed(&f) {
			continue
		}
		f.Evidence = map[string]any{"requests": a.count, "without_host": a.noHost, "user_agents": keys(a.agents, 3), "paths": keys(a.paths, 5),
			"port": a.port, "proto": "tcp", "programs_downloaded": a.executables,
			"internal_hosts_contacting": len(dstHosts[k.dst])}
		f.Summary = fmt.Sprintf("%s sent %d HTTP request(s) to %s with %s.", k.src, a.count, k.dst, strings.Join(why, ", "))
		fs = append(fs, f)
	}
	for k, a := range shells {
		if a.posts == 0 || !scriptExt[path.Ext(k.path)] || len(a.sources) > 5 {
			continue
		}
		c := map[string]float64{
			"script_post":  0.5,
			"few_sources":  0.2 * (1 - detect.Ramp(float64(len(a.sources)), 1, 5)),
			"answered":     map[bool]float64{true: 0.1}[a.ok],
			"repeated":     0.1 * detect.Ramp(float64(len(a.days)), 1, 4),
			"rarely_asked": 0.1 * (1 - detect.Ramp(float64(a.gets), 0, 20)),
		}
		score := 0.0
		for _, v := range c {
			score += v
		}
		srcs := make([]netip.Addr, 0, len(a.sources))
		for s := range a.sources {
			srcs = append(srcs, s)
		}
		sort.Slice(srcs, func(i, j int) bool {
			return a.sources[srcs[i]] > a.sources[srcs[j]] || (a.sources[srcs[i]] == a.sources[srcs[j]] && srcs[i].Less(srcs[j]))
		})
		f := detect.Finding{Detector: d.Name(), Sensor: k.sensor, Src: srcs[0], Dst: k.dst, Score: score, Severity: detect.SeverityOf(score),
			FirstSeen: a.first, LastSeen: a.last, Components: round(c), Attack: []string{"T1505.003", "T1190"}}
		if d.env.Allowed(&f) {
			continue
		}
		srcText := make([]string, len(srcs))
		for i, s := range srcs {
			srcText[i] = s.String()
		}
		f.Infra = srcs[1:]
		f.Evidence = map[string]any{"path": a.path, "posts": a.posts, "gets": a.gets, "sources": srcText, "days": len(a.days), "port": a.port}
		f.Summary = fmt.Sprintf("%d POST(s) to the script %s on internal server %s came from %d outside address(es) only (%s): a web shell is driven this way.",
			a.posts, a.path, k.dst, len(srcs), strings.Join(srcText[:min(3, len(srcText))], ", "))
		fs = append(fs, f)
	}
	return fs, nil
}

// scriptedClient reports whether a user agent is a command-line or
// scripting client rather than a browser or an updater: what a dropper
// runs to fetch its payload.
func scriptedClient(ua string) bool {
	ua = strings.ToLower(ua)
	for _, p := range []string{"wget", "curl", "python", "powershell", "windowspowershell", "certutil", "microsoft bits", "go-http-client",
		"libwww-perl", "lwp::", "busybox", "java/", "winhttp", "bitsadmin", "ruby", "perl"} {
		if strings.Contains(ua, p) {
			return true
		}
	}
	return ua == "" || ua == "-"
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

func keys(m map[string]bool, n int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	if len(out) > n {
		out = out[:n]
	}
	return out
}

func round(c map[string]float64) map[string]float64 {
	for k, v := range c {
		c[k] = detect.Round(v, 3)
	}
	return c
}
