package zeek

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// ftype is the type dwell expects a Zeek field to have. Values are parsed by
// the expected type whatever the #types line says; a value that does not
// parse makes its line malformed.
type ftype uint8

const (
	fTime ftype = iota + 1
	fString
	fAddr
	fPort
	fCount
	fInterval
	fBool
	fStrings
	fAddrs
	fIntervals
)

// value is one decoded field, filled according to its ftype. Only set values
// reach a setter; an unset field leaves the record's zero value.
type value struct {
	s  string
	u  uint64
	d  time.Duration
	t  time.Time
	a  netip.Addr
	b  bool
	ss []string
	as []netip.Addr
	ds []time.Duration
}

// field is how one Zeek field is decoded into a record of type R.
type field[R any] struct {
	typ ftype
	set func(*R, *value)
	// idx numbers the field within its spec; a field's two spellings
	// ("id.orig_h", "id_orig_h") share it, so a record that names one
	// field twice is found out.
	idx int
}

// spec describes one record kind: the fields dwell reads and how to add a
// record to a batch.
type spec[R any] struct {
	kind     event.Kind
	fields   map[string]field[R]
	add      func(*event.Batch) *R
	drop     func(*event.Batch)
	src      func(*R) *event.Source
	hasTS    func(*R) bool
	defaults string // Zeek's default #fields for this log, for header-less files
}

func tm[R any](p func(*R) *time.Time) field[R] {
	return field[R]{typ: fTime, set: func(r *R, v *value) { *p(r) = v.t }}
}

func optTm[R any](p func(*R) *event.Opt[time.Time]) field[R] {
	return field[R]{typ: fTime, set: func(r *R, v *value) { *p(r) = event.Some(v.t) }}
}

func str[R any](p func(*R) *string) field[R] {
	return field[R]{typ: fString, set: func(r *R, v *value) { *p(r) = v.s }}
}

func addr[R any](p func(*R) *netip.Addr) field[R] {
	return field[R]{typ: fAddr, set: func(r *R, v *value) { *p(r) = v.a }}
}

func port[R any](p func(*R) *uint16) field[R] {
	return field[R]{typ: fPort, set: func(r *R, v *value) { *p(r) = uint16(v.u) }} //nolint:gosec // G115: parsePort bounds v.u to 65535
}

func cnt[R any](p func(*R) *event.Opt[uint64]) field[R] {
	return field[R]{typ: fCount, set: func(r *R, v *value) { *p(r) = event.Some(v.u) }}
}

func ival[R any](p func(*R) *event.Opt[time.Duration]) field[R] {
	return field[R]{typ: fInterval, set: func(r *R, v *value) { *p(r) = event.Some(v.d) }}
}

func boolean[R any](p func(*R) *event.Opt[bool]) field[R] {
	return field[R]{typ: fBool, set: func(r *R, v *value) { *p(r) = event.Some(v.b) }}
}

func strs[R any](p func(*R) *[]string) field[R] {
	return field[R]{typ: fStrings, set: func(r *R, v *value) { *p(r) = v.ss }}
}

func addrs[R any](p func(*R) *[]netip.Addr) field[R] {
	return field[R]{typ: fAddrs, set: func(r *R, v *value) { *p(r) = v.as }}
}

func ivals[R any](p func(*R) *[]time.Duration) field[R] {
	return field[R]{typ: fIntervals, set: func(r *R, v *value) { *p(r) = v.ds }}
}

// specs holds the record kinds dwell reads from Zeek logs. Build it once
// with newSpecs; it is never modified afterwards.
type specs struct {
	conn     *spec[event.Conn]
	openConn *spec[event.Conn]
	dns      *spec[event.DNS]
	http     *spec[event.HTTP]
	tls      *spec[event.TLS]
	x509     *spec[event.X509]
	files    *spec[event.File]
}

func newSpecs() *specs {
	sp := &specs{
		conn: connSpec(event.KindConn,
			func(b *event.Batch) *event.Conn {
				b.Conns = append(b.Conns, event.Conn{})
				return &b.Conns[len(b.Conns)-1]
			},
			func(b *event.Batch) { b.Conns = b.Conns[:len(b.Conns)-1] }),
		openConn: connSpec(event.KindOpenConn,
			func(b *event.Batch) *event.Conn {
				b.OpenConns = append(b.OpenConns, event.Conn{})
				return &b.OpenConns[len(b.OpenConns)-1]
			},
			func(b *event.Batch) { b.OpenConns = b.OpenConns[:len(b.OpenConns)-1] }),
		dns:   dnsSpec(),
		http:  httpSpec(),
		tls:   tlsSpec(),
		x509:  x509Spec(),
		files: filesSpec(),
	}
	underscored(sp.conn.fields)
	underscored(sp.openConn.fields)
	underscored(sp.dns.fields)
	underscored(sp.http.fields)
	underscored(sp.tls.fields)
	underscored(sp.x509.fields)
	underscored(sp.files.fields)
	return sp
}

// underscored adds each dotted field's name with underscores for dots
// ("id.orig_h" as "id_orig_h", "certificate.subject" as
// "certificate_subject"): the names Zeek writes under
// Log::default_field_name_map, as Security Onion and Corelight sensors
// deploy it.
func underscored[R any](fields map[string]field[R]) {
	names := slices.Sorted(maps.Keys(fields))
	for i, name := range names {
		f := fields[name]
		f.idx = i
		fields[name] = f
		if strings.Contains(name, ".") {
			fields[strings.ReplaceAll(name, ".", "_")] = f
		}
	}
}

func connSpec(k event.Kind, add func(*event.Batch) *event.Conn, drop func(*event.Batch)) *spec[event.Conn] {
	type R = event.Conn
	return &spec[R]{
		kind: k, add: add, drop: drop,
		src:   func(r *R) *event.Source { return &r.Src },
		hasTS: func(r *R) bool { return !r.TS.IsZero() },
		fields: map[string]field[R]{
			"ts":             tm(func(r *R) *time.Time { return &r.TS }),
			"uid":            str(func(r *R) *string { return &r.UID }),
			"id.orig_h":      addr(func(r *R) *netip.Addr { return &r.SrcIP }),
			"id.orig_p":      port(func(r *R) *uint16 { return &r.SrcPort }),
			"id.resp_h":      addr(func(r *R) *netip.Addr { return &r.DstIP }),
			"id.resp_p":      port(func(r *R) *uint16 { return &r.DstPort }),
			"proto":          str(func(r *R) *string { return &r.Proto }),
			"service":        str(func(r *R) *string { return &r.Service }),
			"duration":       ival(func(r *R) *event.Opt[time.Duration] { return &r.Duration }),
			"orig_bytes":     cnt(func(r *R) *event.Opt[uint64] { return &r.SrcBytes }),
			"resp_bytes":     cnt(func(r *R) *event.Opt[uint64] { return &r.DstBytes }),
			"conn_state":     str(func(r *R) *string { return &r.ConnState }),
			"local_orig":     boolean(func(r *R) *event.Opt[bool] { return &r.LocalSrc }),
			"local_resp":     boolean(func(r *R) *event.Opt[bool] { return &r.LocalDst }),
			"missed_bytes":   cnt(func(r *R) *event.Opt[uint64] { return &r.MissedBytes }),
			"history":        str(func(r *R) *string { return &r.History }),
			"orig_pkts":      cnt(func(r *R) *event.Opt[uint64] { return &r.SrcPkts }),
			"orig_ip_bytes":  cnt(func(r *R) *event.Opt[uint64] { return &r.SrcIPBytes }),
			"resp_pkts":      cnt(func(r *R) *event.Opt[uint64] { return &r.DstPkts }),
			"resp_ip_bytes":  cnt(func(r *R) *event.Opt[uint64] { return &r.DstIPBytes }),
			"tunnel_parents": strs(func(r *R) *[]string { return &r.TunnelParents }),
			"community_id":   str(func(r *R) *string { return &r.CommunityID }),
		},
		defaults: "ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto service duration orig_bytes resp_bytes conn_state local_orig local_resp missed_bytes history orig_pkts orig_ip_bytes resp_pkts resp_ip_bytes tunnel_parents",
	}
}

func dnsSpec() *spec[event.DNS] {
	type R = event.DNS
	return &spec[R]{
		kind:  event.KindDNS,
		add:   func(b *event.Batch) *R { b.DNS = append(b.DNS, R{}); return &b.DNS[len(b.DNS)-1] },
		drop:  func(b *event.Batch) { b.DNS = b.DNS[:len(b.DNS)-1] },
		src:   func(r *R) *event.Source { return &r.Src },
		hasTS: func(r *R) bool { return !r.TS.IsZero() },
		fields: map[string]field[R]{
			"ts":          tm(func(r *R) *time.Time { return &r.TS }),
			"uid":         str(func(r *R) *string { return &r.UID }),
			"id.orig_h":   addr(func(r *R) *netip.Addr { return &r.SrcIP }),
			"id.orig_p":   port(func(r *R) *uint16 { return &r.SrcPort }),
			"id.resp_h":   addr(func(r *R) *netip.Addr { return &r.DstIP }),
			"id.resp_p":   port(func(r *R) *uint16 { return &r.DstPort }),
			"proto":       str(func(r *R) *string { return &r.Proto }),
			"trans_id":    cnt(func(r *R) *event.Opt[uint64] { return &r.TransID }),
			"rtt":         ival(func(r *R) *event.Opt[time.Duration] { return &r.RTT }),
			"query":       str(func(r *R) *string { return &r.Query }),
			"qclass":      cnt(func(r *R) *event.Opt[uint64] { return &r.QClass }),
			"qclass_name": str(func(r *R) *string { return &r.QClassNm }),
			"qtype":       cnt(func(r *R) *event.Opt[uint64] { return &r.QType }),
			"qtype_name":  str(func(r *R) *string { return &r.QTypeName }),
			"rcode":       cnt(func(r *R) *event.Opt[uint64] { return &r.RCode }),
			"rcode_name":  str(func(r *R) *string { return &r.RCodeName }),
			"AA":          boolean(func(r *R) *event.Opt[bool] { return &r.AA }),
			"TC":          boolean(func(r *R) *event.Opt[bool] { return &r.TC }),
			"RD":          boolean(func(r *R) *event.Opt[bool] { return &r.RD }),
			"RA":          boolean(func(r *R) *event.Opt[bool] { return &r.RA }),
			"Z":           cnt(func(r *R) *event.Opt[uint64] { return &r.Z }),
			"answers":     strs(func(r *R) *[]string { return &r.Answers }),
			"TTLs":        ivals(func(r *R) *[]time.Duration { return &r.TTLs }),
			"rejected":    boolean(func(r *R) *event.Opt[bool] { return &r.Rejected }),
		},
		defaults: "ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto trans_id rtt query qclass qclass_name qtype qtype_name rcode rcode_name AA TC RD RA Z answers TTLs rejected",
	}
}

func httpSpec() *spec[event.HTTP] {
	type R = event.HTTP
	return &spec[R]{
		kind:  event.KindHTTP,
		add:   func(b *event.Batch) *R { b.HTTP = append(b.HTTP, R{}); return &b.HTTP[len(b.HTTP)-1] },
		drop:  func(b *event.Batch) { b.HTTP = b.HTTP[:len(b.HTTP)-1] },
		src:   func(r *R) *event.Source { return &r.Src },
		hasTS: func(r *R) bool { return !r.TS.IsZero() },
		fields: map[string]field[R]{
			"ts":                tm(func(r *R) *time.Time { return &r.TS }),
			"uid":               str(func(r *R) *string { return &r.UID }),
			"id.orig_h":         addr(func(r *R) *netip.Addr { return &r.SrcIP }),
			"id.orig_p":         port(func(r *R) *uint16 { return &r.SrcPort }),
			"id.resp_h":         addr(func(r *R) *netip.Addr { return &r.DstIP }),
			"id.resp_p":         port(func(r *R) *uint16 { return &r.DstPort }),
			"trans_depth":       cnt(func(r *R) *event.Opt[uint64] { return &r.TransDepth }),
			"method":            str(func(r *R) *string { return &r.Method }),
			"host":              str(func(r *R) *string { return &r.Host }),
			"uri":               str(func(r *R) *string { return &r.URI }),
			"referrer":          str(func(r *R) *string { return &r.Referrer }),
			"version":           str(func(r *R) *string { return &r.Version }),
			"user_agent":        str(func(r *R) *string { return &r.UserAgent }),
			"origin":            str(func(r *R) *string { return &r.Origin }),
			"request_body_len":  cnt(func(r *R) *event.Opt[uint64] { return &r.RequestBodyLen }),
			"response_body_len": cnt(func(r *R) *event.Opt[uint64] { return &r.ResponseBodyLen }),
			"status_code":       cnt(func(r *R) *event.Opt[uint64] { return &r.StatusCode }),
			"status_msg":        str(func(r *R) *string { return &r.StatusMsg }),
			"info_code":         cnt(func(r *R) *event.Opt[uint64] { return &r.InfoCode }),
			"info_msg":          str(func(r *R) *string { return &r.InfoMsg }),
			"tags":              strs(func(r *R) *[]string { return &r.Tags }),
			"username":          str(func(r *R) *string { return &r.Username }),
			"password":          str(func(r *R) *string { return &r.Password }),
			"proxied":           strs(func(r *R) *[]string { return &r.Proxied }),
			"orig_fuids":        strs(func(r *R) *[]string { return &r.OrigFUIDs }),
			"orig_filenames":    strs(func(r *R) *[]string { return &r.OrigFilenames }),
			"orig_mime_types":   strs(func(r *R) *[]string { return &r.OrigMIMETypes }),
			"resp_fuids":        strs(func(r *R) *[]string { return &r.RespFUIDs }),
			"resp_filenames":    strs(func(r *R) *[]string { return &r.RespFilenames }),
			"resp_mime_types":   strs(func(r *R) *[]string { return &r.RespMIMETypes }),
			"server":            str(func(r *R) *string { return &r.Server }),
		},
		defaults: "ts uid id.orig_h id.orig_p id.resp_h id.resp_p trans_depth method host uri referrer version user_agent origin request_body_len response_body_len status_code status_msg info_code info_msg tags username password proxied orig_fuids orig_filenames orig_mime_types resp_fuids resp_filenames resp_mime_types",
	}
}

func tlsSpec() *spec[event.TLS] {
	type R = event.TLS
	return &spec[R]{
		kind:  event.KindTLS,
		add:   func(b *event.Batch) *R { b.TLS = append(b.TLS, R{}); return &b.TLS[len(b.TLS)-1] },
		drop:  func(b *event.Batch) { b.TLS = b.TLS[:len(b.TLS)-1] },
		src:   func(r *R) *event.Source { return &r.Src },
		hasTS: func(r *R) bool { return !r.TS.IsZero() },
		fields: map[string]field[R]{
			"ts":                      tm(func(r *R) *time.Time { return &r.TS }),
			"uid":                     str(func(r *R) *string { return &r.UID }),
			"id.orig_h":               addr(func(r *R) *netip.Addr { return &r.SrcIP }),
			"id.orig_p":               port(func(r *R) *uint16 { return &r.SrcPort }),
			"id.resp_h":               addr(func(r *R) *netip.Addr { return &r.DstIP }),
			"id.resp_p":               port(func(r *R) *uint16 { return &r.DstPort }),
			"version":                 str(func(r *R) *string { return &r.Version }),
			"cipher":                  str(func(r *R) *string { return &r.Cipher }),
			"curve":                   str(func(r *R) *string { return &r.Curve }),
			"server_name":             str(func(r *R) *string { return &r.ServerName }),
			"resumed":                 boolean(func(r *R) *event.Opt[bool] { return &r.Resumed }),
			"last_alert":              str(func(r *R) *string { return &r.LastAlert }),
			"next_protocol":           str(func(r *R) *string { return &r.NextProtocol }),
			"established":             boolean(func(r *R) *event.Opt[bool] { return &r.Established }),
			"ssl_history":             str(func(r *R) *string { return &r.SSLHistory }),
			"cert_chain_fps":          strs(func(r *R) *[]string { return &r.CertChainFPs }),
			"client_cert_chain_fps":   strs(func(r *R) *[]string { return &r.ClientCertChainFPs }),
			"cert_chain_fuids":        strs(func(r *R) *[]string { return &r.CertChainFUIDs }),
			"client_cert_chain_fuids": strs(func(r *R) *[]string { return &r.ClientCertChainFUIDs }),
			"subject":                 str(func(r *R) *string { return &r.Subject }),
			"issuer":                  str(func(r *R) *string { return &r.Issuer }),
			"client_subject":          str(func(r *R) *string { return &r.ClientSubject }),
			"client_issuer":           str(func(r *R) *string { return &r.ClientIssuer }),
			"sni_matches_cert":        boolean(func(r *R) *event.Opt[bool] { return &r.SNIMatchesCert }),
			"validation_status":       str(func(r *R) *string { return &r.ValidationStatus }),
			"ja3":                     str(func(r *R) *string { return &r.JA3 }),
			"ja3s":                    str(func(r *R) *string { return &r.JA3S }),
			"ja4":                     str(func(r *R) *string { return &r.JA4 }),
			"ja4s":                    str(func(r *R) *string { return &r.JA4S }),
		},
		defaults: "ts uid id.orig_h id.orig_p id.resp_h id.resp_p version cipher curve server_name resumed last_alert next_protocol established ssl_history cert_chain_fps client_cert_chain_fps sni_matches_cert",
	}
}

func x509Spec() *spec[event.X509] {
	type R = event.X509
	return &spec[R]{
		kind:  event.KindX509,
		add:   func(b *event.Batch) *R { b.X509 = append(b.X509, R{}); return &b.X509[len(b.X509)-1] },
		drop:  func(b *event.Batch) { b.X509 = b.X509[:len(b.X509)-1] },
		src:   func(r *R) *event.Source { return &r.Src },
		hasTS: func(r *R) bool { return !r.TS.IsZero() },
		fields: map[string]field[R]{
			"ts":                           tm(func(r *R) *time.Time { return &r.TS }),
			"id":                           str(func(r *R) *string { return &r.ID }),
			"fingerprint":                  str(func(r *R) *string { return &r.Fingerprint }),
			"certificate.version":          cnt(func(r *R) *event.Opt[uint64] { return &r.Version }),
			"certificate.serial":           str(func(r *R) *string { return &r.Serial }),
			"certificate.subject":          str(func(r *R) *string { return &r.Subject }),
			"certificate.issuer":           str(func(r *R) *string { return &r.Issuer }),
			"certificate.not_valid_before": optTm(func(r *R) *event.Opt[time.Time] { return &r.NotValidBefore }),
			"certificate.not_valid_after":  optTm(func(r *R) *event.Opt[time.Time] { return &r.NotValidAfter }),
			"certificate.key_alg":          str(func(r *R) *string { return &r.KeyAlg }),
			"certificate.sig_alg":          str(func(r *R) *string { return &r.SigAlg }),
			"certificate.key_type":         str(func(r *R) *string { return &r.KeyType }),
			"certificate.key_length":       cnt(func(r *R) *event.Opt[uint64] { return &r.KeyLength }),
			"certificate.exponent":         str(func(r *R) *string { return &r.Exponent }),
			"certificate.curve":            str(func(r *R) *string { return &r.Curve }),
			"san.dns":                      strs(func(r *R) *[]string { return &r.SANDNS }),
			"san.uri":                      strs(func(r *R) *[]string { return &r.SANURI }),
			"san.email":                    strs(func(r *R) *[]string { return &r.SANEmail }),
			"san.ip":                       addrs(func(r *R) *[]netip.Addr { return &r.SANIP }),
			"basic_constraints.ca":         boolean(func(r *R) *event.Opt[bool] { return &r.BasicConstraintCA }),
			"basic_constraints.path_len":   cnt(func(r *R) *event.Opt[uint64] { return &r.BasicConstraintPL }),
			"host_cert":                    boolean(func(r *R) *event.Opt[bool] { return &r.HostCert }),
			"client_cert":                  boolean(func(r *R) *event.Opt[bool] { return &r.ClientCert }),
		},
		defaults: "ts fingerprint certificate.version certificate.serial certificate.subject certificate.issuer certificate.not_valid_before certificate.not_valid_after certificate.key_alg certificate.sig_alg certificate.key_type certificate.key_length certificate.exponent certificate.curve san.dns san.uri san.email san.ip basic_constraints.ca basic_constraints.path_len host_cert client_cert",
	}
}

func filesSpec() *spec[event.File] {
	type R = event.File
	return &spec[R]{
		kind:  event.KindFile,
		add:   func(b *event.Batch) *R { b.Files = append(b.Files, R{}); return &b.Files[len(b.Files)-1] },
		drop:  func(b *event.Batch) { b.Files = b.Files[:len(b.Files)-1] },
		src:   func(r *R) *event.Source { return &r.Src },
		hasTS: func(r *R) bool { return !r.TS.IsZero() },
		fields: map[string]field[R]{
			"ts":               tm(func(r *R) *time.Time { return &r.TS }),
			"fuid":             str(func(r *R) *string { return &r.FUID }),
			"uid":              str(func(r *R) *string { return &r.UID }),
			"id.orig_h":        addr(func(r *R) *netip.Addr { return &r.SrcIP }),
			"id.orig_p":        port(func(r *R) *uint16 { return &r.SrcPort }),
			"id.resp_h":        addr(func(r *R) *netip.Addr { return &r.DstIP }),
			"id.resp_p":        port(func(r *R) *uint16 { return &r.DstPort }),
			"tx_hosts":         addrs(func(r *R) *[]netip.Addr { return &r.TxHosts }),
			"rx_hosts":         addrs(func(r *R) *[]netip.Addr { return &r.RxHosts }),
			"conn_uids":        strs(func(r *R) *[]string { return &r.ConnUIDs }),
			"source":           str(func(r *R) *string { return &r.Source }),
			"depth":            cnt(func(r *R) *event.Opt[uint64] { return &r.Depth }),
			"analyzers":        strs(func(r *R) *[]string { return &r.Analyzers }),
			"mime_type":        str(func(r *R) *string { return &r.MIMEType }),
			"filename":         str(func(r *R) *string { return &r.Filename }),
			"duration":         ival(func(r *R) *event.Opt[time.Duration] { return &r.Duration }),
			"local_orig":       boolean(func(r *R) *event.Opt[bool] { return &r.LocalOrig }),
			"is_orig":          boolean(func(r *R) *event.Opt[bool] { return &r.IsOrig }),
			"seen_bytes":       cnt(func(r *R) *event.Opt[uint64] { return &r.SeenBytes }),
			"total_bytes":      cnt(func(r *R) *event.Opt[uint64] { return &r.TotalBytes }),
			"missing_bytes":    cnt(func(r *R) *event.Opt[uint64] { return &r.MissingBytes }),
			"overflow_bytes":   cnt(func(r *R) *event.Opt[uint64] { return &r.OverflowBytes }),
			"timedout":         boolean(func(r *R) *event.Opt[bool] { return &r.TimedOut }),
			"parent_fuid":      str(func(r *R) *string { return &r.ParentFUID }),
			"md5":              str(func(r *R) *string { return &r.MD5 }),
			"sha1":             str(func(r *R) *string { return &r.SHA1 }),
			"sha256":           str(func(r *R) *string { return &r.SHA256 }),
			"extracted":        str(func(r *R) *string { return &r.Extracted }),
			"extracted_cutoff": boolean(func(r *R) *event.Opt[bool] { return &r.ExtractedCutoff }),
			"extracted_size":   cnt(func(r *R) *event.Opt[uint64] { return &r.ExtractedSize }),
		},
		defaults: "ts fuid uid id.orig_h id.orig_p id.resp_h id.resp_p source depth analyzers mime_type filename duration local_orig is_orig seen_bytes total_bytes missing_bytes overflow_bytes timedout parent_fuid md5 sha1 sha256 extracted extracted_cutoff extracted_size",
	}
}

// defaultFields returns Zeek's default field names for a log kind.
func (s *spec[R]) defaultFields() []string { return strings.Fields(s.defaults) }
