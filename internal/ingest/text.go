package ingest

import "github.com/dwell-nsm/dwell/internal/event"

// Text in records is UTF-8, always. Zeek escapes the bytes of a DNS name,
// a user agent or a file name that are not printable as \xNN, but a log
// can still carry raw bytes (a converter, a truncated multi-byte
// character, an attacker who writes to the log pipeline), and stores keep
// UTF-8 only: DuckDB turned such values into NULL, silently. The screen
// escapes each byte that is not part of valid UTF-8 as Zeek does (\xff),
// keeps the value and counts it: odd bytes in a name are evidence.

// texts visits every text field of a record, its provenance included.
type texts[R any] func(r *R, str func(*string), list func([]string))

func connTexts(r *event.Conn, str func(*string), list func([]string)) {
	for _, p := range []*string{&r.UID, &r.Proto, &r.Service, &r.ConnState, &r.History, &r.CommunityID, &r.Src.Sensor, &r.Src.File} {
		str(p)
	}
	list(r.TunnelParents)
}

func dnsTexts(r *event.DNS, str func(*string), list func([]string)) {
	for _, p := range []*string{&r.UID, &r.Proto, &r.Query, &r.QClassNm, &r.QTypeName, &r.RCodeName, &r.Src.Sensor, &r.Src.File} {
		str(p)
	}
	list(r.Answers)
}

func httpTexts(r *event.HTTP, str func(*string), list func([]string)) {
	for _, p := range []*string{&r.UID, &r.Method, &r.Host, &r.URI, &r.Referrer, &r.Version, &r.UserAgent, &r.Origin, &r.StatusMsg,
		&r.InfoMsg, &r.Username, &r.Password, &r.Server, &r.Src.Sensor, &r.Src.File} {
		str(p)
	}
	for _, l := range [][]string{r.Tags, r.Proxied, r.OrigFUIDs, r.OrigFilenames, r.OrigMIMETypes, r.RespFUIDs, r.RespFilenames, r.RespMIMETypes} {
		list(l)
	}
}

func tlsTexts(r *event.TLS, str func(*string), list func([]string)) {
	for _, p := range []*string{&r.UID, &r.Version, &r.Cipher, &r.Curve, &r.ServerName, &r.LastAlert, &r.NextProtocol, &r.SSLHistory,
		&r.Subject, &r.Issuer, &r.ClientSubject, &r.ClientIssuer, &r.ValidationStatus, &r.JA3, &r.JA3S, &r.JA4, &r.JA4S,
		&r.Src.Sensor, &r.Src.File} {
		str(p)
	}
	for _, l := range [][]string{r.CertChainFPs, r.ClientCertChainFPs, r.CertChainFUIDs, r.ClientCertChainFUIDs} {
		list(l)
	}
}

func x509Texts(r *event.X509, str func(*string), list func([]string)) {
	for _, p := range []*string{&r.ID, &r.Fingerprint, &r.Serial, &r.Subject, &r.Issuer, &r.KeyAlg, &r.SigAlg, &r.KeyType, &r.Exponent,
		&r.Curve, &r.Src.Sensor, &r.Src.File} {
		str(p)
	}
	for _, l := range [][]string{r.SANDNS, r.SANURI, r.SANEmail} {
		list(l)
	}
}

func fileTexts(r *event.File, str func(*string), list func([]string)) {
	for _, p := range []*string{&r.FUID, &r.UID, &r.Source, &r.MIMEType, &r.Filename, &r.ParentFUID, &r.MD5, &r.SHA1, &r.SHA256,
		&r.Extracted, &r.Src.Sensor, &r.Src.File} {
		str(p)
	}
	list(r.ConnUIDs)
	list(r.Analyzers)
}

func flowTexts(r *event.Flow, str func(*string), _ func([]string)) {
	for _, p := range []*string{&r.Proto, &r.Export, &r.Src.Sensor, &r.Src.File} {
		str(p)
	}
}

func hostTexts(r *event.HostEvent, str func(*string), _ func([]string)) {
	for _, p := range []*string{&r.Channel, &r.Provider, &r.Computer, &r.UserID, &r.Src.Sensor, &r.Src.File} {
		str(p)
	}
	for i := range r.Fields {
		str(&r.Fields[i].Name)
		str(&r.Fields[i].Value)
	}
}

func alertTexts(r *event.Alert, str func(*string), list func([]string)) {
	for _, p := range []*string{&r.FlowID, &r.Proto, &r.AppProto, &r.Action, &r.Signature, &r.Category, &r.CommunityID, &r.Src.Sensor, &r.Src.File} {
		str(p)
	}
	list(r.Attack)
}

// escapeAll escapes the text of rows in place and returns how many
// values it changed. Lists are changed in place too: a record's lists
// are its own (decoders do not share them between records).
func escapeAll[R any](rows []R, visit texts[R]) int64 {
	var n int64
	str := func(p *string) {
		if v, changed := event.EscapeText(*p); changed {
			*p = v
			n++
		}
	}
	list := func(l []string) {
		for i := range l {
			str(&l[i])
		}
	}
	for i := range rows {
		visit(&rows[i], str, list)
	}
	return n
}

// escapeBatch escapes the text of every record of b and returns how many
// values it changed.
func escapeBatch(b *event.Batch) int64 {
	return escapeAll(b.Conns, connTexts) + escapeAll(b.OpenConns, connTexts) + escapeAll(b.DNS, dnsTexts) +
		escapeAll(b.HTTP, httpTexts) + escapeAll(b.TLS, tlsTexts) + escapeAll(b.X509, x509Texts) +
		escapeAll(b.Files, fileTexts) + escapeAll(b.Flows, flowTexts) + escapeAll(b.Host, hostTexts) + escapeAll(b.Alerts, alertTexts)
}
