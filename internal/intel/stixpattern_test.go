package intel

import (
	"strings"
	"testing"

	"github.com/dwell-nsm/dwell/internal/event"
)

// TestParsePattern runs the grammar over the STIX 2.1 specification's
// pattern examples (part 9.7) and broken ones.
func TestParsePattern(t *testing.T) {
	good := []string{
		`[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']`,
		`[email-message:from_ref.value MATCHES '.+\\@example\\.com$' AND email-message:body_multipart[*].body_raw_ref.name MATCHES '^Final Report.+\\.exe$']`,
		`[file:hashes.'SHA-256' = 'aec07064' AND file:mime_type = 'application/x-pdf']`,
		`[file:hashes.'SHA-256' = 'bf07a7fbb825fc0aae7bf4a1177b2b31fcf8a3feeaf7092761e18c859ee52a9c' OR file:hashes.MD5 = 'cead3f77f6cda6ec00f57d76c9a6879f'] AND [file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']`,
		`[file:hashes.MD5 = '79054025255fb1a26e4bc422aef54eb4'] FOLLOWEDBY [windows-registry-key:key = 'HKEY_LOCAL_MACHINE\\foo\\bar'] WITHIN 300 SECONDS`,
		`[user-account:account_type = 'unix' AND user-account:user_id = '1007' AND user-account:account_login = 'Peter'] AND ([user-account:account_type = 'unix' AND user-account:user_id = '1008' AND user-account:account_login = 'Paul'] OR [user-account:account_type = 'unix' AND user-account:user_id = '1009' AND user-account:account_login = 'Mary'])`,
		`[artifact:mime_type = 'application/vnd.tcpdump.pcap' AND artifact:payload_bin MATCHES '\\xd4\\xc3\\xb2\\xa1\\x02\\x00\\x04\\x00']`,
		`[file:name = 'foo.dll' AND file:parent_directory_ref.path = 'C:\\Windows\\System32']`,
		`[file:extensions.'windows-pebinary-ext'.sections[*].entropy > 7.0]`,
		`[file:mime_type = 'image/bmp' AND file:magic_number_hex = h'ffd8']`,
		`[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '203.0.113.33/32']`,
		`[network-traffic:dst_ref.type = 'domain-name' AND network-traffic:dst_ref.value = 'example.com'] REPEATS 5 TIMES WITHIN 180 SECONDS`,
		`[domain-name:value = 'www.5z8.info' AND domain-name:resolves_to_refs[*].value = '198.51.100.1/32']`,
		`[url:value = 'http://example.com/foo' OR url:value = 'http://example.com/bar']`,
		`[x509-certificate:issuer = 'CN=WEBMAIL' AND x509-certificate:serial_number = '4c:0b:1d:19:74:86:a7:66:b4:1a:bf:40:27:21:76:28']`,
		`[windows-registry-key:key = 'HKEY_CURRENT_USER\\Software\\CryptoLocker\\Files' OR windows-registry-key:key = 'HKEY_CURRENT_USER\\Software\\Microsoft\\CurrentVersion\\Run\\CryptoLocker_0388']`,
		`[(file:name = 'pdf.exe' OR file:size = '371712') AND file:created = t'2014-01-13T07:03:17Z']`,
		`[email-message:sender_ref.value = 'jdoe@example.com' AND email-message:subject = 'Conference Info']`,
		`[x-usb-device:usbdrive.serial_number = '575833314133343231313937']`,
		`[process:command_line MATCHES '^.+>-add GlobalSign.cer -c -s -r localMachine Root$'] FOLLOWEDBY [process:command_line MATCHES '^.+>-add GlobalSign.cer -c -s -r localMachineTrustedPublisher$'] WITHIN 300 SECONDS`,
		`[network-traffic:dst_ref.value ISSUBSET '2001:0db8:dead:beef:0000:0000:0000:0000/64']`,
		`([file:name = 'foo.dll'] AND [win-registry-key:key = 'HKEY_LOCAL_MACHINE\\foo\\bar']) OR [process:name = 'fooproc' OR process:name = 'procfoo']`,
		`[file:hashes.MD5 = 'cead3f77f6cda6ec00f57d76c9a6879f'] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'`,
		`[ipv4-addr:value NOT IN ('10.0.0.1', '10.0.0.2')]`,
		`[file:size >= 1024 AND file:size < -5 AND file:x_flag = true AND file:payload_bin = b'aGVsbG8=']`,
		`[ EXISTS file:hashes.MD5 ]`,
	}
	for _, p := range good {
		if _, err := ParsePattern(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	bad := []string{
		``, `[`, `[]`, `[file:name]`, `[file:name = ]`, `[file:name = 'x'`, `file:name = 'x'`, `[file:name = 'x'] AND`,
		`[file:name = 'x\z']`, `[file:name LIKE 5]`, `[file:name = 'x'] WITHIN SECONDS`, `[file:name = t'yesterday']`,
		`[file:name = 'x'] START t'2016-06-01T00:00:00Z'`, `[:name = 'x']`, `[file:name = 'x'] ]`, `[file:name ! 'x']`,
		`[file:name IN ('a' 'b')]`, strings.Repeat("(", 500) + `[a:b = 'c']` + strings.Repeat(")", 500),
	}
	for _, p := range bad {
		if _, err := ParsePattern(p); err == nil {
			t.Errorf("%q accepted", p)
		}
	}
}

func TestAtoms(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		want    []Atom
		reason  string
	}{
		{`[ipv4-addr:value = '198.51.100.1' OR ipv4-addr:value = '198.51.100.2']`, []Atom{{event.IOCIP, "198.51.100.1", 0}, {event.IOCIP, "198.51.100.2", 0}}, ""},
		{`[ipv4-addr:value = '198.51.100.0/24']`, []Atom{{event.IOCCIDR, "198.51.100.0/24", 0}}, ""},
		{`[network-traffic:dst_ref.value ISSUBSET '2001:db8::/32']`, []Atom{{event.IOCCIDR, "2001:db8::/32", 0}}, ""},
		{`[domain-name:value IN ('a.example', 'b.example')]`, []Atom{{event.IOCDomain, "a.example", 0}, {event.IOCDomain, "b.example", 0}}, ""},
		{`[domain-name:value LIKE '%.t.example.org']`, []Atom{{event.IOCDomain, "t.example.org", 0}}, ""},
		{`[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '203.0.113.45' AND network-traffic:dst_port = 8443]`,
			[]Atom{{event.IOCIP, "203.0.113.45", 8443}}, ""},
		{`[file:hashes.'SHA-256' = 'ab' AND file:name = 'x.aspx']`, []Atom{{event.IOCSHA256, "ab", 0}}, ""},
		{`[x509-certificate:hashes.'SHA-1' = 'ab']`, []Atom{{event.IOCCertSHA1, "ab", 0}}, ""},
		{`[url:value = 'http://a.example/x'] OR [domain-name:value = 'b.example']`, []Atom{{event.IOCURL, "http://a.example/x", 0}, {event.IOCDomain, "b.example", 0}}, ""},
		{`[ipv4-addr:value = '1.2.3.4'] AND [domain-name:value = 'b.example']`, nil, "observations joined by AND"},
		{`[ipv4-addr:value = '1.2.3.4'] WITHIN 5 SECONDS`, nil, "qualifier WITHIN 5 SECONDS"},
		{`[ipv4-addr:value != '1.2.3.4']`, nil, "!= on ipv4-addr:value"},
		{`[ipv4-addr:value NOT IN ('1.2.3.4')]`, nil, "NOT IN"},
		{`[domain-name:value LIKE 'a%b']`, nil, "LIKE 'a%b'"},
		{`[ipv4-addr:value = '1.2.3.4' AND domain-name:value = 'x.example']`, nil, "one value at a time"},
		{`[process:name = 'x']`, nil, "process:name is not a property dwell sees"},
		{`[domain-name:value = 5]`, nil, "compared with a int"},
	} {
		tree, err := ParsePattern(tc.pattern)
		if err != nil {
			t.Fatalf("%s: %v", tc.pattern, err)
		}
		got, err := Atoms(tree)
		if tc.reason != "" {
			if err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("%s: %v, %v; want an error with %q", tc.pattern, got, err, tc.reason)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("%s: %v, %v; want %v", tc.pattern, got, err, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: atom %d = %v, want %v", tc.pattern, i, got[i], tc.want[i])
			}
		}
	}
}
