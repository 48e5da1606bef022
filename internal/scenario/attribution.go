package scenario

import (
	"crypto/md5"  //nolint:gosec // G501: Zeek's files.log carries MD5; these are made-up file hashes
	"crypto/sha1" //nolint:gosec // G505: as above
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// The ground truth of the prosecutors' three questions (docs/scenario.md):
// the registration of the campaign's infrastructure (an .mmdb written
// here), a mailbox taken through the web shell, and a fictional actor that
// a CERT's MISP event names, with a catalogue of fictional groups to
// compare behaviour with. Every name, number and country here is made up:
// AS numbers from the documentation range (RFC 5398), the user-assigned
// country code ZZ.

// The actor the scenario's intel names.
var actor = Actor{Name: "GLASS LYNX", Aliases: []string{"Frosted Lynx", "TA-EX1"}, Country: "ZZ", Sponsor: "Examplia (a fictional state)"}

// networks registers the scenario's outside address ranges.
var networks = []struct {
	prefix  string
	asn     uint32
	org     string
	country string
}{
	{"203.0.113.0/24", 64500, "Examplia Telecom JSC", "ZZ"},
	{"198.51.100.0/24", 64501, "Rent-A-Server B.V.", "NL"},
	{"192.0.2.0/24", 64502, "AdPush Networks Inc.", "US"},
}

// Actor is who the scenario's intel attributes the campaign to.
type Actor struct {
	Name    string   `json:"name"`
	Aliases []string `json:"aliases"`
	Country string   `json:"country"`
	Sponsor string   `json:"sponsor"`
}

// Registration is what the scenario's .mmdb says of an address.
type Registration struct {
	Addr    string `json:"addr"`
	ASN     uint32 `json:"asn"`
	Org     string `json:"org"`
	Country string `json:"country"`
}

// TakenFile is a file the actor took, as the network saw it leave.
type TakenFile struct {
	Name   string    `json:"name"`
	Host   string    `json:"host"` // the internal host it left from
	Dst    string    `json:"dst"`  // where it went
	Bytes  int64     `json:"bytes"`
	SHA256 string    `json:"sha256"`
	At     time.Time `json:"at"`
}

// Intel lists the files of the scenario's intel and reference data,
// relative to the output directory.
type Intel struct {
	MISP   string   `json:"misp"`   // a MISP event naming the actor
	Groups []string `json:"groups"` // the group catalogue (attribution.groups)
	MMDB   string   `json:"mmdb"`   // registration of the outside ranges (origin.mmdb)
}

// mailboxTheft plants the theft of the minister's mailbox: exported on the
// mail server through the web shell, then downloaded by the shell's
// operator over HTTP. Planned after everything else, so that the random
// draws of the rest stay as they were.
func (p *plan) mailboxTheft() {
	m := p.m
	mail := m.servers["mail"]
	c := &p.truth.Campaign
	t := p.when(0.3, 2, 10)
	const export = "C:\\ExchangeExports\\minister.pst"
	p.event(t, mail, chSysmon, 1, map[string]any{
		"Image":       "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
		"CommandLine": "powershell.exe -nop -c \"New-MailboxExportRequest -Mailbox minister -FilePath \\\\MAIL01\\ExchangeExports$\\minister.pst\"",
		"ParentImage": "C:\\Windows\\System32\\cmd.exe", "User": "NT AUTHORITY\\SYSTEM", "IntegrityLevel": "System"})
	p.event(t.Add(25*time.Minute), mail, chSysmon, 11, map[string]any{
		"Image": "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\Bin\\MSExchangeMailboxReplication.exe", "TargetFilename": export,
		"User": "NT AUTHORITY\\SYSTEM"})
	size := int64(180_000_000 + p.rng.IntN(80_000_000))
	at := t.Add(50 * time.Minute)
	g := p.gen(at)
	from := shellIPs[0]
	cn := g.conn(at, from, mail.addr, 80, "tcp", "http", 7*time.Minute, 420, size+380, "SF")
	g.http(cn, "GET", "mail.ministry.example", shellPath+"?d=minister.pst", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:109.0) Gecko/20100101 Firefox/115.0",
		200, 0, size, "application/vnd.ms-outlook")
	f := &g.b.Files[len(g.b.Files)-1]
	seed := fmt.Sprintf("%d minister.pst", m.cfg.Seed)
	md, s1, s2 := md5.Sum([]byte(seed)), sha1.Sum([]byte(seed)), sha256.Sum256([]byte(seed)) //nolint:gosec // G401: made-up hashes
	f.Filename, f.MD5, f.SHA1, f.SHA256 = "minister.pst", hex.EncodeToString(md[:]), hex.EncodeToString(s1[:]), hex.EncodeToString(s2[:])
	c.Taken = append(c.Taken, TakenFile{Name: f.Filename, Host: mail.addr.String(), Dst: from.String(), Bytes: size, SHA256: f.SHA256, At: at})
	p.addTechnique(technique{id: "T1114.001", name: "Email Collection: Local Email Collection", hosts: []string{mail.addr.String()},
		from: t, to: t.Add(25 * time.Minute), events: 2, note: "host logs only: New-MailboxExportRequest of the minister's mailbox to a .pst"})
	p.addTechnique(technique{id: "T1041", name: "Exfiltration Over C2 Channel (the web shell)", detector: "exfil", hosts: []string{mail.addr.String()},
		peers: []string{from.String()}, from: at, to: at.Add(7 * time.Minute), events: 1,
		note: fmt.Sprintf("minister.pst, %d bytes, downloaded through the web shell", size)})
	c.Actor = actor
	for _, s := range c.ExternalIPs {
		a := netip.MustParseAddr(s)
		for _, n := range networks {
			if netip.MustParsePrefix(n.prefix).Contains(a) {
				c.Infrastructure = append(c.Infrastructure, Registration{Addr: s, ASN: n.asn, Org: n.org, Country: n.country})
			}
		}
	}
}

// Infrastructure no finding names, which pivots must find: a server
// presenting the mail implant's self-signed certificate under another
// name, reached by a laptop no detector flags (a further victim?); the
// C2's name under another suffix, which the laptop resolved; and the
// address the C2 name moved to after containment.
var (
	siblingCert = netip.MustParseAddr("203.0.113.78")
	movedC2     = netip.MustParseAddr("203.0.113.79")
	lookAlike   = netip.MustParseAddr("203.0.113.80")
)

// lookAlikeName is the C2 name registered under another suffix.
const lookAlikeName = "cdn-update.test"

// siblings plants the traces of the infrastructure only pivots find.
// Planned last, as mailboxTheft is.
func (p *plan) siblings() {
	m := p.m
	c := &p.truth.Campaign
	var lap *host
	for _, h := range m.work {
		if h.kind == laptop && !slices.Contains(c.Hosts, h.addr.String()) {
			lap = h
			break
		}
	}
	if lap != nil {
		for i, f := range []float64{0.45, 0.46, 0.6} {
			t := p.nextOn(lap, p.when(f, 11, 5+7*i))
			g := p.gen(t)
			cn := g.conn(t, lap.addr, siblingCert, 443, "tcp", "ssl", 2*time.Second, 2100, 5400, "SF")
			g.handshake(cn, "sync.examplia-soft.example", []string{fingerprint(c2ASNI)}, nil, lap.ja3, "self signed certificate", "CN="+c2ASNI)
		}
		c.Pivots = append(c.Pivots, siblingCert.String())
		// The laptop also resolves the C2's name under another suffix.
		t := p.nextOn(lap, p.when(0.62, 10, 40))
		p.gen(t).dns(t, lap.addr, lookAlikeName, "A", lookAlike.String())
		c.Pivots = append(c.Pivots, lookAlike.String())
	}
	t := c.Containment.Add(6 * time.Hour)
	if t.Before(p.truth.End) {
		p.gen(t).dns(t, m.servers["mail"].addr, c2ASNI, "A", movedC2.String())
		c.Pivots = append(c.Pivots, movedC2.String())
	}
}

// writeIntel writes the scenario's intel and reference data into dir/intel.
func writeIntel(dir string, t *Truth) (Intel, error) {
	in := Intel{MISP: "intel/campaign.misp.json", Groups: []string{"intel/groups.stix.json", "intel/actors.galaxy.json"}, MMDB: "intel/origin.mmdb"}
	if err := os.MkdirAll(filepath.Join(dir, "intel"), 0o755); err != nil {
		return in, err
	}
	write := func(name string, v any) error {
		data, err := json.MarshalIndent(v, "", " ")
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, filepath.FromSlash(name)), append(data, '\n'), 0o644)
	}
	if err := write(in.MISP, mispEvent(t)); err != nil {
		return in, err
	}
	groups, galaxy := catalogue(t)
	if err := write(in.Groups[0], groups); err != nil {
		return in, err
	}
	if err := write(in.Groups[1], galaxy); err != nil {
		return in, err
	}
	return in, writeMMDB(filepath.Join(dir, filepath.FromSlash(in.MMDB)), t.End)
}

// mispEvent is a CERT's event about the campaign's C2, tagged with the
// actor's threat-actor galaxy cluster.
func mispEvent(t *Truth) map[string]any {
	ts := t.Campaign.Containment.Add(-48 * time.Hour)
	attr := func(i int, typ, value string) map[string]any {
		return map[string]any{"uuid": fmt.Sprintf("5c0ffee0-0000-4000-8000-%012d", i), "type": typ, "category": "Network activity",
			"value": value, "to_ids": true, "timestamp": fmt.Sprint(ts.Unix()), "comment": "GLASS LYNX command and control"}
	}
	tag := `misp-galaxy:threat-actor="` + actor.Name + `"`
	return map[string]any{"Event": map[string]any{
		"uuid": "5c0ffee0-0000-4000-8000-000000000000", "info": "GLASS LYNX: implants against ministries of the interior",
		"date": ts.Format(time.DateOnly), "threat_level_id": "1", "analysis": "2", "published": true, "timestamp": fmt.Sprint(ts.Unix()),
		"Orgc": map[string]any{"name": "DEMO-CERT", "uuid": "5c0ffee0-0000-4000-8000-0000000000ce"},
		"Tag":  []map[string]any{{"name": "tlp:amber"}, {"name": tag}},
		"Galaxy": []map[string]any{{"name": "Threat Actor", "type": "threat-actor", "GalaxyCluster": []map[string]any{{
			"value": actor.Name, "tag_name": tag, "meta": map[string]any{"country": []string{actor.Country}, "synonyms": actor.Aliases,
				"cfr-suspected-state-sponsor": []string{actor.Sponsor}}}}}},
		"Attribute": []map[string]any{
			attr(1, "ip-dst", c2A.String()), attr(2, "ip-dst", c2B.String()),
			attr(3, "domain", "cdn-update.example"), attr(4, "ja3-fingerprint-md5", implantJA),
		},
	}}
}

// techniquePool are ATT&CK technique ids the fictional groups draw from:
// ids only, so that each group's set is a made-up selection.
var techniquePool = []string{
	"T1003.001", "T1005", "T1012", "T1016", "T1018", "T1021.001", "T1021.002", "T1021.006", "T1027", "T1033", "T1036.005",
	"T1039", "T1041", "T1046", "T1047", "T1048", "T1053.005", "T1055", "T1056.001", "T1059.001", "T1059.003", "T1068",
	"T1070.004", "T1071.001", "T1071.004", "T1074.001", "T1078", "T1078.002", "T1082", "T1083", "T1087.002", "T1090",
	"T1105", "T1110.003", "T1113", "T1114.001", "T1114.002", "T1133", "T1135", "T1190", "T1204.002", "T1486", "T1498",
	"T1505.003", "T1543.003", "T1547.001", "T1560.001", "T1566.001", "T1566.002", "T1567.002", "T1572", "T1573.001",
}

// catalogue returns a STIX bundle of fictional groups with the techniques
// they are "reported" to use, the actor's among them (the campaign's
// techniques and a few more), and a MISP galaxy of their countries.
func catalogue(t *Truth) (bundle, galaxy map[string]any) {
	rng := rand.New(rand.NewPCG(t.Seed, 0x67726f75))
	type group struct {
		name, country string
		techniques    []string
	}
	var own []string
	for _, x := range t.Campaign.Techniques {
		own = append(own, x.ID)
	}
	groups := []group{{actor.Name, actor.Country, append(own, "T1566.001", "T1082", "T1083", "T1113")}}
	for i, n := range []string{"AMBER HERON", "COPPER WREN", "SLATE MARTEN", "OCHRE IBIS", "TEAL BADGER", "UMBER KITE",
		"IVORY STOAT", "RUST OTTER", "SABLE CRANE", "PEWTER VOLE", "CINDER MOTH"} {
		k := 12 + rng.IntN(25)
		perm := rng.Perm(len(techniquePool))[:k]
		var ts []string
		for _, j := range perm {
			ts = append(ts, techniquePool[j])
		}
		groups = append(groups, group{n, []string{"ZY", "ZX", "ZW"}[i%3], ts})
	}
	// AMBER HERON shares much of the actor's tradecraft: the ranking must
	// still tell them apart.
	groups[1].techniques = append(slices.Clone(own[:len(own)/2]), groups[1].techniques...)
	objs := []map[string]any{}
	ids := map[string]string{}
	created := t.Start.Format(time.RFC3339)
	for _, g := range groups {
		for _, tid := range g.techniques {
			if ids[tid] != "" {
				continue
			}
			ids[tid] = fmt.Sprintf("attack-pattern--%s", uuidOf(t.Seed, "ap "+tid))
			objs = append(objs, map[string]any{"type": "attack-pattern", "spec_version": "2.1", "id": ids[tid], "created": created, "modified": created,
				"name": tid, "external_references": []map[string]any{{"source_name": "mitre-attack", "external_id": tid}}})
		}
	}
	var clusters []map[string]any
	for i, g := range groups {
		id := "intrusion-set--" + uuidOf(t.Seed, "is "+g.name)
		is := map[string]any{"type": "intrusion-set", "spec_version": "2.1", "id": id, "created": created, "modified": created, "name": g.name}
		meta := map[string]any{"country": g.country}
		if i == 0 {
			is["aliases"] = actor.Aliases
			meta["synonyms"] = actor.Aliases
			meta["cfr-suspected-state-sponsor"] = actor.Sponsor
		}
		objs = append(objs, is)
		for _, tid := range g.techniques {
			objs = append(objs, map[string]any{"type": "relationship", "spec_version": "2.1", "id": "relationship--" + uuidOf(t.Seed, g.name+" "+tid),
				"created": created, "modified": created, "relationship_type": "uses", "source_ref": id, "target_ref": ids[tid]})
		}
		clusters = append(clusters, map[string]any{"value": g.name, "uuid": uuidOf(t.Seed, "cl "+g.name), "meta": meta})
	}
	bundle = map[string]any{"type": "bundle", "id": "bundle--" + uuidOf(t.Seed, "groups"), "objects": objs}
	galaxy = map[string]any{"name": "Threat Actor", "type": "threat-actor", "description": "fictional groups of the dwell scenario",
		"uuid": uuidOf(t.Seed, "galaxy"), "version": 1, "values": clusters}
	return bundle, galaxy
}

// uuidOf makes a stable version-4-shaped UUID from a seed and a name.
func uuidOf(seed uint64, name string) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%d %s", seed, name)))
	h[6] = h[6]&0x0f | 0x40
	h[8] = h[8]&0x3f | 0x80
	x := hex.EncodeToString(h[:16])
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}

// writeMMDB writes the registration of the scenario's outside ranges as a
// MaxMind database with the ASN and Country databases' fields, built
// (for its metadata) at the end of the scenario: the same seed writes the
// same bytes.
func writeMMDB(path string, built time.Time) error {
	w, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "dwell-scenario-ASN-Country", RecordSize: 24, IncludeReservedNetworks: true, BuildEpoch: built.Unix(),
		Description: map[string]string{"en": "dwell scenario: made-up registration of documentation ranges"}})
	if err != nil {
		return err
	}
	for _, n := range networks {
		_, ipnet, err := net.ParseCIDR(n.prefix)
		if err != nil {
			return err
		}
		rec := mmdbtype.Map{
			"autonomous_system_number":       mmdbtype.Uint32(n.asn),
			"autonomous_system_organization": mmdbtype.String(n.org),
			"country":                        mmdbtype.Map{"iso_code": mmdbtype.String(n.country)},
		}
		if err := w.Insert(ipnet, rec); err != nil {
			return err
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := w.WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
