package stix

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/geo"
)

func TestIncident(t *testing.T) {
	a := netip.MustParseAddr
	t0 := time.Date(2025, 3, 4, 9, 20, 0, 0, time.UTC)
	inc := &correlate.Incident{ID: "INC-5adc20b96c", Class: correlate.ClassEspionage, Summary: "espionage on 2 hosts", DwellStart: t0,
		LastSeen: t0.Add(240 * time.Hour), Hosts: []netip.Addr{a("10.20.0.25")},
		Infrastructure: []correlate.Infra{
			{Kind: "ip", Value: "198.51.100.23", Detectors: []string{"beacon", "iocmatch"}, Origin: &geo.Info{ASN: 64501, ASOrg: "Rent-A-Server", Country: "NL"}},
			{Kind: "ip", Value: "203.0.113.45", Detectors: []string{"httpanom", "exfil"}, Origin: &geo.Info{ASN: 64500, ASOrg: "Examplia Telecom", Country: "ZZ"}},
			{Kind: "domain", Value: "cdn-update.example", Detectors: []string{"beacon"}},
		},
		FirstContact: &correlate.Contact{At: t0.Add(-48 * time.Hour), Src: a("10.20.0.25"), Dst: a("198.51.100.23"), Port: 443, Proto: "tcp", Conns: 3},
		Answers: &correlate.Answers{Caveat: "hypotheses, not findings of fact", Taken: []correlate.Taken{{Dst: a("203.0.113.45"), Bytes: 250_000_000,
			Transfers: []correlate.Transferred{
				{At: t0, Log: "files", Src: a("10.20.0.25"), Dst: a("203.0.113.45"), Port: 80, Bytes: 250_000_000, Name: "minister.pst",
					SHA256: strings.Repeat("ab", 32), MIME: "application/vnd.ms-outlook", File: "files.log", Line: 9},
				{At: t0, Log: "conn", Src: a("203.0.113.45"), Dst: a("10.20.0.25"), Port: 80, Bytes: 250_000_400, File: "conn.log", Line: 4},
			}}},
			Hypotheses: []correlate.Hypothesis{
				{Actor: "GLASS LYNX", Aliases: []string{"TA-EX1"}, Country: "ZZ", Sponsor: "Examplia", Score: 0.82, Intel: 0.68, Behaviour: 0.84,
					For: []string{"indicator 198.51.100.23"}},
				{Actor: "APT27", ID: "G0027", Score: 0.31, Behaviour: 0.62, Against: []string{"not known to use T1572"}},
			}}}
	data, err := Incident(inc, event.TLPAmber, Options{Producer: "CERT.test", Created: t0.Add(300 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Incident(inc, event.TLPAmber, Options{Producer: "CERT.test", Created: t0.Add(300 * time.Hour)})
	if string(again) != string(data) {
		t.Error("the same incident gave two bundles")
	}
	counts := map[string]int{}
	byID := map[string]map[string]any{}
	for _, o := range objects(t, data) {
		typ, _ := o["type"].(string)
		counts[typ]++
		byID[o["id"].(string)] = o
		for _, e := range coreRules(o) {
			t.Errorf("%s: %s", o["id"], e)
		}
	}
	for typ, n := range map[string]int{"campaign": 1, "infrastructure": 1, "intrusion-set": 2, "autonomous-system": 2, "file": 1,
		"observed-data": 2, "location": 2, "marking-definition": 1} {
		if counts[typ] != n {
			t.Errorf("%d %s object(s), want %d (%v)", counts[typ], typ, n, counts)
		}
	}
	// Every reference resolves within the bundle (but the TLP marking,
	// which STIX defines).
	var attributed []float64
	for _, o := range byID {
		for k, v := range o {
			var ids []string
			if strings.HasSuffix(k, "_ref") {
				ids = []string{v.(string)}
			} else if strings.HasSuffix(k, "_refs") && k != "object_marking_refs" {
				ids = refs(v)
			}
			for _, id := range ids {
				if byID[id] == nil {
					t.Errorf("%s.%s: %s is not in the bundle", o["id"], k, id)
				}
			}
		}
		if o["relationship_type"] == "attributed-to" {
			attributed = append(attributed, o["confidence"].(float64))
			if byID[o["source_ref"].(string)]["type"] != "campaign" || byID[o["target_ref"].(string)]["type"] != "intrusion-set" {
				t.Errorf("attributed-to from %s to %s", o["source_ref"], o["target_ref"])
			}
		}
	}
	slices.Sort(attributed)
	if !slices.Equal(attributed, []float64{31, 82}) {
		t.Errorf("attribution confidences %v, want the hypotheses' scores", attributed)
	}
	if !strings.Contains(string(data), `"country": "ZZ"`) || !strings.Contains(string(data), "minister.pst") {
		t.Error("the country or the file taken is missing")
	}
}
