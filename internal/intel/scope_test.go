package intel

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/dwell-nsm/dwell/internal/event"
)

// TestScopeRefusesBroadIndicators: the indicators that would match the
// network's own traffic are skipped with their reason, whatever format
// they came in; the others are kept.
func TestScopeRefusesBroadIndicators(t *testing.T) {
	list := "10.0.0.0/8\n0.0.0.0/0\n::/0\n127.0.0.1\n192.168.1.5\nfe80::1\n224.0.0.251\n100.64.0.0/10\n198.19.0.0/12\n" +
		"45.0.0.0/8\n2a00::/16\n10.20.0.44\ncom\nco.uk\nd41d8cd98f00b204e9800998ecf8427e\n" +
		// kept
		"198.51.100.7\n45.33.32.0/24\n2a01:4f8::/32\nevil.example.com\nbadhost.co.uk\n" + strings.Repeat("ab", 32) + "\n"
	misp := `{"Event":{"uuid":"5f","info":"x","Attribute":[{"uuid":"a1","type":"ip-dst","value":"10.0.0.0/8","to_ids":true},` +
		`{"uuid":"a2","type":"ip-dst","value":"203.0.113.9","to_ids":true}]}}`
	stix := `{"type":"bundle","id":"bundle--1","objects":[{"type":"indicator","spec_version":"2.1","id":"indicator--1",` +
		`"created":"2024-01-01T00:00:00Z","modified":"2024-01-01T00:00:00Z","valid_from":"2024-01-01T00:00:00Z","pattern_type":"stix",` +
		`"pattern":"[ipv4-addr:value = '10.0.0.0/8'] OR [ipv4-addr:value = '0.0.0.0/0'] OR [ipv4-addr:value = '203.0.113.10']"}]}`
	scope := Scope{Local: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.0/24")}}
	for name, tc := range map[string]struct {
		data, format string
		kept         int
	}{
		"list": {list, "list", 6}, "misp": {misp, "misp-event", 1}, "stix": {stix, "stix", 1},
	} {
		r, err := Parse([]byte(tc.data), tc.format)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		before := len(r.Skipped)
		scope.Vet(r)
		var kept []string
		for _, ind := range r.Indicators {
			kept = append(kept, ind.Value)
			if strings.HasPrefix(ind.Value, "10.") || strings.HasSuffix(ind.Value, "/0") || ind.Value == "com" {
				t.Errorf("%s: kept %s", name, ind.Value)
			}
		}
		if len(kept) != tc.kept {
			t.Errorf("%s: kept %v, want %d", name, kept, tc.kept)
		}
		for _, s := range r.Skipped[before:] {
			if !strings.HasPrefix(s.Reason, TooBroad) && !strings.HasPrefix(s.Reason, NotAttacker) || s.What == "" {
				t.Errorf("%s: skipped %+v", name, s)
			}
		}
		if name == "list" && len(r.Skipped)-before != 14 { // and "com", which the list parser skips: one label
			t.Errorf("list: %d refused: %+v", len(r.Skipped)-before, r.Skipped[before:])
		}
	}

	// A revocation passes: it matches nothing and must reach what it revokes.
	r := &Result{Indicators: []event.Indicator{{Type: event.IOCCIDR, Value: "10.0.0.0/8", Revoked: true}}}
	scope.Vet(r)
	if len(r.Indicators) != 1 {
		t.Errorf("a revocation was refused: %+v", r.Skipped)
	}
}
