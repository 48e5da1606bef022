package store

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Window limits an analytic query to records with Since <= ts < Until. A
// zero bound is open: the zero Window is all history of Zeek's conn log.
type Window struct {
	Since time.Time
	Until time.Time
	// Conns selects the connection records that the analytics over
	// connections read (Span, Pairs, DailyFlows, HostDays, Destinations,
	// LocalAddrs, Series of SeriesConn and SeriesSessions, Fanout and the
	// connections of Uploads): Zeek's conn log, or the sessions stitched
	// from exported flow records (FlowSessions, docs/flows.md). The other
	// analytics read Zeek's other logs whatever it says.
	Conns ConnSource
}

// ConnSource names where connection records come from.
type ConnSource uint8

// Connection sources.
const (
	ConnLog      ConnSource = iota // Zeek's conn.log (and open_conn.log)
	FlowSessions                   // exported flows stitched into sessions (Sessions)
)

// String names the source as findings and messages do: "conn", "flow".
func (c ConnSource) String() string {
	if c == FlowSessions {
		return "flow"
	}
	return "conn"
}

// Contains reports whether t is inside w.
func (w Window) Contains(t time.Time) bool {
	return (w.Since.IsZero() || !t.Before(w.Since)) && (w.Until.IsZero() || t.Before(w.Until))
}

// Analytics are the typed aggregate queries detectors run. Each returns
// aggregates, never raw rows, so a backend can compute them where the data
// is (a cluster) and only results travel. Results stream through fn in the
// order each method states; fn's argument is only valid during the call.
// Every backend returns the same results for the same data (storetest).
type Analytics interface {
	// Span returns the first and last timestamp of conn records in w, and
	// how many there are; ok is false when there are none.
	Span(ctx context.Context, w Window) (first, last time.Time, n int64, ok bool, err error)
	// Pairs aggregates conn records per (sensor, src, dst, dst port, proto)
	// for the pairs f keeps, ordered by those keys.
	Pairs(ctx context.Context, w Window, f PairFilter, fn func(*PairStat) error) error
	// DailyFlows aggregates conn records per (sensor, src, dst, UTC day)
	// for the records and pairs f keeps, ordered by those keys.
	DailyFlows(ctx context.Context, w Window, f FlowFilter, fn func(*DailyFlow) error) error
	// HostDays sums orig_bytes per (sensor, src, UTC day) over the records
	// f's sides keep (its MinPairSrcBytes is ignored), ordered by those keys.
	HostDays(ctx context.Context, w Window, f FlowFilter, fn func(*HostDay) error) error
	// Destinations aggregates conn records per destination address, all
	// sensors together: distinct sources among clients, records, first and
	// last seen; ordered by address text.
	Destinations(ctx context.Context, w Window, clients []netip.Addr, fn func(*DstStat) error) error
	// LocalAddrs returns the distinct addresses inside local that appear at
	// either end of a conn record, in address order.
	LocalAddrs(ctx context.Context, w Window, local []netip.Prefix) ([]netip.Addr, error)
	// MatchIndicators matches the stored indicators that are neither
	// revoked nor of a type dwell cannot match against the values
	// observed in w, and streams a sighting per indicator, sensor, log and
	// observed value, ordered by those keys (docs/intel.md). A window is
	// taken in whole UTC days (WindowDays): the summary is kept per day.
	MatchIndicators(ctx context.Context, w Window, fn func(*event.Sighting) error) error
	// Series returns, for each key of the given kind that f keeps, its
	// record times in order and the matching sizes, in no defined order of
	// keys (a backend may work through the keys in parts).
	Series(ctx context.Context, kind SeriesKind, w Window, f SeriesFilter, fn func(*Series) error) error
	// OpenConns returns the last report of each still-open connection
	// (open_conn) in w, ordered by uid.
	OpenConns(ctx context.Context, w Window, fn func(*OpenConn) error) error
	// DNSNames aggregates the dns records f keeps per (sensor, src, query,
	// qtype name, rcode name), ordered by those keys.
	DNSNames(ctx context.Context, w Window, f DNSFilter, fn func(*DNSName) error) error
	// TLSSessions aggregates ssl records per (sensor, src, dst, server
	// name, JA3, JA4, validation status, sni_matches_cert, first
	// certificate), with the certificate's subject, issuer, validity and
	// DNS names from x509 when known, ordered by those keys.
	TLSSessions(ctx context.Context, w Window, fn func(*TLSSession) error) error
	// HostEvents streams the Windows events (winlog) f keeps, ordered by
	// (computer, ts, record_id, source_file, source_line).
	HostEvents(ctx context.Context, w Window, f HostFilter, fn func(*event.HostEvent) error) error
	// Alerts streams the IDS alerts in w, ordered by (sensor, src, dst,
	// signature id, ts, source_file, source_line).
	Alerts(ctx context.Context, w Window, fn func(*event.Alert) error) error
	// HTTPRequests aggregates http records per (sensor, src, dst, host,
	// method, URI path without the query string, user agent), ordered by
	// those keys.
	HTTPRequests(ctx context.Context, w Window, fn func(*HTTPRequest) error) error
	// ServerNames counts ssl records per (sensor, src, server name) and
	// http records per (sensor, src, host), added together per (sensor,
	// src, name) and ordered by those keys: which clients reach which
	// names, however they resolved them.
	ServerNames(ctx context.Context, w Window, fn func(*ServerName) error) error
	// Resolved aggregates the addresses in DNS answers per (sensor,
	// address): the least name that resolved to it, first and last;
	// ordered by sensor and address text. Answers that are not addresses
	// (names, TXT data) are left out.
	Resolved(ctx context.Context, w Window, fn func(*Resolution) error) error
	// Fanout aggregates the connections of each (sensor, source,
	// protocol) per destination port, counting distinct destinations
	// (FanoutByPort), or per destination, counting distinct ports
	// (FanoutByHost); it keeps the groups that reach f.MinTargets, ordered
	// by sensor, source, protocol, then port or destination text.
	Fanout(ctx context.Context, w Window, f FanoutFilter, fn func(*Fanout) error) error
	// Uploads returns each transfer of at least f.MinBytes from its sender
	// that f's sides keep:
	// connections by their orig_bytes, HTTP requests by their body, and
	// files by the bytes seen, sent by whichever end files.log says (HTTP
	// and files only over Zeek's conn log: flows have neither); ordered by
	// sensor, source and destination text, time, log, uid and bytes.
	Uploads(ctx context.Context, w Window, f UploadFilter, fn func(*Upload) error) error
	// PassiveDNS returns which names pointed at which addresses in w, over
	// all sensors: DNS answers that are addresses (the query's name),
	// TLS server names and HTTP hosts (with the server's address; hosts
	// that are addresses or carry a port left out), names lower-cased. One
	// row per (log, name, address), for the rows f keeps; ordered by name,
	// address text and log.
	PassiveDNS(ctx context.Context, w Window, f NameFilter, fn func(*NameAddr) error) error
	// ServerPrints returns what the ssl and http records in w show of each
	// server address, over all sensors: its leaf certificate (the first of
	// cert_chain_fps), JA3S and JA4S, and its HTTP Server header, each with
	// the records, distinct clients, first and last. One row per (kind, value, address) that f
	// keeps; ordered by kind, value and address text.
	ServerPrints(ctx context.Context, w Window, f PrintFilter, fn func(*ServerPrint) error) error
	// FloodVectors aggregates flow records per (sensor, destination, UTC
	// minute of the flow's start, vector) for the minutes in which a
	// destination received at least minPackets packets (all vectors,
	// sampling applied), ordered by those keys.
	FloodVectors(ctx context.Context, w Window, minPackets int64, fn func(*FloodVector) error) error
}

// NameAddr is a name seen pointing at an address: passive DNS.
type NameAddr struct {
	Log         string // "dns", "ssl" or "http"
	Name        string
	Addr        netip.Addr
	Count       int64 // records
	First, Last time.Time
}

// Kinds of ServerPrint.
const (
	PrintCert = "cert" // the leaf certificate's SHA-256
	PrintJA3S = "ja3s"
	PrintJA4S = "ja4s"
	// PrintServer is the HTTP reply's Server header, from the http log.
	PrintServer = "server"
)

// ServerPrint is one fingerprint a server address showed.
type ServerPrint struct {
	Kind        string // PrintCert, PrintJA3S, PrintJA4S or PrintServer
	Value       string
	Addr        netip.Addr
	Count       int64 // records
	Clients     int64 // distinct clients
	First, Last time.Time
}

// Resolution is what DNS answers say of one address.
type Resolution struct {
	Sensor      string
	Addr        netip.Addr
	Name        string // the least name that resolved to it
	First, Last time.Time
}

// FanoutBy says what Fanout counts.
type FanoutBy uint8

// Fanout modes.
const (
	FanoutByPort FanoutBy = iota + 1 // distinct destinations on one port: a horizontal sweep
	FanoutByHost                     // distinct ports on one destination: a vertical scan
)

// FanoutFilter selects what Fanout returns.
type FanoutFilter struct {
	By         FanoutBy
	MinTargets int64 // distinct destinations or ports a group needs
}

// Fanout is how widely one source reached out over one protocol.
type Fanout struct {
	Sensor  string
	Src     netip.Addr
	Proto   string
	Port    uint16     // FanoutByPort: the destination port
	Dst     netip.Addr // FanoutByHost: the destination
	Targets int64      // distinct destinations (FanoutByPort) or ports (FanoutByHost)
	Conns   int64
	// Probes counts connections refused or unanswered with nothing sent
	// back: a conn_state of ProbeStates and no resp_bytes. Connections
	// whose originator sent no packet (orig_pkts 0: Zeek guessed the roles
	// from the ports, as for the SYN-ACKs a reflection attack sends its
	// victim) are not anyone's fan-out and not counted.
	Probes      int64
	First, Last time.Time
}

// ProbeStates are the conn states of a connection attempt that a scan
// leaves: unanswered (S0, SH, SHR, OTH), refused (REJ, RSTOS0, RSTRH) or
// torn down at once (RSTO, RSTR).
func ProbeStates() []string {
	return []string{"S0", "REJ", "RSTO", "RSTOS0", "RSTR", "RSTRH", "SH", "SHR", "OTH"}
}

// Upload is one transfer from its sender.
type Upload struct {
	Sensor   string
	Log      string // "conn", "http" or "files"
	TS       time.Time
	UID      string
	Src, Dst netip.Addr
	DstPort  uint16        // the service port of the connection
	Bytes    int64         // sent: orig_bytes, request_body_len or seen_bytes
	Received int64         // conn: resp_bytes; http: response_body_len; files: 0
	Duration time.Duration // conn
	Method   string        // http
	Host     string        // http
	Agent    string        // http: user agent
	MIME     string        // files: mime_type; http: the first orig_mime_types
	Filename string        // files: filename; http: the first orig_filenames
	URI      string        // http
	// MD5, SHA1 and SHA256 are the file's hashes (files).
	MD5, SHA1, SHA256 string
	// File and Line are the record's provenance: its input file and line.
	File string
	Line int64
}

// PairStat is conn records between two hosts on one service.
type PairStat struct {
	Sensor      string
	Src, Dst    netip.Addr
	DstPort     uint16
	Proto       string
	Conns       int64
	First, Last time.Time
	Duration    time.Duration // sum of durations
	MaxDuration time.Duration
	SrcBytes    int64 // sum of orig_bytes
	DstBytes    int64 // sum of resp_bytes
	Failed      int64 // connections refused or unanswered (REJ, S0, RSTOS0, RSTRH, SH, SHR)
	Days        int64 // distinct UTC days with a connection
	// Silent counts the connections whose originator sent no packet
	// (orig_pkts 0), which Fanout leaves out; Probes those of the others
	// that Fanout counts as probes (ProbeStates, no reply bytes).
	Silent, Probes int64
}

// DailyFlow is one day of conn records from src to dst.
type DailyFlow struct {
	Sensor      string
	Src, Dst    netip.Addr
	Day         time.Time // UTC midnight
	Conns       int64
	SrcBytes    int64 // sum of orig_bytes
	DstBytes    int64 // sum of resp_bytes
	MaxSrcBytes int64 // largest single upload
	First, Last time.Time
}

// SeriesKind selects what Series groups by.
type SeriesKind uint8

// Series kinds.
const (
	SeriesConn     SeriesKind = iota + 1 // (sensor, src IP, dst IP) over conn; sizes are orig_ip_bytes
	SeriesTLSName                        // (sensor, src IP, server_name) over ssl; sizes are 0
	SeriesHTTPHost                       // (sensor, src IP, host) over http; sizes are request_body_len
	// SeriesSessions is (sensor, src IP, dst IP, dst port, proto) over
	// conn; times are starts and sizes durations in microseconds (0 when
	// unknown): the intervals each connection covered.
	SeriesSessions
)

// Series is one key's records in time order. Times are cut to the
// millisecond: finer is noise for check-ins and costs half the transfer.
// Sizes of records in the same millisecond come in ascending order.
type Series struct {
	Sensor string
	Src    netip.Addr
	Dst    netip.Addr // SeriesConn, SeriesSessions
	Port   uint16     // SeriesSessions
	Proto  string     // SeriesSessions
	Name   string     // SeriesTLSName, SeriesHTTPHost
	Times  []int64    // unix microseconds at millisecond precision, ascending
	Sizes  []int64    // one per time
}

// OpenConn is the last report of a connection still open.
type OpenConn struct {
	Sensor   string
	UID      string
	Src, Dst netip.Addr
	DstPort  uint16
	Proto    string
	Service  string
	Start    time.Time // ts: the connection's first packet
	Reported time.Time // when the last report was read (source file order)
	Duration time.Duration
	SrcBytes int64
	DstBytes int64
}

// DNSName is queries for one name by one client.
type DNSName struct {
	Sensor      string
	Src         netip.Addr
	Dst         netip.Addr // the server asked (the resolver, or the name's own server)
	Query       string
	QType       string
	RCode       string
	Count       int64
	First, Last time.Time
}

// TLSSession is TLS handshakes with the same parameters.
type TLSSession struct {
	Sensor           string
	Src, Dst         netip.Addr
	DstPort          uint16
	ServerName       string
	JA3, JA4         string
	ValidationStatus string
	SNIMatchesCert   string // "T", "F" or ""
	CertFingerprint  string // first certificate of the chain
	Subject, Issuer  string // from ssl, else from x509
	NotBefore        time.Time
	NotAfter         time.Time
	CertNames        []string // SAN DNS names from x509
	Established      int64    // handshakes completed
	Count            int64
	First, Last      time.Time
}

// HTTPRequest is HTTP requests with the same parameters.
type HTTPRequest struct {
	Sensor       string
	Src, Dst     netip.Addr
	DstPort      uint16
	Host         string
	Method       string
	Path         string // URI without the query string
	UserAgent    string
	Count        int64
	RequestBytes int64
	// Executables counts the requests whose response carried a program
	// (resp_mime_types holds one of ExecutableMIME).
	Executables int64
	First, Last time.Time
	Statuses    []int64 // distinct status codes, ascending
}

// ExecutableMIME returns the MIME types Zeek and dwell give programs:
// Windows PE, ELF and Mach-O executables and libraries.
func ExecutableMIME() []string {
	return []string{"application/x-dosexec", "application/x-executable", "application/x-sharedlib", "application/x-pie-executable",
		"application/x-elf", "application/x-mach-o-executable", "application/x-msdownload", "application/vnd.microsoft.portable-executable"}
}

// ServerName is the records of one client reaching one name.
type ServerName struct {
	Sensor string
	Src    netip.Addr
	Name   string // server_name (ssl) or host (http), as recorded
	Count  int64
}

// FloodVector is the flow records towards one destination in one minute
// that share a vector (FloodVectorOf).
type FloodVector struct {
	Sensor  string
	Dst     netip.Addr
	Minute  time.Time // UTC, of the flows' start
	Vector  string
	Flows   int64
	Packets int64 // packets × sampling interval
	Bytes   int64 // bytes × sampling interval
	Sources int64 // distinct source addresses
}

// ReflectionPorts are the UDP source ports of services abused for
// reflection and amplification: QOTD, chargen, TFTP, DNS, portmap, NTP,
// NetBIOS, SNMP, CLDAP, ISAKMP and IKE NAT-T, RIPv1, MS-SQL, SSDP, ARMS,
// RDP, WS-Discovery, mDNS, CoAP, Ubiquiti discovery, memcached, DVR
// discovery and BACnet (US-CERT TA14-017A and later).
func ReflectionPorts() []uint16 {
	return []uint16{17, 19, 53, 69, 111, 123, 137, 161, 389, 500, 520, 1434, 1900, 3283, 3389, 3702, 4500, 5353, 5683, 10001, 11211,
		37810, 47808}
}

// FloodVectorOf names the vector of a flow: "tcp-syn" for TCP flows with
// SYN and no ACK, "tcp-synack" for TCP flows of SYN-ACKs alone (no FIN,
// RST or PSH: what a SYN-ACK reflection sends), "udp/PORT" for UDP from
// a reflection port, "udp-fragment" for UDP without ports (the IP
// fragments after a datagram's first, as routers export them), else the
// protocol ("tcp", "udp", "icmp", or its number).
func FloodVectorOf(proto string, flags uint8, srcPort, dstPort uint16) string {
	switch {
	case proto == "tcp" && flags&0x12 == 0x02:
		return "tcp-syn"
	case proto == "tcp" && flags&0x1f == 0x12:
		return "tcp-synack"
	case proto == "udp" && srcPort == 0 && dstPort == 0:
		return "udp-fragment"
	case proto == "udp" && slices.Contains(ReflectionPorts(), srcPort):
		return "udp/" + strconv.Itoa(int(srcPort))
	}
	return proto
}
