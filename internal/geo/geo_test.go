package geo

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const testData = "../../../shared/datasets/maxmind-test-mmdb/test-data"

func dbPath(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(testData, name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("dataset maxmind-test-mmdb is not here (%v); skipping", err)
	}
	return p
}

// The shared test databases answer as their README's cross-reference
// says: the ASN database's number and organisation merged with the
// country database's country, the first database that gives a field
// winning; an address neither knows is not found.
func TestLookup(t *testing.T) {
	db, err := Open([]string{dbPath(t, "GeoLite2-ASN-Test.mmdb"), dbPath(t, "GeoIP2-ISP-Test.mmdb"), dbPath(t, "GeoLite2-Country-Test.mmdb")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range []struct {
		addr string
		want Info
	}{
		{"1.0.0.1", Info{ASN: 15169, ASOrg: "Google Inc."}},
		{"67.43.156.1", Info{ASN: 35908, ISP: "Loud Packet", Country: "BT", CountryName: "Bhutan", Registered: "RO"}},
		{"89.160.20.112", Info{ASN: 29518, ASOrg: "Bredband2 AB", ISP: "Bredband2 AB", Country: "SE", CountryName: "Sweden", Registered: "DE"}},
		{"81.2.69.142", Info{Country: "GB", CountryName: "United Kingdom", Registered: "US"}},
		{"::ffff:89.160.20.112", Info{ASN: 29518, ASOrg: "Bredband2 AB", ISP: "Bredband2 AB", Country: "SE", CountryName: "Sweden", Registered: "DE"}},
		{"2001:218::1", Info{Country: "JP", CountryName: "Japan"}},
	} {
		got, ok, err := db.Lookup(netip.MustParseAddr(c.addr))
		if err != nil || !ok || got != c.want {
			t.Errorf("%s: %+v %v %v, want %+v", c.addr, got, ok, err, c.want)
		}
	}
	for _, a := range []string{"10.0.0.1", "127.0.0.1", "1.1.1.1"} {
		if got, ok, _ := db.Lookup(netip.MustParseAddr(a)); ok {
			t.Errorf("%s found: %+v", a, got)
		}
	}
	if s := (Info{ASN: 15169, ASOrg: "Google Inc.", Country: "US"}).String(); s != "AS15169 Google Inc., US" {
		t.Errorf("String %q", s)
	}
}

// A database replaced on disk is read again without a restart; a
// broken one is refused at open, and a broken replacement keeps the last
// good contents with an error.
func TestRefreshAndBroken(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "live.mmdb")
	copyFile(t, dbPath(t, "GeoLite2-ASN-Test.mmdb"), live)
	db, err := Open([]string{live})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a := netip.MustParseAddr("81.2.69.142")
	if _, ok, _ := db.Lookup(a); ok {
		t.Fatal("the ASN database knows 81.2.69.142")
	}
	copyFile(t, dbPath(t, "GeoLite2-Country-Test.mmdb"), live)
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(live, later, later); err != nil {
		t.Fatal(err)
	}
	db.mu.Lock()
	db.checked = time.Time{}
	db.mu.Unlock()
	if got, ok, err := db.Lookup(a); !ok || err != nil || got.Country != "GB" {
		t.Fatalf("after the replacement: %+v %v %v", got, ok, err)
	}
	copyFile(t, dbPath(t, "GeoIP2-City-Test-Invalid-Node-Count.mmdb"), live)
	db.mu.Lock()
	db.checked = time.Time{}
	db.mu.Unlock()
	if got, ok, err := db.Lookup(a); !ok || err == nil || got.Country != "GB" {
		t.Errorf("broken replacement: %+v %v %v", got, ok, err)
	}
	if _, err := Open([]string{dbPath(t, "GeoIP2-City-Test-Invalid-Node-Count.mmdb")}); err == nil ||
		!strings.Contains(err.Error(), "Invalid-Node-Count") {
		t.Errorf("a broken database opened: %v", err)
	}
	if _, err := Open([]string{filepath.Join(dir, "missing.mmdb")}); err == nil {
		t.Error("a missing database opened")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
