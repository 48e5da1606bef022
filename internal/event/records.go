package event

import (
	"net/netip"
	"time"
)

// Conn is one connection as Zeek's conn.log records it (and open_conn.log
// while it is still open). Counts refer to the originator (Src) and the
// responder (Dst) as Zeek defines them, not to client and server roles.
type Conn struct {
	TS       time.Time          // ts: first packet
	UID      string             // uid: Zeek's connection identifier
	SrcIP    netip.Addr         // id.orig_h
	SrcPort  uint16             // id.orig_p
	DstIP    netip.Addr         // id.resp_h
	DstPort  uint16             // id.resp_p
	Proto    string             // proto: tcp, udp, icmp, unknown_transport
	Service  string             // service: protocols Zeek identified, comma-separated ("" when none)
	Duration Opt[time.Duration] // duration
	SrcBytes Opt[uint64]        // orig_bytes: payload bytes sent by the originator
	DstBytes Opt[uint64]        // resp_bytes: payload bytes sent by the responder
	// ConnState is Zeek's conn_state (S0, S1, SF, REJ, S2, S3, RSTO, RSTR,
	// RSTOS0, RSTRH, SH, SHR, OTH).
	ConnState   string
	LocalSrc    Opt[bool]   // local_orig
	LocalDst    Opt[bool]   // local_resp
	MissedBytes Opt[uint64] // missed_bytes: bytes lost to capture gaps
	History     string      // history: Zeek's state history letters
	SrcPkts     Opt[uint64] // orig_pkts
	SrcIPBytes  Opt[uint64] // orig_ip_bytes: IP-level bytes from the originator
	DstPkts     Opt[uint64] // resp_pkts
	DstIPBytes  Opt[uint64] // resp_ip_bytes
	// TunnelParents holds the uids of encapsulating connections.
	TunnelParents []string
	CommunityID   string // community_id, when Zeek's community-id package wrote it
	Src           Source
}

// DNS is one DNS query and its response, as in Zeek's dns.log.
type DNS struct {
	TS        time.Time
	UID       string
	SrcIP     netip.Addr
	SrcPort   uint16
	DstIP     netip.Addr
	DstPort   uint16
	Proto     string
	TransID   Opt[uint64]        // trans_id
	RTT       Opt[time.Duration] // rtt
	Query     string             // query: the name asked for
	QClass    Opt[uint64]        // qclass
	QClassNm  string             // qclass_name
	QType     Opt[uint64]        // qtype
	QTypeName string             // qtype_name: A, AAAA, TXT, NULL, CNAME, ...
	RCode     Opt[uint64]        // rcode
	RCodeName string             // rcode_name: NOERROR, NXDOMAIN, ...
	AA        Opt[bool]
	TC        Opt[bool]
	RD        Opt[bool]
	RA        Opt[bool]
	Z         Opt[uint64]
	Answers   []string        // answers: resource record data, in order
	TTLs      []time.Duration // TTLs, one per answer
	Rejected  Opt[bool]
	Src       Source
}

// HTTP is one HTTP request and its response, as in Zeek's http.log.
type HTTP struct {
	TS              time.Time
	UID             string
	SrcIP           netip.Addr
	SrcPort         uint16
	DstIP           netip.Addr
	DstPort         uint16
	TransDepth      Opt[uint64] // trans_depth: position in a pipelined connection
	Method          string
	Host            string // host: the Host header ("" when absent)
	URI             string
	Referrer        string
	Version         string
	UserAgent       string
	Origin          string
	RequestBodyLen  Opt[uint64]
	ResponseBodyLen Opt[uint64]
	StatusCode      Opt[uint64]
	StatusMsg       string
	InfoCode        Opt[uint64]
	InfoMsg         string
	Tags            []string
	Username        string
	Password        string
	Proxied         []string
	OrigFUIDs       []string
	OrigFilenames   []string
	OrigMIMETypes   []string
	RespFUIDs       []string
	RespFilenames   []string
	RespMIMETypes   []string
	// Server is the reply's Server header: not in Zeek's default http.log
	// (packet captures, Suricata's EVE and Zeek logs that add the field).
	Server string
	Src    Source
}

// TLS is one TLS or SSL handshake, as in Zeek's ssl.log.
type TLS struct {
	TS           time.Time
	UID          string
	SrcIP        netip.Addr
	SrcPort      uint16
	DstIP        netip.Addr
	DstPort      uint16
	Version      string
	Cipher       string
	Curve        string
	ServerName   string // server_name: the SNI the client sent
	Resumed      Opt[bool]
	LastAlert    string
	NextProtocol string
	Established  Opt[bool]
	SSLHistory   string
	// CertChainFPs holds the SHA-256 fingerprints of the server's chain
	// (Zeek 4.2 and later); older Zeek writes file ids in CertChainFUIDs.
	CertChainFPs         []string
	ClientCertChainFPs   []string
	CertChainFUIDs       []string
	ClientCertChainFUIDs []string
	Subject              string
	Issuer               string
	ClientSubject        string
	ClientIssuer         string
	SNIMatchesCert       Opt[bool]
	ValidationStatus     string
	JA3                  string // from the ja3 package, when present
	JA3S                 string
	JA4                  string // from the ja4 package, when present
	JA4S                 string
	Src                  Source
}

// X509 is one certificate, as in Zeek's x509.log.
type X509 struct {
	TS                time.Time
	ID                string // id: file id (Zeek before 4.2)
	Fingerprint       string // fingerprint: SHA-256 of the certificate (Zeek 4.2 and later)
	Version           Opt[uint64]
	Serial            string
	Subject           string
	Issuer            string
	NotValidBefore    Opt[time.Time]
	NotValidAfter     Opt[time.Time]
	KeyAlg            string
	SigAlg            string
	KeyType           string
	KeyLength         Opt[uint64]
	Exponent          string
	Curve             string
	SANDNS            []string
	SANURI            []string
	SANEmail          []string
	SANIP             []netip.Addr
	BasicConstraintCA Opt[bool]
	BasicConstraintPL Opt[uint64] // basic_constraints.path_len
	HostCert          Opt[bool]
	ClientCert        Opt[bool]
	Src               Source
}

// File is one file transfer, as in Zeek's files.log. Zeek 5 and later name
// the connection (UID and the 4-tuple); older Zeek lists hosts and uids.
type File struct {
	TS              time.Time
	FUID            string
	UID             string
	SrcIP           netip.Addr
	SrcPort         uint16
	DstIP           netip.Addr
	DstPort         uint16
	TxHosts         []netip.Addr
	RxHosts         []netip.Addr
	ConnUIDs        []string
	Source          string // source: protocol that carried the file (HTTP, SMB, ...)
	Depth           Opt[uint64]
	Analyzers       []string
	MIMEType        string
	Filename        string
	Duration        Opt[time.Duration]
	LocalOrig       Opt[bool]
	IsOrig          Opt[bool]
	SeenBytes       Opt[uint64]
	TotalBytes      Opt[uint64]
	MissingBytes    Opt[uint64]
	OverflowBytes   Opt[uint64]
	TimedOut        Opt[bool]
	ParentFUID      string
	MD5             string
	SHA1            string
	SHA256          string
	Extracted       string
	ExtractedCutoff Opt[bool]
	ExtractedSize   Opt[uint64]
	Src             Source
}

// Flow is one flow record exported by a router or a probe (NetFlow v5, v9,
// IPFIX): the packets and bytes of one direction of a connection, as the
// exporter counted them between First and Last. A flow may cover part of a
// connection (exporters cut long flows at an active timeout).
type Flow struct {
	TS       time.Time // first packet (flowStart...)
	End      time.Time // last packet (flowEnd...); TS when the exporter gives none
	SrcIP    netip.Addr
	SrcPort  uint16
	DstIP    netip.Addr
	DstPort  uint16
	Proto    string // tcp, udp, icmp, or the IP protocol number
	TCPFlags uint8  // OR of the TCP flags seen (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20)
	Packets  uint64 // as exported; multiply by Sampling for an estimate of the traffic
	Bytes    uint64 // IP bytes, as exported
	// Sampling is the exporter's packet sampling interval (1 in N), 0 or 1
	// when unsampled or unknown.
	Sampling uint32
	Exporter netip.Addr // the device that exported the record
	Export   string     // the export protocol: ExportNetFlow5, ExportNetFlow9, ExportIPFIX, ExportSFlow5
	Src      Source     // Line is the record's packet number in the capture
}

// Flow export protocols (Flow.Export).
const (
	ExportNetFlow5 = "netflow-v5"
	ExportNetFlow9 = "netflow-v9"
	ExportIPFIX    = "ipfix"
	ExportSFlow5   = "sflow-v5" // a sampled packet: Packets is 1, Bytes its frame length
	// ExportPcap marks flows dwell made itself from a packet capture,
	// beside the capture's connections: they feed the analyses of flows
	// (floods) but are not stitched into sessions, which would count the
	// capture's connections twice.
	ExportPcap = "pcap"
)

// Alert is one alert of a network IDS (Suricata's EVE "alert" event): a
// signature that matched the traffic of a flow.
type Alert struct {
	TS          time.Time
	FlowID      string // the IDS's flow id, shared by the flow's other events
	SrcIP       netip.Addr
	SrcPort     uint16
	DstIP       netip.Addr
	DstPort     uint16
	Proto       string // tcp, udp, icmp, ...
	AppProto    string // the application protocol the IDS saw (http, tls, dns, ...)
	Action      string // allowed or blocked
	SignatureID Opt[uint64]
	Rev         Opt[uint64]
	Signature   string
	Category    string
	Severity    Opt[uint64] // 1 (highest) to 4
	// Attack holds the ATT&CK technique ids the rule's metadata names
	// (mitre_technique_id), when it does.
	Attack      []string
	CommunityID string
	Src         Source
}
