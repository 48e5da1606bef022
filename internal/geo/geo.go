// Package geo tells where an address is registered: its autonomous
// system (number and organisation), ISP and country, from the offline
// MaxMind-format databases (.mmdb: MaxMind GeoLite2/GeoIP2, DB-IP, IPinfo)
// the user supplies, read with github.com/oschwald/maxminddb-golang.
//
// Several databases are consulted together (an ASN database and a
// country or city database, typically) and their answers merged, the
// first that gives a field winning. A database file replaced on disk (the
// weekly download) is read again at the next lookup after it changed, so
// a long-running dwell serve never needs a restart for it. What the
// databases say is registration data, not where an attacker sits: the
// answers are evidence for the origin question, never its answer.
package geo

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Info is what the databases say of one address.
type Info struct {
	ASN     uint   `json:"asn,omitempty"`
	ASOrg   string `json:"as_org,omitempty"`
	ISP     string `json:"isp,omitempty"`
	Country string `json:"country,omitempty"` // ISO 3166-1 alpha-2
	// CountryName is the country's English name, when the database has it.
	CountryName string `json:"country_name,omitempty"`
	// Registered is the country the network is registered in, when it
	// differs from Country.
	Registered string `json:"registered_country,omitempty"`
}

// Empty reports whether no database knew the address.
func (i Info) Empty() bool { return i == Info{} }

// String is the one-line form: "AS15169 Google Inc., US".
func (i Info) String() string {
	s := ""
	if i.ASN != 0 {
		s = fmt.Sprintf("AS%d", i.ASN)
	}
	if org := cmp.Or(i.ASOrg, i.ISP); org != "" {
		s = join(s, org, " ")
	}
	if i.Country != "" {
		s = join(s, i.Country, ", ")
	}
	return s
}

func join(a, b, sep string) string {
	if a == "" {
		return b
	}
	return a + sep + b
}

// record is the fields dwell reads, in MaxMind's layout (ASN, ISP,
// Country and City databases share it).
type record struct {
	ASN     uint   `maxminddb:"autonomous_system_number"`
	ASOrg   string `maxminddb:"autonomous_system_organization"`
	ISP     string `maxminddb:"isp"`
	Country struct {
		ISOCode string            `maxminddb:"iso_code"`
		Names   map[string]string `maxminddb:"names"`
	} `maxminddb:"country"`
	Registered struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
}

// DB is a set of databases. It is safe for concurrent use.
type DB struct {
	mu      sync.Mutex
	files   []*file
	checked time.Time
	every   time.Duration
}

type file struct {
	path  string
	r     *maxminddb.Reader
	mtime time.Time
	size  int64
}

// Open opens the databases at paths; one that cannot be read or is not a
// MaxMind database is an error naming it.
func Open(paths []string) (*DB, error) {
	db := &DB{every: 10 * time.Second, checked: time.Now()}
	for _, p := range paths {
		f := &file{path: p}
		if err := f.load(); err != nil {
			_ = db.Close()
			return nil, err
		}
		db.files = append(db.files, f)
	}
	return db, nil
}

// load reads the file whole (a replaced file never changes under the
// reader).
func (f *file) load() error {
	st, err := os.Stat(f.path)
	if err != nil {
		return fmt.Errorf("geo database: %w", err)
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("geo database: %w", err)
	}
	r, err := maxminddb.OpenBytes(data)
	if err != nil {
		return fmt.Errorf("geo database %s: %w", f.path, err)
	}
	if err := r.Verify(); err != nil {
		return fmt.Errorf("geo database %s: %w", f.path, err)
	}
	f.r, f.mtime, f.size = r, st.ModTime(), st.Size()
	return nil
}

// refresh reads again the files that changed on disk since they were
// read; a file that cannot be read now keeps its last good contents.
func (db *DB) refresh(now time.Time) error {
	if now.Sub(db.checked) < db.every {
		return nil
	}
	db.checked = now
	var errs []error
	for _, f := range db.files {
		st, err := os.Stat(f.path)
		if err != nil || (st.ModTime().Equal(f.mtime) && st.Size() == f.size) {
			continue
		}
		nf := &file{path: f.path}
		if err := nf.load(); err != nil {
			errs = append(errs, err)
			continue
		}
		_ = f.r.Close()
		*f = *nf
	}
	return errors.Join(errs...)
}

// Lookup returns what the databases say of a, and whether any knew it.
// A database that has changed on disk is read again first (checked at
// most every ten seconds); an error then is returned with the answer of
// the databases as they were.
func (db *DB) Lookup(a netip.Addr) (Info, bool, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	err := db.refresh(time.Now())
	var info Info
	for _, f := range db.files {
		res := f.r.Lookup(a.Unmap())
		if !res.Found() {
			continue
		}
		var rec record
		if derr := res.Decode(&rec); derr != nil {
			err = errors.Join(err, fmt.Errorf("geo database %s, %s: %w", f.path, a, derr))
			continue
		}
		if info.ASN == 0 {
			info.ASN = rec.ASN
		}
		info.ASOrg = cmp.Or(info.ASOrg, rec.ASOrg)
		info.ISP = cmp.Or(info.ISP, rec.ISP)
		if info.Country == "" && rec.Country.ISOCode != "" {
			info.Country, info.CountryName = rec.Country.ISOCode, rec.Country.Names["en"]
		}
		info.Registered = cmp.Or(info.Registered, rec.Registered.ISOCode)
	}
	if info.Registered == info.Country {
		info.Registered = ""
	}
	return info, !info.Empty(), err
}

// Close releases the databases.
func (db *DB) Close() error {
	var errs []error
	for _, f := range db.files {
		if f.r != nil {
			errs = append(errs, f.r.Close())
		}
	}
	return errors.Join(errs...)
}
