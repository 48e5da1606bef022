package attribution

import (
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// datasets returns a folder of the shared test data, or skips.
func datasets(t *testing.T, dir string) string {
	t.Helper()
	root := os.Getenv("DWELL_DATASETS")
	if root == "" {
		root = "../../../shared/datasets"
	}
	p := filepath.Join(root, dir)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared dataset %s not present (%v)", dir, err)
	}
	return p
}

// attackCatalogue loads ATT&CK v18.1's groups with their techniques (two
// bundles: relationships resolved across them) and MISP's threat-actor
// galaxy.
func attackCatalogue(t *testing.T) *Catalogue {
	t.Helper()
	groups := datasets(t, "mitre-attack-groups")
	tech := datasets(t, "mitre-attack-enterprise-v18.1-subset")
	galaxy := datasets(t, "misp-galaxy-threat-actors")
	c, err := LoadCatalogue([]string{
		filepath.Join(groups, "enterprise-attack-groups-relationships.json"),
		filepath.Join(tech, "enterprise-attack-techniques-tactics.json"),
		filepath.Join(galaxy, "clusters", "threat-actor.json"),
		filepath.Join(galaxy, "clusters", "mitre-intrusion-set.json"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCatalogueFromATTACKAndMISP(t *testing.T) {
	c := attackCatalogue(t)
	withTechniques := 0
	for _, g := range c.Groups {
		if len(g.Techniques) > 0 {
			withTechniques++
		}
	}
	// groups.tsv: 172 active groups, of which 4 have no technique
	// (G0017, G0055, G0088 has campaign ones, G1028).
	if withTechniques < 165 || withTechniques > 172 {
		t.Errorf("%d groups with techniques, want about 169", withTechniques)
	}
	g, ok := c.Lookup("APT27")
	if !ok || g.ID != "G0027" || g.Country != "CN" || len(g.Techniques) < 57 {
		t.Fatalf("APT27: %+v", g)
	}
	if h, ok := c.Lookup("emissary panda"); !ok || h != g {
		t.Errorf("an alias does not find the group: %+v", h)
	}
	// APT29 has 66 techniques directly and 119 with the SolarWinds
	// campaigns attributed to it (README).
	if g, ok := c.Lookup("G0016"); !ok || g.Name != "APT29" || len(g.Techniques) < 100 {
		t.Errorf("APT29 with its campaigns' techniques: %d", len(g.Techniques))
	}
	if g, ok := c.Lookup("APT28"); !ok || g.Country != "RU" || !strings.Contains(g.Sponsor, "Russia") {
		t.Errorf("APT28's country and sponsor from the galaxy: %+v", g)
	}
	if _, err := LoadCatalogue([]string{filepath.Join(datasets(t, "misp-galaxy-threat-actors"), "README.md")}); err == nil ||
		!strings.Contains(err.Error(), "README.md") {
		t.Errorf("a file that is not a catalogue: %v", err)
	}
}

// TestBehaviourRanksTheGroup: the techniques of one group's reports, as an
// incident would show part of them, put that group first or near it.
func TestBehaviourRanksTheGroup(t *testing.T) {
	c := attackCatalogue(t)
	for _, tc := range []struct {
		group string
		take  int
	}{{"G1017", 15}, {"G0027", 12}, {"G0128", 10}} {
		g, _ := c.Lookup(tc.group)
		// Every third of its techniques: a partial, unbiased view.
		var seen []string
		for i := 0; i < len(g.Techniques) && len(seen) < tc.take; i += 3 {
			seen = append(seen, g.Techniques[i])
		}
		hs := Who(seen, nil, c, Options{Top: 5})
		rank := slices.IndexFunc(hs, func(h correlate.Hypothesis) bool { return h.ID == tc.group })
		if rank != 0 {
			t.Errorf("%s from %v: rank %d in %v", tc.group, seen, rank, names(hs))
			continue
		}
		h := hs[rank]
		if h.Intel != 0 || h.Score > 0.5 || h.Behaviour <= 0 || len(h.For) == 0 {
			t.Errorf("%s: behaviour alone must stay below 0.5 with its evidence: %+v", tc.group, h)
		}
	}
	// One very common technique names nobody.
	if hs := Who([]string{"T1105"}, nil, c, Options{}); len(hs) != 0 {
		t.Errorf("a single technique gave %v", names(hs))
	}
}

func names(hs []correlate.Hypothesis) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Actor+" "+h.ID)
	}
	return out
}

func iocFinding(value string, conf int, tags ...string) detect.Finding {
	return detect.Finding{Detector: "iocmatch", Evidence: map[string]any{"indicator": map[string]any{
		"value": value, "source": "cert-feed", "name": "Campaign against ministries", "confidence": conf, "tags": tags}}}
}

func TestIntelRanksFirst(t *testing.T) {
	c := attackCatalogue(t)
	fs := []detect.Finding{
		iocFinding("198.51.100.23", 90, "tlp:amber", `misp-galaxy:threat-actor="APT27"`),
		iocFinding("cdn-update.example", -1, `misp-galaxy:mitre-intrusion-set="Threat Group-3390 - G0027"`),
		iocFinding("203.0.113.9", 50, `stix:intrusion-set="APT28"`),
		iocFinding("203.0.113.9", 50, `stix:intrusion-set="APT28"`), // sighted again, in another log
		iocFinding("192.0.2.1", 80), // no actor
	}
	ss := Sightings(fs)
	if len(ss) != 5 || len(ss[0].Actors) != 1 || ss[1].Actors[0].ID != "G0027" || ss[1].Confidence != 0.5 {
		t.Fatalf("sightings %+v", ss)
	}
	g, _ := c.Lookup("G0027")
	hs := Who(g.Techniques[:8], ss, c, Options{})
	top := hs[0]
	// Two indicators (0.9 and 0.5 halved): 1 − 0.55 × 0.75.
	if top.ID != "G0027" || math.Abs(top.Intel-0.5875) > 0.001 || top.Behaviour <= 0 || top.Country != "CN" {
		t.Fatalf("top %+v of %v", top, names(hs))
	}
	if len(top.Against) != 1 || !strings.Contains(top.Against[0], "203.0.113.9") {
		t.Errorf("the indicator attributed to another actor is not against it, once: %v", top.Against)
	}
	if len(top.For) != 3 { // two indicators, one behavioural line
		t.Errorf("for: %v", top.For)
	}
	// Without a catalogue: the actors as the tags name them.
	hs = Who(nil, ss, nil, Options{})
	if len(hs) != 3 || hs[0].Actor != "APT27" || hs[0].Intel != 0.45 {
		t.Errorf("intel only: %+v", hs)
	}
}

func TestActorOf(t *testing.T) {
	for tag, want := range map[string]string{
		`misp-galaxy:threat-actor="APT 31"`:                     "APT 31",
		`misp-galaxy:microsoft-activity-group="Violet Typhoon"`: "Violet Typhoon",
		`misp-galaxy:mitre-intrusion-set="ZIRCONIUM - G0128"`:   "ZIRCONIUM G0128",
		`stix:threat-actor="Ugly Gorilla"`:                      "Ugly Gorilla",
		`misp-galaxy:mitre-attack-pattern="Phishing - T1566"`:   "",
		`tlp:amber`:                                                  "",
		`misp-galaxy:threat-actor=""`:                                "",
		`misp-galaxy:360net-threat-actor="APT-C-01"`:                 "APT-C-01",
		`circl:incident-classification="system-compromise"`:          "",
		`misp-galaxy:threat-actor="Dragon \"quoted\" Panda"`:         `Dragon \"quoted\" Panda`,
		`  misp-galaxy:threat-actor="Spaces Around"  `:               "Spaces Around",
		`misp-galaxy:mitre-intrusion-set="Name - not an id"`:         "Name - not an id",
		`misp-galaxy:threat-actor="Sandworm Team - G0034"`:           "Sandworm Team G0034",
		`stix:campaign="Operation Omega"`:                            "",
		`stix:intrusion-set="APT1"`:                                  "APT1",
		`misp-galaxy:threat-actor="APT27"` + "\n":                    "APT27",
		`misp-galaxy:mitre-enterprise-attack-intrusion-set="APT1"`:   "APT1",
		`misp-galaxy:mitre-intrusion-set="APT29 - G0016" extra text`: "",
	} {
		a, ok := ActorOf(tag)
		got := ""
		if ok {
			got = strings.TrimSpace(a.Name + " " + a.ID)
		}
		if got != want {
			t.Errorf("%q: %q, want %q", tag, got, want)
		}
	}
}

func TestTaken(t *testing.T) {
	ws, vps, c2 := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("198.51.100.50"), netip.MustParseAddr("198.51.100.23")
	mail, op := netip.MustParseAddr("10.20.0.25"), netip.MustParseAddr("203.0.113.45")
	other := netip.MustParseAddr("10.9.9.9")
	day := time.Date(2025, 3, 4, 17, 0, 0, 0, time.UTC)
	ups := []store.Upload{
		{Log: "conn", TS: day, Src: ws, Dst: vps, DstPort: 443, Bytes: 3_000_000, Received: 4000, File: "d1/conn.log.gz", Line: 10},
		{Log: "conn", TS: day.Add(time.Hour), Src: ws, Dst: vps, DstPort: 443, Bytes: 1_000_000, File: "d1/conn.log.gz", Line: 90},
		{Log: "conn", TS: day.AddDate(0, 0, 1), Src: ws, Dst: vps, DstPort: 443, Bytes: 2_000_000, File: "d2/conn.log.gz", Line: 5},
		{Log: "conn", TS: day, Src: ws, Dst: c2, DstPort: 443, Bytes: 1500, File: "d1/conn.log.gz", Line: 11},
		{Log: "conn", TS: day, Src: other, Dst: vps, DstPort: 443, Bytes: 9_000_000}, // not the incident's host
		// The web shell's operator downloads a mailbox export.
		{Log: "conn", TS: day, Src: op, Dst: mail, DstPort: 443, Bytes: 800, Received: 250_000_000, File: "d1/conn.log.gz", Line: 12},
		{Log: "http", TS: day, Src: op, Dst: mail, DstPort: 443, Bytes: 0, Received: 250_000_000, Method: "GET", Host: "mail.ministry.example",
			URI: "/owa/auth/x.aspx?f=minister.pst", File: "d1/http.log.gz", Line: 3},
		{Log: "files", TS: day, Src: mail, Dst: op, Bytes: 250_000_000, Filename: "minister.pst", MIME: "application/vnd.ms-outlook",
			SHA256: "ab12", File: "d1/files.log.gz", Line: 2},
	}
	taken, total := Taken([]netip.Addr{ws, mail}, []netip.Addr{vps, c2, op}, map[netip.Addr][]string{vps: {"backup.vps-host.example"}}, ups)
	if total != 6_000_000+1500+250_000_000 || len(taken) != 3 {
		t.Fatalf("total %d in %+v", total, taken)
	}
	if x := taken[0]; x.Dst != op || x.Bytes != 250_000_000 || len(x.Transfers) != 3 || x.Transfers[0].Name != "minister.pst" ||
		x.Transfers[0].SHA256 != "ab12" || x.Transfers[0].File != "d1/files.log.gz" || len(x.Names) != 0 ||
		x.Transfers[1].Src != op || x.Transfers[1].URI == "" {
		// Our own server's name, asked of us, does not name theirs; records
		// keep their own direction.
		t.Errorf("the mailbox taken: %+v", x)
	}
	if x := taken[1]; x.Dst != vps || x.Bytes != 6_000_000 || x.Conns != 3 || len(x.PerDay) != 2 || x.PerDay[0].Bytes != 4_000_000 ||
		x.Transfers[0].Line != 10 || x.Names[0] != "backup.vps-host.example" || !x.First.Equal(day) {
		t.Errorf("the rented server: %+v", x)
	}
}

func TestCollection(t *testing.T) {
	ev := func(ch string, id uint32, comp string, kv ...string) event.HostEvent {
		e := event.HostEvent{TS: time.Date(2025, 3, 4, 12, int(id%60), 0, 0, time.UTC), Channel: ch, EventID: id, Computer: comp,
			Src: event.Source{File: "hostlogs/x.evtx", Line: int64(id)}}
		for i := 0; i+1 < len(kv); i += 2 {
			e.Fields = append(e.Fields, event.Field{Name: kv[i], Value: kv[i+1]})
		}
		return e
	}
	const sysmon = "Microsoft-Windows-Sysmon/Operational"
	events := []event.HostEvent{
		ev(sysmon, 1, "WS-B.ministry.example", "CommandLine", `rar.exe a -hp -v50m C:\Users\Public\d.rar \\FS01\Dossiers`, "User", `MINISTRY\jdoe`),
		ev(sysmon, 11, "ws-b", "TargetFilename", `C:\Users\Public\d.rar`),
		ev(sysmon, 11, "ws-b", "TargetFilename", `C:\Users\Public\notes.txt`),
		ev("Security", 5145, "FS01", "ShareName", `\\*\Dossiers`, "RelativeTargetName", `Sensitive\a.docx`, "SubjectUserName", "svc", "SubjectDomainName", "MINISTRY"),
		ev("Security", 5145, "FS01", "ShareName", `\\*\Dossiers`, "RelativeTargetName", `Sensitive\a.docx`, "SubjectUserName", "svc", "SubjectDomainName", "MINISTRY"),
		ev("Security", 5140, "FS01", "ShareName", `\\*\IPC$`),
		ev("Security", 4688, "MAIL01", "CommandLine", `powershell New-MailboxExportRequest -Mailbox minister -FilePath \\mail01\c$\x.pst`),
		ev(sysmon, 1, "OTHER", "CommandLine", `7z a x.7z C:\data`),
	}
	got := Collection(events, Scope{Computers: []string{"WS-B", "FS01", "mail01"}, Accounts: []string{`MINISTRY\svc`}})
	// A share read by someone else is everyday use.
	if n := len(Collection(events[3:5], Scope{Computers: []string{"FS01"}, Accounts: []string{"jdoe"}})); n != 0 {
		t.Errorf("another account's share reads: %d", n)
	}
	var lines []string
	for _, a := range got {
		lines = append(lines, a.Computer+"|"+a.What+"|"+a.Object+"|"+a.Account)
	}
	want := []string{
		`WS-B.ministry.example|archive created|rar.exe a -hp -v50m C:\Users\Public\d.rar \\FS01\Dossiers|MINISTRY\jdoe`,
		`ws-b|archive created|C:\Users\Public\d.rar|`,
		`MAIL01|mailbox exported|powershell New-MailboxExportRequest -Mailbox minister -FilePath \\mail01\c$\x.pst|`,
		`FS01|share read|\\*\Dossiers\Sensitive\a.docx|MINISTRY\svc`,
	}
	slices.Sort(lines)
	slices.Sort(want)
	if !slices.Equal(lines, want) {
		t.Errorf("collection:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	for _, a := range got {
		if a.What == "share read" && a.Count != 2 {
			t.Errorf("the share read twice counts %d", a.Count)
		}
	}
}
