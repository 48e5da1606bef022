package store

import (
	"net/netip"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// The column order of each table is Zeek's field order, then dwell's
// provenance. Changing it changes the on-disk format: TestSchemaFrozen
// guards it, and docs/schema.md is generated from these definitions.

func connTable(k event.Kind, doc string, rows func(*event.Batch) []event.Conn) *Table[event.Conn] {
	type R = event.Conn
	cols := []Column[R]{
		tsCol(func(r *R) time.Time { return r.TS }),
		strCol("uid", "uid", "Zeek's connection id", func(r *R) string { return r.UID }),
		addrCol("id_orig_h", "id.orig_h", "originator address", func(r *R) netip.Addr { return r.SrcIP }),
		portCol("id_orig_p", "id.orig_p", "originator port", func(r *R) (uint16, bool) { return some(r.SrcPort) }),
		addrCol("id_resp_h", "id.resp_h", "responder address", func(r *R) netip.Addr { return r.DstIP }),
		portCol("id_resp_p", "id.resp_p", "responder port", func(r *R) (uint16, bool) { return some(r.DstPort) }),
		codeCol("proto", "proto", "transport protocol", transportProtos(), func(r *R) string { return r.Proto }),
		strCol("service", "service", "application protocols identified", func(r *R) string { return r.Service }),
		intervalCol("duration", "duration", "seconds from first to last packet", func(r *R) event.Opt[time.Duration] { return r.Duration }),
		countCol("orig_bytes", "orig_bytes", "payload bytes sent by the originator", func(r *R) event.Opt[uint64] { return r.SrcBytes }),
		countCol("resp_bytes", "resp_bytes", "payload bytes sent by the responder", func(r *R) event.Opt[uint64] { return r.DstBytes }),
		codeCol("conn_state", "conn_state", "Zeek's connection state", connStates(), func(r *R) string { return r.ConnState }),
		boolCol("local_orig", "local_orig", "originator is in Site::local_nets", func(r *R) event.Opt[bool] { return r.LocalSrc }),
		boolCol("local_resp", "local_resp", "responder is in Site::local_nets", func(r *R) event.Opt[bool] { return r.LocalDst }),
		countCol("missed_bytes", "missed_bytes", "bytes lost to capture gaps", func(r *R) event.Opt[uint64] { return r.MissedBytes }),
		strCol("history", "history", "state history letters", func(r *R) string { return r.History }),
		countCol("orig_pkts", "orig_pkts", "packets from the originator", func(r *R) event.Opt[uint64] { return r.SrcPkts }),
		countCol("orig_ip_bytes", "orig_ip_bytes", "IP-level bytes from the originator", func(r *R) event.Opt[uint64] { return r.SrcIPBytes }),
		countCol("resp_pkts", "resp_pkts", "packets from the responder", func(r *R) event.Opt[uint64] { return r.DstPkts }),
		countCol("resp_ip_bytes", "resp_ip_bytes", "IP-level bytes from the responder", func(r *R) event.Opt[uint64] { return r.DstIPBytes }),
		strsCol("tunnel_parents", "tunnel_parents", "uids of encapsulating connections", func(r *R) []string { return r.TunnelParents }),
		strCol("community_id", "community_id", "Community ID flow hash, when logged", func(r *R) string { return r.CommunityID }),
	}
	src := func(r *R) *event.Source { return &r.Src }
	return &Table[R]{Kind: k, Doc: doc, Columns: append(cols, provenance(src)...), Rows: rows, Source: src,
		Time: func(r *R) time.Time { return r.TS }}
}

func dnsTable() *Table[event.DNS] {
	type R = event.DNS
	cols := []Column[R]{
		tsCol(func(r *R) time.Time { return r.TS }),
		strCol("uid", "uid", "Zeek's connection id", func(r *R) string { return r.UID }),
		addrCol("id_orig_h", "id.orig_h", "client address", func(r *R) netip.Addr { return r.SrcIP }),
		portCol("id_orig_p", "id.orig_p", "client port", func(r *R) (uint16, bool) { return some(r.SrcPort) }),
		addrCol("id_resp_h", "id.resp_h", "server address", func(r *R) netip.Addr { return r.DstIP }),
		portCol("id_resp_p", "id.resp_p", "server port", func(r *R) (uint16, bool) { return some(r.DstPort) }),
		strCol("proto", "proto", "transport protocol", func(r *R) string { return r.Proto }),
		countCol("trans_id", "trans_id", "DNS transaction id", func(r *R) event.Opt[uint64] { return r.TransID }),
		intervalCol("rtt", "rtt", "seconds from query to response", func(r *R) event.Opt[time.Duration] { return r.RTT }),
		strCol("query", "query", "name queried", func(r *R) string { return r.Query }),
		countCol("qclass", "qclass", "query class", func(r *R) event.Opt[uint64] { return r.QClass }),
		strCol("qclass_name", "qclass_name", "query class name", func(r *R) string { return r.QClassNm }),
		countCol("qtype", "qtype", "query type", func(r *R) event.Opt[uint64] { return r.QType }),
		strCol("qtype_name", "qtype_name", "query type name (A, TXT, ...)", func(r *R) string { return r.QTypeName }),
		countCol("rcode", "rcode", "response code", func(r *R) event.Opt[uint64] { return r.RCode }),
		strCol("rcode_name", "rcode_name", "response code name (NOERROR, NXDOMAIN, ...)", func(r *R) string { return r.RCodeName }),
		boolCol("AA", "AA", "authoritative answer", func(r *R) event.Opt[bool] { return r.AA }),
		boolCol("TC", "TC", "truncated", func(r *R) event.Opt[bool] { return r.TC }),
		boolCol("RD", "RD", "recursion desired", func(r *R) event.Opt[bool] { return r.RD }),
		boolCol("RA", "RA", "recursion available", func(r *R) event.Opt[bool] { return r.RA }),
		countCol("Z", "Z", "reserved bits", func(r *R) event.Opt[uint64] { return r.Z }),
		strsCol("answers", "answers", "answer resource records", func(r *R) []string { return r.Answers }),
		ivalsCol("TTLs", "TTLs", "TTL of each answer, seconds", func(r *R) []time.Duration { return r.TTLs }),
		boolCol("rejected", "rejected", "server rejected the query", func(r *R) event.Opt[bool] { return r.Rejected }),
	}
	src := func(r *R) *event.Source { return &r.Src }
	return &Table[R]{Kind: event.KindDNS, Doc: "One row per DNS query and response (Zeek dns.log).",
		Columns: append(cols, provenance(src)...), Rows: func(b *event.Batch) []R { return b.DNS }, Source: src,
		Time: func(r *R) time.Time { return r.TS }}
}

func httpTable() *Table[event.HTTP] {
	type R = event.HTTP
	cols := []Column[R]{
		tsCol(func(r *R) time.Time { return r.TS }),
		strCol("uid", "uid", "Zeek's connection id", func(r *R) string { return r.UID }),
		addrCol("id_orig_h", "id.orig_h", "client address", func(r *R) netip.Addr { return r.SrcIP }),
		portCol("id_orig_p", "id.orig_p", "client port", func(r *R) (uint16, bool) { return some(r.SrcPort) }),
		addrCol("id_resp_h", "id.resp_h", "server address", func(r *R) netip.Addr { return r.DstIP }),
		portCol("id_resp_p", "id.resp_p", "server port", func(r *R) (uint16, bool) { return some(r.DstPort) }),
		countCol("trans_depth", "trans_depth", "position in a pipelined connection", func(r *R) event.Opt[uint64] { return r.TransDepth }),
		strCol("method", "method", "request method", func(r *R) string { return r.Method }),
		strCol("host", "host", "Host header", func(r *R) string { return r.Host }),
		strCol("uri", "uri", "request URI", func(r *R) string { return r.URI }),
		strCol("referrer", "referrer", "Referer header", func(r *R) string { return r.Referrer }),
		strCol("version", "version", "HTTP version", func(r *R) string { return r.Version }),
		strCol("user_agent", "user_agent", "User-Agent header", func(r *R) string { return r.UserAgent }),
		strCol("origin", "origin", "Origin header", func(r *R) string { return r.Origin }),
		countCol("request_body_len", "request_body_len", "request body bytes", func(r *R) event.Opt[uint64] { return r.RequestBodyLen }),
		countCol("response_body_len", "response_body_len", "response body bytes", func(r *R) event.Opt[uint64] { return r.ResponseBodyLen }),
		countCol("status_code", "status_code", "response status code", func(r *R) event.Opt[uint64] { return r.StatusCode }),
		strCol("status_msg", "status_msg", "response status message", func(r *R) string { return r.StatusMsg }),
		countCol("info_code", "info_code", "last 1xx status code", func(r *R) event.Opt[uint64] { return r.InfoCode }),
		strCol("info_msg", "info_msg", "last 1xx status message", func(r *R) string { return r.InfoMsg }),
		strsCol("tags", "tags", "Zeek's HTTP tags", func(r *R) []string { return r.Tags }),
		strCol("username", "username", "basic-auth user name", func(r *R) string { return r.Username }),
		strCol("password", "password", "basic-auth password (when Zeek logs it)", func(r *R) string { return r.Password }),
		strsCol("proxied", "proxied", "proxy headers seen", func(r *R) []string { return r.Proxied }),
		strsCol("orig_fuids", "orig_fuids", "file ids sent by the client", func(r *R) []string { return r.OrigFUIDs }),
		strsCol("orig_filenames", "orig_filenames", "file names sent by the client", func(r *R) []string { return r.OrigFilenames }),
		strsCol("orig_mime_types", "orig_mime_types", "MIME types sent by the client", func(r *R) []string { return r.OrigMIMETypes }),
		strsCol("resp_fuids", "resp_fuids", "file ids sent by the server", func(r *R) []string { return r.RespFUIDs }),
		strsCol("resp_filenames", "resp_filenames", "file names sent by the server", func(r *R) []string { return r.RespFilenames }),
		strsCol("resp_mime_types", "resp_mime_types", "MIME types sent by the server", func(r *R) []string { return r.RespMIMETypes }),
		strCol("server", "server", "Server header of the reply (not in Zeek's default http.log: from packet captures, Suricata's EVE, "+
			"and Zeek logs that add the field)", func(r *R) string { return r.Server }),
	}
	src := func(r *R) *event.Source { return &r.Src }
	return &Table[R]{Kind: event.KindHTTP, Doc: "One row per HTTP request and response (Zeek http.log).",
		Columns: append(cols, provenance(src)...), Rows: func(b *event.Batch) []R { return b.HTTP }, Source: src,
		Time: func(r *R) time.Time { return r.TS }}
}

func tlsTable() *Table[event.TLS] {
	type R = event.TLS
	cols := []Column[R]{
		tsCol(func(r *R) time.Time { return r.TS }),
		strCol("uid", "uid", "Zeek's connection id", func(r *R) string { return r.UID }),
		addrCol("id_orig_h", "id.orig_h", "client address", func(r *R) netip.Addr { return r.SrcIP }),
		portCol("id_orig_p", "id.orig_p", "client port", func(r *R) (uint16, bool) { return some(r.SrcPort) }),
		addrCol("id_resp_h", "id.resp_h", "server address", func(r *R) netip.Addr { return r.DstIP }),
		portCol("id_resp_p", "id.resp_p", "server port", func(r *R) (uint16, bool) { return some(r.DstPort) }),
		strCol("version", "version", "protocol version", func(r *R) string { return r.Version }),
		strCol("cipher", "cipher", "cipher suite", func(r *R) string { return r.Cipher }),
		strCol("curve", "curve", "elliptic curve", func(r *R) string { return r.Curve }),
		strCol("server_name", "server_name", "SNI sent by the client", func(r *R) string { return r.ServerName }),
		boolCol("resumed", "resumed", "session resumed", func(r *R) event.Opt[bool] { return r.Resumed }),
		strCol("last_alert", "last_alert", "last alert seen", func(r *R) string { return r.LastAlert }),
		strCol("next_protocol", "next_protocol", "ALPN protocol chosen", func(r *R) string { return r.NextProtocol }),
		boolCol("established", "established", "handshake completed", func(r *R) event.Opt[bool] { return r.Established }),
		strCol("ssl_history", "ssl_history", "handshake message letters", func(r *R) string { return r.SSLHistory }),
		strsCol("cert_chain_fps", "cert_chain_fps", "SHA-256 of the server's certificates", func(r *R) []string { return r.CertChainFPs }),
		strsCol("client_cert_chain_fps", "client_cert_chain_fps", "SHA-256 of the client's certificates", func(r *R) []string { return r.ClientCertChainFPs }),
		strsCol("cert_chain_fuids", "cert_chain_fuids", "file ids of the server's certificates (older Zeek)", func(r *R) []string { return r.CertChainFUIDs }),
		strsCol("client_cert_chain_fuids", "client_cert_chain_fuids", "file ids of the client's certificates (older Zeek)", func(r *R) []string { return r.ClientCertChainFUIDs }),
		strCol("subject", "subject", "server certificate subject", func(r *R) string { return r.Subject }),
		strCol("issuer", "issuer", "server certificate issuer", func(r *R) string { return r.Issuer }),
		strCol("client_subject", "client_subject", "client certificate subject", func(r *R) string { return r.ClientSubject }),
		strCol("client_issuer", "client_issuer", "client certificate issuer", func(r *R) string { return r.ClientIssuer }),
		boolCol("sni_matches_cert", "sni_matches_cert", "SNI matches the certificate", func(r *R) event.Opt[bool] { return r.SNIMatchesCert }),
		strCol("validation_status", "validation_status", "certificate validation result", func(r *R) string { return r.ValidationStatus }),
		strCol("ja3", "ja3", "JA3 client fingerprint", func(r *R) string { return r.JA3 }),
		strCol("ja3s", "ja3s", "JA3S server fingerprint", func(r *R) string { return r.JA3S }),
		strCol("ja4", "ja4", "JA4 client fingerprint", func(r *R) string { return r.JA4 }),
		strCol("ja4s", "ja4s", "JA4S server fingerprint", func(r *R) string { return r.JA4S }),
	}
	src := func(r *R) *event.Source { return &r.Src }
	return &Table[R]{Kind: event.KindTLS, Doc: "One row per TLS/SSL handshake (Zeek ssl.log).",
		Columns: append(cols, provenance(src)...), Rows: func(b *event.Batch) []R { return b.TLS }, Source: src,
		Time: func(r *R) time.Time { return r.TS }}
}

func x509Table() *Table[event.X509] {
	type R = event.X509
	optTime := func(o event.Opt[time.Time]) (time.Time, bool) { return o.V, o.Valid }
	cols := []Column[R]{
		tsCol(func(r *R) time.Time { return r.TS }),
		strCol("id", "id", "file id of the certificate (Zeek before 4.2)", func(r *R) string { return r.ID }),
		strCol("fingerprint", "fingerprint", "SHA-256 of the certificate (Zeek 4.2 and later)", func(r *R) string { return r.Fingerprint }),
		countCol("certificate_version", "certificate.version", "X.509 version", func(r *R) event.Opt[uint64] { return r.Version }),
		strCol("certificate_serial", "certificate.serial", "serial number", func(r *R) string { return r.Serial }),
		strCol("certificate_subject", "certificate.subject", "subject DN", func(r *R) string { return r.Subject }),
		strCol("certificate_issuer", "certificate.issuer", "issuer DN", func(r *R) string { return r.Issuer }),
		timeCol("certificate_not_valid_before", "certificate.not_valid_before", "start of validity", func(r *R) (time.Time, bool) { return optTime(r.NotValidBefore) }),
		timeCol("certificate_not_valid_after", "certificate.not_valid_after", "end of validity", func(r *R) (time.Time, bool) { return optTime(r.NotValidAfter) }),
		strCol("certificate_key_alg", "certificate.key_alg", "key algorithm", func(r *R) string { return r.KeyAlg }),
		strCol("certificate_sig_alg", "certificate.sig_alg", "signature algorithm", func(r *R) string { return r.SigAlg }),
		strCol("certificate_key_type", "certificate.key_type", "key type", func(r *R) string { return r.KeyType }),
		countCol("certificate_key_length", "certificate.key_length", "key length in bits", func(r *R) event.Opt[uint64] { return r.KeyLength }),
		strCol("certificate_exponent", "certificate.exponent", "RSA exponent", func(r *R) string { return r.Exponent }),
		strCol("certificate_curve", "certificate.curve", "EC curve", func(r *R) string { return r.Curve }),
		strsCol("san_dns", "san.dns", "DNS subject alternative names", func(r *R) []string { return r.SANDNS }),
		strsCol("san_uri", "san.uri", "URI subject alternative names", func(r *R) []string { return r.SANURI }),
		strsCol("san_email", "san.email", "e-mail subject alternative names", func(r *R) []string { return r.SANEmail }),
		strsCol("san_ip", "san.ip", "IP subject alternative names", func(r *R) []string { return addrsToStrings(r.SANIP) }),
		boolCol("basic_constraints_ca", "basic_constraints.ca", "certificate is a CA", func(r *R) event.Opt[bool] { return r.BasicConstraintCA }),
		countCol("basic_constraints_path_len", "basic_constraints.path_len", "CA path length limit", func(r *R) event.Opt[uint64] { return r.BasicConstraintPL }),
		boolCol("host_cert", "host_cert", "seen as a server certificate", func(r *R) event.Opt[bool] { return r.HostCert }),
		boolCol("client_cert", "client_cert", "seen as a client certificate", func(r *R) event.Opt[bool] { return r.ClientCert }),
	}
	src := func(r *R) *event.Source { return &r.Src }
	return &Table[R]{Kind: event.KindX509, Doc: "One row per certificate seen (Zeek x509.log).",
		Columns: append(cols, provenance(src)...), Rows: func(b *event.Batch) []R { return b.X509 }, Source: src,
		Time: func(r *R) time.Time { return r.TS }}
}

func filesTable() *Table[event.File] {
	type R = event.File
	cols := []Column[R]{
		tsCol(func(r *R) time.Time { return r.TS }),
		strCol("fuid", "fuid", "Zeek's file id", func(r *R) string { return r.FUID }),
		strCol("uid", "uid", "connection that carried the file (Zeek 5 and later)", func(r *R) string { return r.UID }),
		addrCol("id_orig_h", "id.orig_h", "originator of that connection", func(r *R) netip.Addr { return r.SrcIP }),
		portCol("id_orig_p", "id.orig_p", "originator port", func(r *R) (uint16, bool) { return portIf(r.SrcPort, r.SrcIP) }),
		addrCol("id_resp_h", "id.resp_h", "responder of that connection", func(r *R) netip.Addr { return r.DstIP }),
		portCol("id_resp_p", "id.resp_p", "responder port", func(r *R) (uint16, bool) { return portIf(r.DstPort, r.DstIP) }),
		strsCol("tx_hosts", "tx_hosts", "hosts that sent the file (older Zeek)", func(r *R) []string { return addrsToStrings(r.TxHosts) }),
		strsCol("rx_hosts", "rx_hosts", "hosts that received the file (older Zeek)", func(r *R) []string { return addrsToStrings(r.RxHosts) }),
		strsCol("conn_uids", "conn_uids", "connections that carried the file (older Zeek)", func(r *R) []string { return r.ConnUIDs }),
		strCol("source", "source", "protocol that carried the file", func(r *R) string { return r.Source }),
		countCol("depth", "depth", "nesting depth", func(r *R) event.Opt[uint64] { return r.Depth }),
		strsCol("analyzers", "analyzers", "file analyzers run", func(r *R) []string { return r.Analyzers }),
		strCol("mime_type", "mime_type", "MIME type sniffed", func(r *R) string { return r.MIMEType }),
		strCol("filename", "filename", "file name, when the protocol gives one", func(r *R) string { return r.Filename }),
		intervalCol("duration", "duration", "seconds the transfer took", func(r *R) event.Opt[time.Duration] { return r.Duration }),
		boolCol("local_orig", "local_orig", "sender is local", func(r *R) event.Opt[bool] { return r.LocalOrig }),
		boolCol("is_orig", "is_orig", "sent by the connection's originator", func(r *R) event.Opt[bool] { return r.IsOrig }),
		countCol("seen_bytes", "seen_bytes", "bytes seen", func(r *R) event.Opt[uint64] { return r.SeenBytes }),
		countCol("total_bytes", "total_bytes", "announced size", func(r *R) event.Opt[uint64] { return r.TotalBytes }),
		countCol("missing_bytes", "missing_bytes", "bytes missed", func(r *R) event.Opt[uint64] { return r.MissingBytes }),
		countCol("overflow_bytes", "overflow_bytes", "bytes out of sequence", func(r *R) event.Opt[uint64] { return r.OverflowBytes }),
		boolCol("timedout", "timedout", "analysis timed out", func(r *R) event.Opt[bool] { return r.TimedOut }),
		strCol("parent_fuid", "parent_fuid", "containing file", func(r *R) string { return r.ParentFUID }),
		strCol("md5", "md5", "MD5 of the content", func(r *R) string { return r.MD5 }),
		strCol("sha1", "sha1", "SHA-1 of the content", func(r *R) string { return r.SHA1 }),
		strCol("sha256", "sha256", "SHA-256 of the content", func(r *R) string { return r.SHA256 }),
		strCol("extracted", "extracted", "name of the extracted file", func(r *R) string { return r.Extracted }),
		boolCol("extracted_cutoff", "extracted_cutoff", "extraction was cut off", func(r *R) event.Opt[bool] { return r.ExtractedCutoff }),
		countCol("extracted_size", "extracted_size", "bytes extracted", func(r *R) event.Opt[uint64] { return r.ExtractedSize }),
	}
	src := func(r *R) *event.Source { return &r.Src }
	return &Table[R]{Kind: event.KindFile, Doc: "One row per file transfer (Zeek files.log).",
		Columns: append(cols, provenance(src)...), Rows: func(b *event.Batch) []R { return b.Files }, Source: src,
		Time: func(r *R) time.Time { return r.TS }}
}

func flowTable() *Table[event.Flow] {
	type R = event.Flow
	u64 := func(v uint64) event.Opt[uint64] { return event.Some(v) }
	cols := []Column[R]{
		timeCol("ts", "", "first packet of the flow (UTC)", func(r *R) (time.Time, bool) { return r.TS, true }),
		timeCol("ts_end", "", "last packet of the flow (UTC)", func(r *R) (time.Time, bool) { return r.End, !r.End.IsZero() }),
		addrCol("src_addr", "", "source address", func(r *R) netip.Addr { return r.SrcIP }),
		portCol("src_port", "", "source port (0 for ICMP and other protocols)", func(r *R) (uint16, bool) { return some(r.SrcPort) }),
		addrCol("dst_addr", "", "destination address", func(r *R) netip.Addr { return r.DstIP }),
		portCol("dst_port", "", "destination port", func(r *R) (uint16, bool) { return some(r.DstPort) }),
		strCol("proto", "", "transport protocol: tcp, udp, icmp, or the IP protocol number", func(r *R) string { return r.Proto }),
		countCol("tcp_flags", "", "TCP flags seen, ORed (SYN 2, ACK 16)", func(r *R) event.Opt[uint64] { return u64(uint64(r.TCPFlags)) }),
		countCol("packets", "", "packets, as exported (before sampling)", func(r *R) event.Opt[uint64] { return u64(r.Packets) }),
		countCol("bytes", "", "IP bytes, as exported (before sampling)", func(r *R) event.Opt[uint64] { return u64(r.Bytes) }),
		countCol("sampling", "", "packet sampling interval (1 in N); NULL when unsampled or unknown", func(r *R) event.Opt[uint64] {
			if r.Sampling <= 1 {
				return event.Opt[uint64]{}
			}
			return u64(uint64(r.Sampling))
		}),
		addrCol("exporter", "", "the router or probe that exported the record", func(r *R) netip.Addr { return r.Exporter }),
		strCol("export_format", "", "export protocol: netflow-v5, netflow-v9, ipfix, sflow-v5, or pcap (made by dwell from a packet capture)", func(r *R) string { return r.Export }),
	}
	src := func(r *R) *event.Source { return &r.Src }
	return &Table[R]{Kind: event.KindFlow, Doc: "One row per exported flow record (NetFlow v5, v9, IPFIX); source_line is the record's packet in the capture.",
		Columns: append(cols, provenance(src)...), Rows: func(b *event.Batch) []R { return b.Flows }, Source: src,
		Time: func(r *R) time.Time { return r.TS }}
}

func quarantineTable() *Table[event.Quarantined] {
	type R = event.Quarantined
	cols := []Column[R]{
		timeCol("ts", "", "the time the record claims, when representable (years 1 to 9999)", func(r *R) (time.Time, bool) {
			return r.TS, !r.TS.IsZero()
		}),
		strCol("claimed", "", "the time the record claims, as read (RFC 3339)", func(r *R) string { return r.Claimed }),
		strCol("kind", "", "the record's table (conn, dns, flow, ...)", func(r *R) string { return r.Kind.String() }),
		strCol("reason", "", "why it was held out", func(r *R) string { return r.Reason }),
		strCol("record", "", "the whole record, as JSON", func(r *R) string { return r.Record }),
	}
	src := func(r *R) *event.Source { return &r.Src }
	return &Table[R]{SQLName: "quarantine",
		Doc: "Records held out of the hunt because the time they claim cannot be true: before ingest.earliest, in the future, " +
			"lasting longer than ingest.max_duration, or far from every other record of their input (docs/security.md).",
		Columns: append(cols, provenance(src)...), Rows: func(b *event.Batch) []R { return b.Quarantine }, Source: src,
		Time: func(r *R) time.Time { return r.TS }}
}
