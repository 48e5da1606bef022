package store

import "slices"

// The closed sets that Column.Codes lists: the names Zeek's logs write
// for its constants. A value outside a list (a later Zeek's name, a
// protocol number) is stored all the same, as text beside the codes; the
// lists only decide what is cheap. dns.log's and ssl.log's closed sets
// (qtype_name, rcode_name, version, curve, ...) were coded too and gained
// nothing measurable (docs/benchmarks.md, "Closed sets as codes"), so
// they stay text.

// sorted sorts v in place, as Codes must be, and returns it.
func sorted(v ...string) []string {
	slices.Sort(v)
	return v
}

// transportProtos are Zeek's transport_proto values.
func transportProtos() []string { return sorted("icmp", "tcp", "udp", "unknown_transport") }

// connStates are the values of conn.log's conn_state.
func connStates() []string {
	return sorted("S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH")
}
