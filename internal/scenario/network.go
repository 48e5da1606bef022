package scenario

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"sort"
	"time"
)

type hostKind uint8

const (
	server hostKind = iota
	desktop
	laptop
)

// host is a machine on the ministry's network.
type host struct {
	addr     netip.Addr
	name     string
	kind     hostKind
	user     string
	alwaysOn bool    // desktops left on at night
	activity float64 // how busy its user is
	sites    []int   // long-tail sites this host's user likes
	ua       string
	ja3      string
}

// site is an external destination of ordinary traffic.
type site struct {
	name   string
	addr   netip.Addr
	weight float64
	https  bool
	upload float64  // share of bytes the client sends (cloud sync, webmail)
	i      int      // index in model.sites
	chain  []string // its certificate chain's fingerprints
	answer []string // its address as a DNS answer
}

// model is the generated network: its hosts and the Internet they use.
// It is built once from the seed and read-only afterwards.
type model struct {
	cfg      Config
	servers  map[string]*host
	work     []*host // workstations
	all      []*host
	sites    []site
	cum      []float64 // cumulative popularity of sites, for sampling
	holidays map[string]bool
	ttls     []time.Duration // the answers' TTLs, shared by the DNS records
	// chains holds the certificate chain (its fingerprints) of every
	// known site, shared read-only by the TLS records that cite it.
	chains   map[string][]string
	scanners []netip.Addr // Internet scanners probing the edge
	owaUsers []netip.Addr // remote workers reaching webmail
	senders  []netip.Addr // mail servers sending to the ministry
}

// Fixed addresses of the servers: role -> (address, name).
var serverPlan = []struct{ role, addr, name string }{
	{"dc1", "10.20.0.10", "DC01"}, {"dc2", "10.20.0.11", "DC02"},
	{"dns1", "10.20.0.53", "DNS01"}, {"dns2", "10.20.0.54", "DNS02"},
	{"mail", "10.20.0.25", "MAIL01"}, {"files", "10.20.0.30", "FS01"},
	{"backup", "10.20.0.31", "BKP01"}, {"web", "10.20.0.40", "WEB01"},
	{"proxy", "10.20.0.80", "PRX01"}, {"monitor", "10.20.0.99", "MON01"},
}

var firstNames = []string{"jan", "marie", "pieter", "sofie", "luc", "anne", "tom", "els", "koen", "nathalie", "bart", "julie",
	"wim", "sarah", "dirk", "lies", "jean", "claire", "marc", "ines"}
var lastNames = []string{"peeters", "janssens", "maes", "jacobs", "mertens", "willems", "claes", "goossens", "wouters", "dubois",
	"lambert", "dupont", "martin", "simon", "laurent", "leroy", "renard", "vermeulen", "desmet", "smets"}

// popular sites: real services, with realistic weights and shares sent.
var popular = []struct {
	name   string
	weight float64
	upload float64
}{
	{"www.google.com", 60, 0.05}, {"outlook.office365.com", 55, 0.35}, {"login.microsoftonline.com", 40, 0.3},
	{"teams.microsoft.com", 40, 0.4}, {"www.bing.com", 12, 0.05}, {"fonts.gstatic.com", 25, 0.02},
	{"ajax.googleapis.com", 15, 0.02}, {"cdn.jsdelivr.net", 10, 0.02}, {"www.youtube.com", 14, 0.02},
	{"www.linkedin.com", 10, 0.05}, {"www.belgium.be", 8, 0.05}, {"www.lesoir.be", 9, 0.03},
	{"www.standaard.be", 9, 0.03}, {"www.hln.be", 8, 0.03}, {"www.rtbf.be", 6, 0.03},
	{"europa.eu", 7, 0.05}, {"www.wikipedia.org", 10, 0.03}, {"github.com", 4, 0.2},
	{"www.dropbox.com", 3, 0.5}, {"onedrive.live.com", 8, 0.5}, {"www.amazon.com", 4, 0.04},
	{"www.booking.com", 3, 0.04}, {"www.facebook.com", 6, 0.05}, {"static.xx.fbcdn.net", 6, 0.02},
	{"www.twitter.com", 3, 0.05}, {"www.reddit.com", 2, 0.05}, {"slack.com", 3, 0.3},
	{"zoom.us", 3, 0.4}, {"www.apple.com", 3, 0.03}, {"www.adobe.com", 3, 0.03},
}

// infrastructure sites: update, antivirus, telemetry and time services
// that every host reaches on a timer.
var infra = []struct{ role, name string }{
	{"update", "fe2.update.microsoft.com"}, {"av", "update.avcloud-lookup.net"}, {"telemetry", "v10.events.data.microsoft.com"},
	{"ntp", "pool.ntp.org"}, {"crl", "crl.globalsign.net"},
}

var words = []string{"bakery", "garden", "bike", "music", "photo", "travel", "recipe", "chess", "football", "hiking", "books", "news",
	"forum", "school", "tennis", "wine", "coffee", "dance", "movie", "poetry", "history", "science", "cars", "boats", "birds"}
var tlds = []string{"be", "com", "eu", "fr", "nl", "org", "net", "de"}

// publicAddr returns a public, non-documentation IPv4 address for index i
// of a class, stable for a seed.
func publicAddr(class, i int) netip.Addr {
	prefixes := [][2]byte{{23, 0}, {45, 60}, {81, 246}, {91, 198}, {104, 16}, {141, 101}, {151, 101}, {185, 60}, {212, 71}, {52, 96}}
	p := prefixes[(class+i)%len(prefixes)]
	return netip.AddrFrom4([4]byte{p[0], p[1] + byte(i/250%200), byte(i % 250), byte(10 + class*7%200)})
}

// newModel builds the network for cfg.
func newModel(cfg Config) *model {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6e6574))
	m := &model{cfg: cfg, servers: map[string]*host{}, holidays: map[string]bool{},
		ttls: []time.Duration{300 * time.Second, 300 * time.Second, 300 * time.Second, 300 * time.Second}}
	for _, s := range serverPlan {
		h := &host{addr: netip.MustParseAddr(s.addr), name: s.name, kind: server, alwaysOn: true, activity: 1,
			ua: "Microsoft-CryptoAPI/10.0", ja3: "a0e9f5d64349fb13191bc781f81f42e1"}
		m.servers[s.role] = h
		m.all = append(m.all, h)
	}
	n := max(cfg.Hosts-len(serverPlan), 10)
	browsers := []struct{ ua, ja3 string }{
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", "cd08e31494f9531f560d64c695473da9"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0", "b32309a26951912be7dba376398abc3b"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0", "579ccef312d18482fc42e2b822ca2430"},
	}
	users := map[string]bool{}
	for i := range n {
		kind := desktop
		if i%5 < 2 {
			kind = laptop
		}
		user := ""
		for user == "" || users[user] {
			user = firstNames[rng.IntN(len(firstNames))] + "." + lastNames[rng.IntN(len(lastNames))]
			if users[user] {
				user += fmt.Sprint(rng.IntN(90) + 10)
			}
		}
		users[user] = true
		b := browsers[rng.IntN(len(browsers))]
		h := &host{addr: netip.AddrFrom4([4]byte{10, 10, byte(i / 200), byte(10 + i%200)}), name: fmt.Sprintf("WS-%04d", i+1),
			kind: kind, user: user, alwaysOn: kind == desktop && rng.Float64() < 0.3, activity: 0.4 + rng.Float64()*1.2, ua: b.ua, ja3: b.ja3}
		m.work = append(m.work, h)
		m.all = append(m.all, h)
	}
	for i, p := range popular {
		m.sites = append(m.sites, site{name: p.name, addr: publicAddr(1, i), weight: p.weight, https: true, upload: p.upload})
	}
	// The long tail: small sites, a few visits each.
	tail := 40 * n
	for i := range tail {
		name := fmt.Sprintf("www.%s-%s%d.%s", words[rng.IntN(len(words))], words[rng.IntN(len(words))], rng.IntN(100), tlds[rng.IntN(len(tlds))])
		m.sites = append(m.sites, site{name: name, addr: publicAddr(2, i), weight: 0.02 + rng.ExpFloat64()*0.02, https: rng.Float64() < 0.85, upload: 0.04})
	}
	m.chains = map[string][]string{}
	for i := range m.sites {
		s := &m.sites[i]
		s.i, s.chain, s.answer = i, []string{fingerprint(s.name)}, []string{s.addr.String()}
		m.chains[s.name] = s.chain
	}
	for _, s := range infra {
		m.chains[s.name] = []string{fingerprint(s.name)}
	}
	total := 0.0
	for _, s := range m.sites {
		total += s.weight
		m.cum = append(m.cum, total)
	}
	for _, h := range m.work {
		for range 6 {
			h.sites = append(h.sites, len(popular)+rng.IntN(tail))
		}
	}
	for i := range 60 {
		m.scanners = append(m.scanners, netip.AddrFrom4([4]byte{byte(60 + i%150), byte(rng.IntN(250) + 1), byte(rng.IntN(250)), byte(rng.IntN(250) + 1)}))
	}
	for i := range 80 {
		m.owaUsers = append(m.owaUsers, netip.AddrFrom4([4]byte{byte(78 + i%20), byte(20 + i), byte(rng.IntN(250)), byte(rng.IntN(250) + 1)}))
	}
	for i := range 40 {
		m.senders = append(m.senders, publicAddr(3, i))
	}
	// Belgian public holidays inside the period.
	for _, d := range []string{"01-01", "05-01", "07-21", "08-15", "11-01", "11-11", "12-25"} {
		for y := cfg.Start.Year(); y <= cfg.Start.AddDate(0, 0, cfg.Days).Year(); y++ {
			day := fmt.Sprintf("%d-%s", y, d)
			t, _ := time.Parse("2006-01-02", day)
			if !t.Before(cfg.Start) && t.Before(cfg.Start.AddDate(0, 0, cfg.Days)) {
				m.holidays[day] = true
			}
		}
	}
	return m
}

// pickSite samples a site by popularity.
func (m *model) pickSite(rng *rand.Rand) *site {
	x := rng.Float64() * m.cum[len(m.cum)-1]
	i := sort.SearchFloat64s(m.cum, x)
	return &m.sites[min(i, len(m.sites)-1)]
}

func (m *model) infraSite(role string) site {
	for i, s := range infra {
		if s.role == role {
			return site{name: s.name, addr: publicAddr(4, i), https: true}
		}
	}
	panic("BUG: unknown infrastructure " + role)
}

// workday reports whether people work on the day.
func (m *model) workday(day time.Time) bool {
	wd := day.Weekday()
	if wd == time.Saturday || wd == time.Sunday {
		return false
	}
	var buf [len(time.DateOnly)]byte // asked per host and hour: no allocation
	return !m.holidays[string(day.AppendFormat(buf[:0], time.DateOnly))]
}

// on reports whether h is switched on at t (UTC; the office keeps
// Brussels hours, UTC+1).
func (m *model) on(h *host, t time.Time) bool {
	if h.kind == server || h.alwaysOn {
		return true
	}
	local := t.Hour() + 1
	return m.workday(t) && local >= 8 && local < 18
}

// activity returns how busy the office is at t, from 0 to about 1.
func (m *model) activity(t time.Time) float64 {
	local := (t.Hour() + 1) % 24
	base := 0.03
	if m.workday(t) {
		switch {
		case local >= 9 && local < 12, local >= 13 && local < 17:
			base = 1
		case local == 8 || local == 12 || local == 17:
			base = 0.6
		case local >= 18 && local < 22:
			base = 0.12
		}
	} else if local >= 9 && local < 20 {
		base = 0.08
	}
	return base
}

// hourWeights returns the share of a scenario's background each hour gets.
func (m *model) hourWeights() []float64 {
	hours := m.cfg.Days * 24
	w := make([]float64, hours)
	total := 0.0
	for i := range w {
		w[i] = m.activity(m.cfg.Start.Add(time.Duration(i) * time.Hour))
		total += w[i]
	}
	for i := range w {
		w[i] /= total
	}
	return w
}

// lognormal returns a byte count with median med and spread s.
func lognormal(rng *rand.Rand, med, s float64) int64 {
	return int64(med * math.Exp(rng.NormFloat64()*s))
}
