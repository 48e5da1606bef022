package event

import (
	"net/netip"
	"strconv"
	"time"
)

// IOCType is what an indicator's value is, and so which observed values it
// is matched against (docs/intel.md).
type IOCType string

// Indicator types. The first group is matched against Zeek logs; the
// others are kept, listed and exported, but dwell has no telemetry to match
// them against yet.
const (
	IOCIP         IOCType = "ip"          // an IPv4 or IPv6 address, with Port when the source gives one
	IOCCIDR       IOCType = "cidr"        // a network ("203.0.113.0/24")
	IOCDomain     IOCType = "domain"      // a domain name, matching itself and every subdomain
	IOCURL        IOCType = "url"         // host and path of a URL ("example.com/a/b"): scheme, port and query are dropped
	IOCMD5        IOCType = "md5"         // a file hash (files.log)
	IOCSHA1       IOCType = "sha1"        // a file hash
	IOCSHA256     IOCType = "sha256"      // a file hash
	IOCJA3        IOCType = "ja3"         // a TLS client fingerprint (ssl.log ja3)
	IOCJA3S       IOCType = "ja3s"        // a TLS server fingerprint
	IOCJA4        IOCType = "ja4"         // a JA4 TLS client fingerprint
	IOCCertSHA1   IOCType = "x509-sha1"   // a certificate's SHA-1 fingerprint
	IOCCertSHA256 IOCType = "x509-sha256" // a certificate's SHA-256 fingerprint (Zeek's default)
	IOCUserAgent  IOCType = "user-agent"  // an HTTP User-Agent, exactly

	IOCEmail    IOCType = "email"    // an e-mail address
	IOCFilename IOCType = "filename" // a file name
)

// Matchable reports whether dwell matches indicators of type t against
// stored telemetry.
func (t IOCType) Matchable() bool {
	switch t {
	case IOCIP, IOCCIDR, IOCDomain, IOCURL, IOCMD5, IOCSHA1, IOCSHA256, IOCJA3, IOCJA3S, IOCJA4, IOCCertSHA1, IOCCertSHA256, IOCUserAgent:
		return true
	}
	return false
}

// Valid reports whether t is one of the indicator types above.
func (t IOCType) Valid() bool { return t.Matchable() || t == IOCEmail || t == IOCFilename }

// TLP levels, by their TLP 2.0 names; TLP 1.0's WHITE is read as CLEAR.
const (
	TLPClear       = "clear"
	TLPGreen       = "green"
	TLPAmber       = "amber"
	TLPAmberStrict = "amber+strict"
	TLPRed         = "red"
)

// TLPRank orders TLP levels from the least restrictive (CLEAR, 1) to the
// most (RED, 5); anything else is 0.
func TLPRank(level string) int {
	switch level {
	case TLPClear:
		return 1
	case TLPGreen:
		return 2
	case TLPAmber:
		return 3
	case TLPAmberStrict:
		return 4
	case TLPRed:
		return 5
	}
	return 0
}

// Indicator is one indicator of compromise from a threat-intelligence
// source, with the value normalised for matching (lower-case names and
// hashes, canonical addresses and prefixes).
type Indicator struct {
	Source string  `json:"source"`        // where it came from, as named at import (a feed, a file, a TAXII collection)
	Type   IOCType `json:"type"`          // what Value is
	Value  string  `json:"value"`         // the normalised value
	Port   uint16  `json:"port,omitzero"` // IOCIP: only this destination port (0: any)
	// Ref is the object it came from (a MISP attribute uuid, a STIX
	// indicator id); Group its event or report (a MISP event uuid, a STIX
	// bundle id); Name what the source says of it.
	Ref   string `json:"ref,omitempty"`
	Group string `json:"group,omitempty"`
	Name  string `json:"name,omitempty"`
	// ValidFrom and ValidUntil bound when the source vouches for it (zero:
	// open). Retro-hunts look at all history regardless: infrastructure
	// published today was in use before.
	ValidFrom  time.Time `json:"valid_from,omitzero"`
	ValidUntil time.Time `json:"valid_until,omitzero"`
	Confidence int       `json:"confidence"`       // 0–100; -1 when the source gives none
	TLP        string    `json:"tlp,omitempty"`    // a TLP* level, "" when unmarked
	Tags       []string  `json:"tags,omitempty"`   // the source's tags and labels
	Attack     []string  `json:"attack,omitempty"` // ATT&CK technique ids named by the source
	// Actionable is MISP's to_ids: meant for detection, not only context.
	// STIX indicators are actionable.
	Actionable bool `json:"actionable"`
	// Revoked indicators (MISP deleted, STIX revoked) are kept so that a
	// re-import cannot bring them back, and never matched or blocked.
	Revoked  bool      `json:"revoked,omitzero"`
	Modified time.Time `json:"modified,omitzero"` // when the source last changed it
}

// Key identifies an indicator: one per source, type, value and port.
// Importing the same indicator again updates it.
func (i *Indicator) Key() string {
	k := i.Source + "\x00" + string(i.Type) + "\x00" + i.Value
	if i.Port != 0 {
		k += "\x00" + strconv.Itoa(int(i.Port))
	}
	return k
}

// Sighting is an indicator seen in stored telemetry.
type Sighting struct {
	Key      string `json:"key"` // the indicator's Key
	Sensor   string `json:"sensor"`
	Log      string `json:"log"`      // where it was seen: conn, dns, http, ssl, x509, files
	Observed string `json:"observed"` // the value seen (a subdomain of a domain indicator, an address in a network)
	// First and Last seen; Count records; Days distinct UTC days.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	Count int64     `json:"count"`
	Days  int64     `json:"days"`
	// Peers are the other ends of the records (the hosts that talked to
	// an address, asked for a name, fetched a file), up to a few dozen.
	Peers []netip.Addr `json:"peers,omitempty"`
}
