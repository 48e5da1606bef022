package zeek

import (
	"strings"

	"github.com/dwell-nsm/dwell/internal/event"
)

// inferKind names the log type of a record by the fields it has, for
// inputs in which nothing else says it (no #path or _path, a file name
// that names no type): each log dwell stores has fields no other has.
// Names are compared with underscores for dots (Zeek's
// Log::default_field_name_map). It returns 0 when the fields fit none or
// more than one.
func inferKind(names []string) event.Kind {
	has := map[string]bool{}
	for _, n := range names {
		has[strings.ReplaceAll(n, ".", "_")] = true
	}
	var found event.Kind
	for _, c := range []struct {
		kind event.Kind
		all  []string // every one of them
		any  []string // and one of them
	}{
		{event.KindConn, []string{"id_orig_h", "id_resp_h"}, []string{"conn_state", "orig_ip_bytes", "resp_ip_bytes"}},
		{event.KindDNS, []string{"query"}, []string{"qtype_name", "qtype", "rcode_name", "trans_id", "answers"}},
		{event.KindHTTP, []string{"method"}, []string{"uri", "status_code", "user_agent", "request_body_len"}},
		{event.KindTLS, []string{"id_orig_h"}, []string{"server_name", "cipher", "ssl_history", "cert_chain_fps", "cert_chain_fuids", "ja3"}},
		{event.KindX509, nil, []string{"certificate_subject", "certificate_serial", "certificate_not_valid_after"}},
		{event.KindFile, []string{"fuid"}, []string{"mime_type", "seen_bytes", "analyzers", "total_bytes"}},
	} {
		ok := true
		for _, n := range c.all {
			ok = ok && has[n]
		}
		any := false
		for _, n := range c.any {
			any = any || has[n]
		}
		if !ok || !any {
			continue
		}
		if found != 0 {
			return 0
		}
		found = c.kind
	}
	return found
}
