// Package storetest is the conformance suite every store backend passes:
// what is written comes back unchanged, the ingest ledger behaves as
// ingest expects, and analysts' SQL cannot write.
//
// A backend's test calls Run with a function that opens a fresh, empty store.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Open returns a new, empty store for one test; the suite closes it.
type Open func(t *testing.T) store.Store

// Run runs the conformance suite.
func Run(t *testing.T, open Open) {
	t.Run("Empty", func(t *testing.T) { testEmpty(t, open(t)) })
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, open(t)) })
	t.Run("Ledger", func(t *testing.T) { testLedger(t, open(t)) })
	t.Run("ReadOnlySQL", func(t *testing.T) { testReadOnly(t, open(t)) })
	t.Run("StateSQL", func(t *testing.T) { testStateSQL(t, open(t)) })
	t.Run("ManyRows", func(t *testing.T) { testManyRows(t, open(t)) })
	t.Run("Analytics", func(t *testing.T) { testAnalytics(t, open(t)) })
	t.Run("Intel", func(t *testing.T) { testIntel(t, open(t)) })
	t.Run("IntelRandom", func(t *testing.T) { testIntelRandom(t, open(t)) })
	t.Run("DeleteIndicators", func(t *testing.T) { testDeleteIndicators(t, open(t)) })
	t.Run("DeleteSensor", func(t *testing.T) { testDeleteSensor(t, open(t)) })
	t.Run("Flows", func(t *testing.T) { testFlows(t, open(t)) })
	t.Run("SessionsAfterWrites", func(t *testing.T) { testSessionsAfterWrites(t, open(t)) })
	t.Run("ExtremeCounts", func(t *testing.T) { testExtremeCounts(t, open(t)) })
	t.Run("NotUTF8", func(t *testing.T) { testNotUTF8(t, open(t)) })
	t.Run("HostEvents", func(t *testing.T) { testHostEvents(t, open(t)) })
	t.Run("Alerts", func(t *testing.T) { testAlerts(t, open(t)) })
	t.Run("Settled", func(t *testing.T) { Settled(t, open(t)) })
}

func closeStore(t *testing.T, s store.Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func testEmpty(t *testing.T, s store.Store) {
	defer closeStore(t, s)
	ctx := context.Background()
	for _, k := range event.Kinds {
		n, err := s.Count(ctx, k)
		if err != nil || n != 0 {
			t.Errorf("Count(%v) = %d, %v; want 0", k, n, err)
		}
	}
	l, err := s.Ledger(ctx)
	if err != nil || len(l) != 0 {
		t.Errorf("Ledger = %v, %v; want empty", l, err)
	}
}

var t0 = time.Date(2024, 4, 19, 0, 0, 1, 123456000, time.UTC)

// Sample returns a batch with every kind of record, every field set, plus
// one record per kind with every optional field unset.
func Sample() *event.Batch {
	src := func(line int64) event.Source {
		return event.Source{Sensor: "brussels", File: "/data/2024-04-19/conn.00:00:00-01:00:00.log.gz", Line: line}
	}
	a := netip.MustParseAddr
	b := &event.Batch{}
	b.Conns = []event.Conn{{
		TS: t0, UID: "CYl7H53iN6mY9NyXJ8", SrcIP: a("10.1.2.3"), SrcPort: 52100, DstIP: a("2001:db8::1"), DstPort: 443,
		Proto: "tcp", Service: "ssl", Duration: event.Some(1500 * time.Millisecond), SrcBytes: event.Some[uint64](1 << 40),
		DstBytes: event.Some[uint64](0), ConnState: "SF", LocalSrc: event.Some(true), LocalDst: event.Some(false),
		MissedBytes: event.Some[uint64](0), History: "ShADadFf", SrcPkts: event.Some[uint64](10), SrcIPBytes: event.Some[uint64](1000),
		DstPkts: event.Some[uint64](12), DstIPBytes: event.Some[uint64](5000), TunnelParents: []string{"Cabc", "Cdef"},
		CommunityID: "1:abc=", Src: src(9),
	}, {TS: t0.Add(time.Second), UID: "Cunset", SrcIP: a("10.1.2.4"), DstIP: a("10.1.2.5"), Proto: "udp", TunnelParents: []string{}, Src: src(10)}}
	b.OpenConns = []event.Conn{{TS: t0, UID: "Copen", SrcIP: a("73.54.23.243"), SrcPort: 56394, DstIP: a("64.225.56.201"), DstPort: 22,
		Proto: "tcp", Service: "ssh", Duration: event.Some(14400964662 * time.Microsecond / 1000), Src: src(3)}}
	b.DNS = []event.DNS{{
		TS: t0, UID: "Cdns", SrcIP: a("10.1.2.3"), SrcPort: 5353, DstIP: a("10.0.0.53"), DstPort: 53, Proto: "udp",
		TransID: event.Some[uint64](4242), RTT: event.Some(870 * time.Microsecond), Query: "a.b.example.com", QClass: event.Some[uint64](1),
		QClassNm: "C_INTERNET", QType: event.Some[uint64](16), QTypeName: "TXT", RCode: event.Some[uint64](3), RCodeName: "NXDOMAIN",
		AA: event.Some(false), TC: event.Some(false), RD: event.Some(true), RA: event.Some(true), Z: event.Some[uint64](0),
		Answers: []string{"TXT 18 302f017537c68f5169", "x\ty"}, TTLs: []time.Duration{60 * time.Second, 1500 * time.Millisecond},
		Rejected: event.Some(false), Src: src(20),
	}, {TS: t0, UID: "Cdns2", Query: "unset.example", Src: src(21)}}
	b.HTTP = []event.HTTP{{
		TS: t0, UID: "Chttp", SrcIP: a("73.54.23.243"), SrcPort: 1234, DstIP: a("64.225.56.201"), DstPort: 80,
		TransDepth: event.Some[uint64](1), Method: "POST", Host: "", URI: "/owa/auth/x.aspx?a=b", Referrer: "-x",
		Version: "1.1", UserAgent: "Modzilla/0.0001 (Atari 7800)", Origin: "o", RequestBodyLen: event.Some[uint64](512),
		ResponseBodyLen: event.Some[uint64](0), StatusCode: event.Some[uint64](200), StatusMsg: "OK", InfoCode: event.Some[uint64](100),
		InfoMsg: "Continue", Tags: []string{"HTTP::URI_SQLI"}, Username: "u", Password: "p", Proxied: []string{"X-FORWARDED-FOR -> 1.2.3.4"},
		OrigFUIDs: []string{"F1"}, OrigFilenames: []string{"a.txt"}, OrigMIMETypes: []string{"text/plain"},
		RespFUIDs: []string{}, RespFilenames: []string{}, RespMIMETypes: []string{}, Server: "nginx/1.18.0 (Ubuntu)", Src: src(30),
	}}
	b.TLS = []event.TLS{{
		TS: t0, UID: "Ctls", SrcIP: a("10.1.2.3"), SrcPort: 50000, DstIP: a("198.51.100.7"), DstPort: 443,
		Version: "TLSv13", Cipher: "TLS_AES_128_GCM_SHA256", Curve: "x25519", ServerName: "cdn.example.net",
		Resumed: event.Some(false), LastAlert: "", NextProtocol: "h2", Established: event.Some(true), SSLHistory: "CsiI",
		CertChainFPs: []string{"ab", "cd"}, ClientCertChainFPs: []string{}, CertChainFUIDs: nil, ClientCertChainFUIDs: nil,
		Subject: "CN=cdn.example.net", Issuer: "CN=Example CA,O=Example\\, Inc.", ClientSubject: "", ClientIssuer: "",
		SNIMatchesCert: event.Some(true), ValidationStatus: "ok", JA3: "e7d705a3286e19ea42f587b344ee6865", JA3S: "f4febc55ea12b31ae17cfb7e614afda8",
		JA4: "t13d1516h2_8daaf6152771_e5627efa2ab1", JA4S: "t130200_1301_234ea6891581", Src: src(40),
	}}
	b.X509 = []event.X509{{
		TS: t0, Fingerprint: "b2dafbcd", Version: event.Some[uint64](3), Serial: "CC57FE54011E", Subject: "CN=localhost",
		Issuer: "O=VMware Installer", NotValidBefore: event.Some(time.Date(2011, 9, 10, 12, 15, 2, 0, time.UTC)),
		NotValidAfter: event.Some(time.Date(2023, 3, 11, 12, 15, 2, 0, time.UTC)), KeyAlg: "rsaEncryption", SigAlg: "sha256WithRSAEncryption",
		KeyType: "rsa", KeyLength: event.Some[uint64](2048), Exponent: "65537", SANDNS: []string{"localhost.localdomain"},
		SANIP: []netip.Addr{a("192.0.2.1")}, BasicConstraintCA: event.Some(false), HostCert: event.Some(true), ClientCert: event.Some(false), Src: src(50),
	}}
	b.Files = []event.File{{
		TS: t0, FUID: "FcQXaP1ZtYELKO6py1", TxHosts: []netip.Addr{a("205.204.101.182")}, RxHosts: []netip.Addr{a("10.55.100.105")},
		ConnUIDs: []string{"CB9DKu4WI1kRo88sj6"}, Source: "HTTP", Depth: event.Some[uint64](0), Analyzers: []string{"MD5", "SHA1"},
		MIMEType: "image/gif", Filename: "x.gif", Duration: event.Some(time.Duration(0)), LocalOrig: event.Some(false), IsOrig: event.Some(false),
		SeenBytes: event.Some[uint64](43), TotalBytes: event.Some[uint64](43), MissingBytes: event.Some[uint64](0), OverflowBytes: event.Some[uint64](0),
		TimedOut: event.Some(false), MD5: "d41d8cd98f00b204e9800998ecf8427e", SHA1: "da39a3ee5e6b4b0d3255bfef95601890afd80709", Src: src(60),
	}, {TS: t0, FUID: "F2", UID: "C2", SrcIP: a("10.0.0.1"), SrcPort: 445, DstIP: a("10.0.0.2"), DstPort: 49152, Source: "SMB", Src: src(61)}}
	b.Flows = []event.Flow{{
		TS: t0, End: t0.Add(59 * time.Second), SrcIP: a("192.0.2.44"), SrcPort: 53, DstIP: a("10.20.0.40"), DstPort: 61000, Proto: "udp",
		TCPFlags: 0, Packets: 30000, Bytes: 43500000, Sampling: 100, Exporter: a("10.20.0.1"), Export: event.ExportIPFIX, Src: src(70),
	}, {TS: t0, SrcIP: a("2001:db8::5"), DstIP: a("2001:db8::6"), Proto: "47", Packets: 1, Bytes: 60, Export: event.ExportNetFlow9, Src: src(71)}}
	b.Host = []event.HostEvent{{
		TS: t0, Channel: "Security", Provider: "Microsoft-Windows-Security-Auditing", EventID: 4624, Computer: "dc1.ministry.example",
		RecordID: 1 << 40, Level: 0, Task: 12544, Opcode: 0, Keywords: 0x8020000000000000, UserID: "S-1-5-18", ProcessID: 612, ThreadID: 4120,
		Fields: []event.Field{{Name: "TargetUserName", Value: "jdupont"}, {Name: "LogonType", Value: "10"}, {Name: "IpAddress", Value: "10.1.2.3"},
			{Name: "AuthenticationPackageName", Value: "NTLM"}, {Name: "Data", Value: "a\tb \"quoted\" O'Brien \\ \u00e9"}, {Name: "Data", Value: ""}},
		Src: src(4608),
	}, {TS: t0.Add(time.Millisecond), Channel: "Microsoft-Windows-Sysmon/Operational", EventID: 1, Computer: "ws042", Carved: true,
		Fields: []event.Field{{Name: "Image", Value: `C:\Windows\System32\cmd.exe`}, {Name: "ParentImage", Value: `c:\windows\system32\inetsrv\w3wp.exe`}},
		Src:    src(4609)}}
	b.Alerts = []event.Alert{{
		TS: t0, FlowID: "1234567890123456", SrcIP: a("10.55.100.105"), SrcPort: 49801, DstIP: a("205.204.101.182"), DstPort: 80, Proto: "tcp",
		AppProto: "http", Action: "allowed", SignatureID: event.Some(uint64(2024897)), Rev: event.Some(uint64(3)),
		Signature: "ET USER_AGENTS Go HTTP Client User-Agent", Category: "A Network Trojan was detected", Severity: event.Some(uint64(1)),
		Attack: []string{"T1071.001", "T1105"}, CommunityID: "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", Src: src(90),
	}, {TS: t0.Add(time.Second), SrcIP: a("2001:db8::5"), DstIP: a("2001:db8::6"), Proto: "icmp", Signature: "GPL ICMP PING", Src: src(91)}}
	b.Quarantine = []event.Quarantined{{
		Kind: event.KindConn, TS: time.Unix(1, 0).UTC(), Claimed: "1970-01-01T00:00:01Z", Reason: "before ingest.earliest (1995-01-01)",
		Record: `{"TS":"1970-01-01T00:00:01Z","UID":"Cq"}`, Src: src(80),
	}, {Kind: event.KindFlow, Claimed: "292278994-08-17T07:12:55.807Z", Reason: "in the future", Record: `{"Proto":"tcp"}`, Src: src(81)}}
	return b
}

func testRoundTrip(t *testing.T, s store.Store) {
	defer closeStore(t, s)
	ctx := context.Background()
	b := Sample()
	if err := s.Write(ctx, b); err != nil {
		t.Fatalf("Write: %v", err)
	}
	sc := store.NewSchema()
	checkTable(t, s, sc.Conn, b.Conns)
	checkTable(t, s, sc.OpenConn, b.OpenConns)
	checkTable(t, s, sc.DNS, b.DNS)
	checkTable(t, s, sc.HTTP, b.HTTP)
	checkTable(t, s, sc.TLS, b.TLS)
	checkTable(t, s, sc.X509, b.X509)
	checkTable(t, s, sc.Files, b.Files)
	checkTable(t, s, sc.Flow, b.Flows)
	checkTable(t, s, sc.Winlog, b.Host)
	checkTable(t, s, sc.Alert, b.Alerts)
	checkTable(t, s, sc.Quarantine, b.Quarantine)
}

// checkTable reads a table back with SQL and compares every column with
// what the schema's getters say was written.
func checkTable[R any](t *testing.T, s store.Store, tbl *store.Table[R], want []R) {
	t.Helper()
	ctx := context.Background()
	if tbl.Kind != 0 { // the quarantine holds no kind of its own
		n, err := s.Count(ctx, tbl.Kind)
		if err != nil || n != int64(len(want)) {
			t.Errorf("Count(%s) = %d, %v; want %d", tbl.Name(), n, err, len(want))
		}
	}
	var names []string
	for _, c := range tbl.Columns {
		names = append(names, `"`+c.Name+`"`)
	}
	rows, err := s.Query(ctx, fmt.Sprintf("SELECT %s FROM %s ORDER BY source_line", strings.Join(names, ", "), tbl.Name()))
	if err != nil {
		t.Fatalf("querying %s: %v", tbl.Name(), err)
	}
	defer func() { _ = rows.Close() }()
	i := 0
	for rows.Next() {
		if i >= len(want) {
			t.Fatalf("%s: more rows than written", tbl.Name())
		}
		for ci, c := range tbl.Columns {
			got := Normalize(rows.Values()[ci])
			exp := Expected(&c, &want[i])
			if !reflect.DeepEqual(got, exp) {
				t.Errorf("%s row %d column %s = %#v, want %#v", tbl.Name(), i, c.Name, got, exp)
			}
		}
		i++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if i != len(want) {
		t.Errorf("%s: read %d rows, wrote %d", tbl.Name(), i, len(want))
	}
}

// Expected returns the normalised value a backend must return for column c
// of record r.
func Expected[R any](c *store.Column[R], r *R) any {
	switch c.Type {
	case store.TypeTime:
		if v, ok := c.Time(r); ok {
			return v.UTC().Format(time.RFC3339Nano)
		}
	case store.TypeString:
		if v := c.String(r); v != "" {
			return v
		}
	case store.TypeAddr:
		if v := c.Addr(r); v.IsValid() {
			return v.String()
		}
	case store.TypePort:
		if v, ok := c.Port(r); ok {
			return float64(v)
		}
	case store.TypeCount:
		if v := c.Count(r); v.Valid {
			return float64(v.V)
		}
	case store.TypeInterval:
		if v := c.Interval(r); v.Valid {
			return math.Round(v.V.Seconds()*1e6) / 1e6
		}
	case store.TypeBool:
		if v := c.Bool(r); v.Valid {
			return v.V
		}
	case store.TypeStrings:
		if v := c.Strings(r); len(v) > 0 {
			out := make([]any, len(v))
			for i := range v {
				out[i] = v[i]
			}
			return out
		}
	case store.TypeIntervals:
		if v := c.Intervals(r); len(v) > 0 {
			out := make([]any, len(v))
			for i := range v {
				out[i] = math.Round(v[i].Seconds()*1e6) / 1e6
			}
			return out
		}
	}
	return nil
}

// Normalize maps a value returned by a backend to a comparable form: times
// as RFC 3339 UTC strings, numbers as float64 (rounded to microseconds),
// lists as []any.
func Normalize(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case float64:
		return math.Round(x*1e6) / 1e6
	case float32:
		return math.Round(float64(x)*1e6) / 1e6
	case int64, int32, int16, int8, int, uint64, uint32, uint16, uint8, uint:
		return reflect.ValueOf(x).Convert(reflect.TypeOf(float64(0))).Float()
	case *big.Int:
		f, _ := new(big.Float).SetInt(x).Float64()
		return f
	case []byte:
		return string(x)
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = Normalize(x[i])
		}
		return out
	}
	return v
}

func testLedger(t *testing.T, s store.Store) {
	defer closeStore(t, s)
	ctx := context.Background()
	p := event.Progress{ID: "aa", HeadLen: 100, Path: "/logs/current/conn.log", Sensor: "s", Format: "zeek-tsv",
		Header: "#separator \\x09\n#fields\tts", Offset: 1000, Line: 12, Check: "cc", Size: 1000, Rows: 10, Bad: 1,
		Updated: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	b := &event.Batch{Progress: []event.Progress{p}}
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, err := s.Inputs(ctx, "aa", "")
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], p) {
		t.Fatalf("Inputs(id) = %+v, %v; want %+v", got, err, p)
	}
	got, err = s.Inputs(ctx, "zz", "/logs/current/conn.log")
	if err != nil || len(got) != 1 || got[0].ID != "aa" {
		t.Fatalf("Inputs(path) = %+v, %v", got, err)
	}
	// The same input read further: updated in place.
	p.Offset, p.Line, p.Rows, p.Complete = 2000, 25, 22, true
	if err := s.Write(ctx, &event.Batch{Progress: []event.Progress{p}}); err != nil {
		t.Fatal(err)
	}
	got, err = s.Inputs(ctx, "aa", "")
	if err != nil || len(got) != 1 || got[0].Offset != 2000 || !got[0].Complete || got[0].Rows != 22 {
		t.Fatalf("after update Inputs = %+v, %v", got, err)
	}
	// A short file grown past its head gets a new ID that replaces the old.
	p2 := p
	p2.ID, p2.Replaces, p2.HeadLen = "bb", "aa", 4096
	if err := s.Write(ctx, &event.Batch{Progress: []event.Progress{p2}}); err != nil {
		t.Fatal(err)
	}
	all, err := s.Ledger(ctx)
	if err != nil || len(all) != 1 || all[0].ID != "bb" {
		t.Fatalf("Ledger after replace = %+v, %v", all, err)
	}
	// A path and a header that are not UTF-8 (file names and logs are
	// bytes) come back exactly, and the path finds its entry.
	p3 := event.Progress{ID: "cc", HeadLen: 10, Path: "/logs/\xff\xfe/conn.log", Sensor: "s\x82", Format: "zeek-tsv",
		Header: "#separator \x82\n#fields\tts", Offset: 10, Line: 1, Check: "dd", Size: 10, Rows: 1,
		Updated: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := s.Write(ctx, &event.Batch{Progress: []event.Progress{p3}}); err != nil {
		t.Fatal(err)
	}
	got, err = s.Inputs(ctx, "zz", p3.Path)
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], p3) {
		t.Fatalf("Inputs(path not UTF-8) = %+v, %v; want %+v", got, err, p3)
	}
}

func testReadOnly(t *testing.T, s store.Store) {
	defer closeStore(t, s)
	ctx := context.Background()
	if err := s.Write(ctx, Sample()); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"DELETE FROM conn",
		"delete from conn where true",
		"INSERT INTO conn (uid) VALUES ('x')",
		"UPDATE conn SET uid = 'x'",
		"DROP TABLE conn",
		"CREATE TABLE x (a INTEGER)",
		"ALTER TABLE conn ADD COLUMN x INTEGER",
		"TRUNCATE conn",
		"SELECT 1; DELETE FROM conn",
	} {
		rows, err := s.Query(ctx, q)
		if err == nil {
			_ = rows.Close()
			t.Errorf("Query(%q) was accepted", q)
			continue
		}
		if !errors.Is(err, store.ErrReadOnly) {
			t.Errorf("Query(%q) error %v does not wrap ErrReadOnly", q, err)
		}
	}
	n, err := s.Count(ctx, event.KindConn)
	if err != nil || n != 2 {
		t.Fatalf("conn rows after refused writes = %d, %v; want 2", n, err)
	}
	rows, err := s.Query(ctx, "SELECT uid FROM conn ORDER BY uid")
	if err != nil {
		t.Fatal(err)
	}
	var uids []string
	for rows.Next() {
		uids = append(uids, fmt.Sprint(rows.Values()[0]))
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(uids, []string{"CYl7H53iN6mY9NyXJ8", "Cunset"}) {
		t.Errorf("uids = %v", uids)
	}
}

// testManyRows writes more rows than one vector or block holds, over
// several batches, and checks counts and order.
func testManyRows(t *testing.T, s store.Store) {
	defer closeStore(t, s)
	ctx := context.Background()
	const per, batches = 5000, 3
	for bi := range batches {
		b := &event.Batch{}
		for i := range per {
			line := int64(bi*per + i + 1)
			b.Conns = append(b.Conns, event.Conn{
				TS: t0.Add(time.Duration(line) * time.Second), UID: fmt.Sprintf("C%d", line),
				SrcIP: netip.AddrFrom4([4]byte{10, 0, byte(line >> 8 & 0xff), byte(line & 0xff)}), DstIP: netip.MustParseAddr("192.0.2.1"),
				DstPort: 443, Proto: "tcp", SrcBytes: event.Some(uint64(line)),
				Src: event.Source{Sensor: "s", File: "f", Line: line},
			})
		}
		b.Progress = []event.Progress{{ID: "many", HeadLen: 4096, Path: "f", Offset: int64(bi + 1), Line: int64((bi + 1) * per), Rows: int64((bi + 1) * per)}}
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.Count(ctx, event.KindConn)
	if err != nil || n != per*batches {
		t.Fatalf("Count = %d, %v; want %d", n, err, per*batches)
	}
	rows, err := s.Query(ctx, "SELECT sum(orig_bytes), min(source_line), max(source_line), count(DISTINCT uid) FROM conn")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	if !rows.Next() {
		t.Fatal("no row")
	}
	got := fmt.Sprint(Normalize(rows.Values()[0]), Normalize(rows.Values()[1]), Normalize(rows.Values()[2]), Normalize(rows.Values()[3]))
	const total = per * batches
	if want := fmt.Sprint(float64(total*(total+1)/2), float64(1), float64(total), float64(total)); got != want {
		t.Errorf("aggregates = %s, want %s", got, want)
	}
	l, err := s.Ledger(ctx)
	if err != nil || len(l) != 1 || l[0].Rows != total {
		t.Errorf("Ledger = %+v, %v", l, err)
	}
}

// testNotUTF8 writes records, indicators and state whose text is not
// UTF-8, as a writer other than ingest (which escapes it) might: the store
// keeps them escaped \xNN, and never fails or crashes binding them.
func testNotUTF8(t *testing.T, s store.Store) {
	defer closeStore(t, s)
	ctx := context.Background()
	a := netip.MustParseAddr
	t0 := time.Date(2024, 4, 19, 0, 0, 0, 0, time.UTC)
	// Two records: a column whose rows differ is copied row by row, one
	// with the same value in every row may be bound once (DuckDB).
	src := event.Source{Sensor: "s\xfc", File: "/logs/\xfb.log", Line: 1}
	b := &event.Batch{DNS: []event.DNS{
		{TS: t0, UID: "C\xff", SrcIP: a("10.0.0.1"), DstIP: a("10.0.0.53"), Query: "x\xfe.example", QTypeName: "A\xf0", Answers: []string{"a\xfd"}, Src: src},
		{TS: t0, UID: "D\xff", SrcIP: a("10.0.0.1"), DstIP: a("10.0.0.53"), Query: "y\xfe.example", QTypeName: "A\xf0", Answers: []string{"b\xfd"}, Src: src},
	}}
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	rows, err := s.Query(ctx, "SELECT uid, query, qtype_name, answers[1], sensor, source_file FROM dns ORDER BY uid")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		for _, v := range rows.Values() {
			got = append(got, fmt.Sprint(v))
		}
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if want := []string{`C\xff`, `x\xfe.example`, `A\xf0`, `a\xfd`, `s\xfc`, `/logs/\xfb.log`,
		`D\xff`, `y\xfe.example`, `A\xf0`, `b\xfd`, `s\xfc`, `/logs/\xfb.log`}; !reflect.DeepEqual(got, want) {
		t.Errorf("stored %q, want %q", got, want)
	}
	if _, _, err := s.PutIndicators(ctx, []event.Indicator{{Source: "f\xff", Type: event.IOCUserAgent, Value: "ua\xfe", Confidence: -1}}); err != nil {
		t.Errorf("PutIndicators: %v", err)
	}
	if err := s.SetState(ctx, "taxii:https://x/\xff", "cursor\xfe"); err != nil {
		t.Errorf("SetState: %v", err)
	}
	if v, err := s.State(ctx, "taxii:https://x/\xff"); err != nil || v != `cursor\xfe` {
		t.Errorf("State = %q, %v", v, err)
	}
}

// testDeleteSensor stores two sensors' records and progress, deletes one
// sensor: its records, quarantined records, summary rows and progress go,
// the other's stay, and its sightings are no more.
func testDeleteSensor(t *testing.T, s store.Store) {
	defer closeStore(t, s)
	ctx := context.Background()
	a := Sample() // sensor brussels, with progress below
	a.Progress = []event.Progress{{ID: "b1", HeadLen: 10, Path: "/b/conn.log", Sensor: "brussels", Format: "zeek-tsv", Offset: 10, Line: 1,
		Updated: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}}
	other := Sample()
	retag := func(src *event.Source) { src.Sensor = "antwerp" }
	for i := range other.Conns {
		retag(&other.Conns[i].Src)
	}
	other.OpenConns, other.DNS, other.HTTP, other.TLS, other.X509, other.Files, other.Flows, other.Host, other.Quarantine = nil, nil, nil, nil, nil, nil, nil, nil, nil
	other.Alerts = nil
	other.Progress = []event.Progress{{ID: "a1", HeadLen: 10, Path: "/a/conn.log", Sensor: "antwerp", Format: "zeek-tsv", Offset: 10, Line: 1,
		Updated: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}}
	for _, b := range []*event.Batch{a, other} {
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeleteSensor(ctx, "brussels")
	if err != nil || n != int64(Sample().Len()) {
		t.Fatalf("DeleteSensor = %d, %v; want %d", n, err, Sample().Len())
	}
	if c, err := s.Count(ctx, event.KindConn); err != nil || c != int64(len(other.Conns)) {
		t.Errorf("conn left: %d, %v; want %d", c, err, len(other.Conns))
	}
	if c, err := s.Count(ctx, event.KindDNS); err != nil || c != 0 {
		t.Errorf("dns left: %d, %v", c, err)
	}
	ledger, err := s.Ledger(ctx)
	if err != nil || len(ledger) != 1 || ledger[0].Sensor != "antwerp" {
		t.Errorf("ledger %+v, %v", ledger, err)
	}
	if q, err := s.Query(ctx, "SELECT count(*) AS n FROM quarantine"); err == nil {
		for q.Next() {
			if fmt.Sprint(q.Values()[0]) != "0" {
				t.Errorf("quarantine left: %v", q.Values()[0])
			}
		}
		_ = q.Close()
	}
	if _, _, err := s.PutIndicators(ctx, []event.Indicator{{Source: "t", Type: event.IOCIP, Value: a.Conns[0].DstIP.String(), Confidence: -1, Actionable: true}}); err != nil {
		t.Fatal(err)
	}
	if err := s.MatchIndicators(ctx, store.Window{}, func(x *event.Sighting) error {
		if x.Sensor == "brussels" {
			t.Errorf("a deleted sensor is sighted: %+v", x)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
