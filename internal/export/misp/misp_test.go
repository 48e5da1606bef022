package misp

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/intel"
)

var day = time.Date(2019, 4, 17, 8, 12, 0, 0, time.UTC)

func sample() ([]event.Indicator, []event.Sighting) {
	ind := func(typ event.IOCType, v, tlp string) event.Indicator {
		return event.Indicator{Source: "cert", Type: typ, Value: v, Name: "case-42 " + v, TLP: tlp, Confidence: 80,
			Actionable: true, ValidFrom: day, ValidUntil: day.AddDate(2, 0, 0), Modified: day.Add(time.Hour),
			Tags: []string{"apt", `misp-galaxy:threat-actor="Example"`}, Attack: []string{"T1071.001", "T1048"}}
	}
	inds := []event.Indicator{
		ind(event.IOCIP, "198.51.100.23", event.TLPAmber),
		ind(event.IOCIP, "2001:db8::1", event.TLPGreen),
		ind(event.IOCCIDR, "203.0.113.0/24", event.TLPGreen),
		ind(event.IOCDomain, "update-check.example.net", event.TLPAmberStrict),
		ind(event.IOCURL, "update-check.example.net/api/v2/sync", event.TLPAmber),
		ind(event.IOCMD5, strings.Repeat("ab", 16), event.TLPClear),
		ind(event.IOCSHA1, strings.Repeat("cd", 20), event.TLPClear),
		ind(event.IOCSHA256, strings.Repeat("ef", 32), event.TLPRed),
		ind(event.IOCCertSHA1, "aabbccddeeff00112233445566778899aabbccdd", event.TLPGreen),
		ind(event.IOCCertSHA256, strings.Repeat("12", 32), event.TLPGreen),
		ind(event.IOCJA3, strings.Repeat("0f", 16), event.TLPGreen),
		ind(event.IOCUserAgent, "Mozilla/4.0 (compatible; \"odd\")", event.TLPGreen),
		ind(event.IOCFilename, "errorEE.aspx", event.TLPGreen),
		ind(event.IOCEmail, "ops@update-check.example.net", event.TLPGreen),
	}
	port := ind(event.IOCIP, "203.0.113.45", event.TLPAmber)
	port.Port, port.Confidence, port.ValidUntil = 8443, -1, time.Time{}
	unnamed := ind(event.IOCDomain, "cdn-metrics.example.org", "")
	unnamed.Name, unnamed.Tags, unnamed.Attack = "", nil, nil
	revoked := ind(event.IOCIP, "192.0.2.66", event.TLPGreen)
	revoked.Revoked, revoked.Actionable = true, false
	context := ind(event.IOCDomain, "www.example.com", event.TLPClear)
	context.Actionable = false
	ja4 := ind(event.IOCJA4, "t13d1516h2_8daaf6152771_02713d6af862", event.TLPGreen)
	inds = append(inds, port, unnamed, revoked, context, ja4)
	sightings := []event.Sighting{
		{Key: inds[0].Key(), Sensor: "dmz", Log: "conn", Observed: "198.51.100.23", First: day, Last: day.AddDate(1, 10, 0), Count: 41233, Days: 690},
		{Key: inds[3].Key(), Sensor: "dmz", Log: "dns", Observed: "a1.update-check.example.net", First: day, Last: day, Count: 1, Days: 1},
	}
	return inds, sightings
}

// TestRoundTrip: dwell's MISP event imports into dwell as the same
// indicators.
func TestRoundTrip(t *testing.T) {
	inds, sightings := sample()
	data, skipped, err := Event(inds, sightings, Options{Producer: "CERT.be"})
	if err != nil {
		t.Fatal(err)
	}
	if skipped["ja4: no MISP attribute type"] != 1 || len(skipped) != 1 {
		t.Errorf("skipped %v", skipped)
	}
	r, err := intel.ParseMISPEvent(data, "cert")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Skipped) > 0 {
		t.Errorf("skipped on re-import: %+v", r.Skipped)
	}
	got := map[string]event.Indicator{}
	for _, i := range r.Indicators {
		got[i.Key()] = i
	}
	for _, want := range inds {
		if want.Type == event.IOCJA4 {
			continue
		}
		g, ok := got[want.Key()]
		if !ok {
			t.Errorf("%s %s not re-imported", want.Type, want.Value)
			continue
		}
		delete(got, want.Key())
		if want.Name == "" {
			want.Name = string(want.Type) + " " + want.Value
		}
		for _, d := range diff(want, g) {
			t.Errorf("%s %s: %s", want.Type, want.Value, d)
		}
	}
	for k := range got {
		t.Errorf("re-import added %q", k)
	}
}

func diff(a, b event.Indicator) []string {
	var out []string
	check := func(name string, x, y any) {
		xs, _ := json.Marshal(x)
		ys, _ := json.Marshal(y)
		if !bytes.Equal(xs, ys) {
			out = append(out, name+": "+string(xs)+" → "+string(ys))
		}
	}
	check("port", a.Port, b.Port)
	check("name", a.Name, b.Name)
	check("tlp", a.TLP, b.TLP)
	check("confidence", a.Confidence, b.Confidence)
	check("valid_from", a.ValidFrom, b.ValidFrom)
	check("valid_until", a.ValidUntil, b.ValidUntil)
	check("modified", a.Modified, b.Modified)
	check("tags", a.Tags, b.Tags)
	check("attack", a.Attack, b.Attack)
	check("actionable", a.Actionable, b.Actionable)
	check("revoked", a.Revoked, b.Revoked)
	return out
}

func TestEventShape(t *testing.T) {
	inds, sightings := sample()
	data, _, err := Event(inds, sightings, Options{Producer: "CERT.be"})
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Event struct {
			UUID, Info, Date, Distribution string
			Published                      bool
			Attribute                      []struct {
				UUID, Type, Value string
				Sighting          []struct {
					Type         string `json:"type"`
					DateSighting string `json:"date_sighting"`
					Source       string `json:"source"`
				}
			}
		}
	}
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatal(err)
	}
	e := ev.Event
	if e.Distribution != "0" || e.Published || e.Date != "2019-04-17" || !strings.Contains(e.Info, "18 indicator(s), 2 sighted") {
		t.Errorf("event %+v", e)
	}
	uuids := map[string]bool{}
	for _, a := range e.Attribute {
		if uuids[a.UUID] {
			t.Errorf("uuid %s twice", a.UUID)
		}
		uuids[a.UUID] = true
		if a.Value == "198.51.100.23" {
			if len(a.Sighting) != 2 || a.Sighting[0].DateSighting != "1555488720" || !strings.Contains(a.Sighting[0].Source, "dmz conn") {
				t.Errorf("sightings of the C2 address: %+v", a.Sighting)
			}
		}
		if a.Value == "203.0.113.45|8443" && a.Type != "ip-dst|port" {
			t.Errorf("address with port as %s", a.Type)
		}
	}
	_, skipped, _ := Event(inds, sightings, Options{MaxTLP: event.TLPGreen})
	if skipped["marked above TLP:GREEN"] != 6 { // 3 amber, 1 amber+strict, 1 red, 1 unmarked (as amber)
		t.Errorf("TLP:GREEN export skipped %v", skipped)
	}
	// Deterministic, whatever the order of the input.
	slices.Reverse(inds)
	again, _, _ := Event(inds, sightings, Options{Producer: "CERT.be"})
	if !bytes.Equal(data, again) {
		t.Error("the event depends on the order of its input")
	}
}
