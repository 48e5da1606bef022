package scenario

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// small is a scenario that runs in a second or two.
func small(format string, workers int) Config {
	return Config{Days: 8, Hosts: 60, Rate: 15_000, Seed: 7, Format: format, Workers: workers}
}

func generate(t *testing.T, cfg Config) (string, *Truth) {
	t.Helper()
	dir := t.TempDir()
	truth, err := Generate(t.Context(), cfg, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return dir, truth
}

// TestGenerateReadsBack: the Zeek logs parse with zero bad lines and hold
// exactly the records truth.json counts; the planted exfiltration adds up
// to the bytes truth.json reports.
func TestGenerateReadsBack(t *testing.T) {
	for _, format := range []string{FormatTSV, FormatJSON} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			dir, truth := generate(t, small(format, 0))
			var days []string
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if e.IsDir() && e.Name() != "flows" && e.Name() != "hostlogs" && e.Name() != "intel" {
					days = append(days, filepath.Join(dir, e.Name()))
				}
			}
			if len(days) != 8 {
				t.Fatalf("%d day directories, want 8", len(days))
			}
			b, sum := readBack(t, days...)
			if sum.Bad != 0 {
				t.Fatalf("%d bad lines", sum.Bad)
			}
			for _, f := range sum.Files {
				if f.Status != "ingested" || f.Format != format {
					t.Errorf("%s: %s as %q (%s)", f.Path, f.Status, f.Format, f.Err)
				}
			}
			for log, n := range map[string]int{"conn": len(b.Conns), "dns": len(b.DNS), "http": len(b.HTTP), "ssl": len(b.TLS),
				"x509": len(b.X509), "files": len(b.Files)} {
				if int64(n) != truth.Counts[log] || n == 0 {
					t.Errorf("%s: read %d records, truth.json says %d", log, n, truth.Counts[log])
				}
			}
			sent := map[[2]string]int64{}
			for _, c := range b.Conns {
				sent[[2]string{c.SrcIP.String(), c.DstIP.String()}] += int64(c.SrcBytes.V)
			}
			for _, x := range truth.Campaign.Exfiltration {
				if got := sent[[2]string{x.Src, x.Dst}]; got != x.Bytes || got == 0 {
					t.Errorf("exfiltration %s -> %s: %d bytes in conn.log, truth.json says %d", x.Src, x.Dst, got, x.Bytes)
				}
			}
		})
	}
}

// TestDeterministic: the same seed writes the same bytes whatever the
// number of workers; another seed writes other bytes.
func TestDeterministic(t *testing.T) {
	a, _ := generate(t, small(FormatTSV, 1))
	b, _ := generate(t, small(FormatTSV, 3))
	ha, hb := treeHash(t, a), treeHash(t, b)
	if len(ha) < 100 {
		t.Fatalf("only %d files written", len(ha))
	}
	for name, h := range ha {
		if hb[name] != h {
			t.Errorf("%s differs between runs", name)
		}
	}
	if len(ha) != len(hb) {
		t.Errorf("%d files, then %d", len(ha), len(hb))
	}
	other := small(FormatTSV, 0)
	other.Seed++
	c, _ := generate(t, other)
	hc := treeHash(t, c)
	if hc["truth.json"] == ha["truth.json"] || hc["flows/ddos.pcap"] == ha["flows/ddos.pcap"] {
		t.Error("another seed wrote the same truth or flows")
	}
}

func treeHash(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out[filepath.ToSlash(rel)] = sha256.Sum256(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGenerated checks one generated scenario's truth.json, host logs and
// flow capture.
func TestGenerated(t *testing.T) {
	dir, truth := generate(t, small(FormatTSV, 0))
	t.Run("truth", func(t *testing.T) { checkTruth(t, dir, truth) })
	t.Run("hostlogs", func(t *testing.T) { checkHostLogs(t, dir, truth) })
	t.Run("flows", func(t *testing.T) { checkFlows(t, dir, truth) })
}

// checkTruth checks truth.json against itself and the period.
func checkTruth(t *testing.T, dir string, truth *Truth) {
	data, err := os.ReadFile(filepath.Join(dir, "truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var disk Truth
	if err := json.Unmarshal(data, &disk); err != nil {
		t.Fatal(err)
	}
	if disk.Counts["conn"] != truth.Counts["conn"] || len(disk.Campaign.Techniques) != len(truth.Campaign.Techniques) {
		t.Error("truth.json differs from the truth returned")
	}
	c := truth.Campaign
	if len(c.Hosts) != 4 || len(c.Accounts) == 0 || len(c.ExternalIPs) < 6 || len(c.Domains) < 4 {
		t.Errorf("campaign scope incomplete: %+v", c)
	}
	if !c.FirstEvent.After(truth.Start) || !c.Containment.Before(truth.End) || !c.FirstEvent.Before(c.Containment) {
		t.Errorf("campaign from %s to %s outside %s..%s", c.FirstEvent, c.Containment, truth.Start, truth.End)
	}
	ids := map[string]bool{}
	for _, tq := range c.Techniques {
		ids[tq.ID] = true
		if tq.Events == 0 || tq.To.Before(tq.From) || tq.From.Before(truth.Start) || tq.To.After(truth.End) || len(tq.Hosts) == 0 {
			t.Errorf("technique %s: %d events from %s to %s on %v", tq.ID, tq.Events, tq.From, tq.To, tq.Hosts)
		}
		for _, h := range tq.Hosts {
			if !strings.HasPrefix(h, "10.") {
				t.Errorf("technique %s names %s as an internal host", tq.ID, h)
			}
		}
	}
	for _, id := range []string{"T1505.003", "T1071.001", "T1071.004", "T1021.002", "T1021.006", "T1021.001", "T1048", "T1567.002", "T1543.003", "T1560.001"} {
		if !ids[id] {
			t.Errorf("technique %s not planted", id)
		}
	}
	for _, a := range c.ExternalIPs {
		ip := netip.MustParseAddr(a)
		doc := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24")}
		if !doc[0].Contains(ip) && !doc[1].Contains(ip) && !doc[2].Contains(ip) {
			t.Errorf("attacker address %s is not a documentation address", a)
		}
	}
	for _, d := range c.Domains {
		if !strings.HasSuffix(d, ".example") {
			t.Errorf("attacker domain %s is not under .example", d)
		}
	}
	for _, f := range truth.Files {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f))); err != nil {
			t.Errorf("truth.json lists %s: %v", f, err)
		}
	}
}

// checkHostLogs: one JSON object per line with the system fields, as many
// as truth.json counts, including the campaign's process and service events.
func checkHostLogs(t *testing.T, dir string, truth *Truth) {
	var n int64
	seen := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(dir, "hostlogs", "*.jsonl.gz"))
	if len(files) != 8 {
		t.Fatalf("%d host log files, want 8", len(files))
	}
	for _, f := range files {
		for line := range gzLines(t, f) {
			n++
			var ev map[string]any
			if err := json.Unmarshal(line, &ev); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			for _, k := range []string{"TimeCreated", "EventID", "Channel", "Provider", "Computer", "EventRecordID"} {
				if ev[k] == nil {
					t.Fatalf("%s: event without %s: %s", f, k, line)
				}
			}
			if _, err := time.Parse(time.RFC3339Nano, ev["TimeCreated"].(string)); err != nil {
				t.Fatal(err)
			}
			if img, _ := ev["Image"].(string); img != "" {
				seen[img] = true
			}
			if svc, _ := ev["ServiceName"].(string); svc != "" {
				seen[svc] = true
			}
		}
	}
	if n != truth.Counts["host_events"] {
		t.Errorf("%d host events on disk, truth.json says %d", n, truth.Counts["host_events"])
	}
	for _, want := range []string{mailImplant, "C:\\Windows\\System32\\rar.exe", "WinTelemetrySvc", "C:\\Windows\\System32\\cmd.exe"} {
		if !seen[want] {
			t.Errorf("no host event for %s", want)
		}
	}
}

func gzLines(t *testing.T, path string) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(zr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if !yield(sc.Bytes()) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// checkFlows parses the DDoS capture as a collector would: pcap records
// holding IPv4/UDP datagrams to port 4739, each an IPFIX message with the
// template and a data set. Records and volume must match truth.json, and
// the attack must dominate the traffic of its hours.
func checkFlows(t *testing.T, dir string, truth *Truth) {
	data, err := os.ReadFile(filepath.Join(dir, "flows", "ddos.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	if binary.LittleEndian.Uint32(data) != 0xa1b2c3d4 || binary.LittleEndian.Uint32(data[20:]) != 1 {
		t.Fatal("not a classic Ethernet pcap")
	}
	d := truth.DDoS
	target := netip.MustParseAddr(d.Target)
	var records, attackFlows int64
	var attackPackets, attackBytes, otherBytes uint64
	var seq uint32
	r := bytes.NewReader(data[24:])
	for {
		var hdr [16]byte
		if _, err := io.ReadFull(r, hdr[:]); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkt := make([]byte, binary.LittleEndian.Uint32(hdr[8:]))
		if _, err := io.ReadFull(r, pkt); err != nil {
			t.Fatal(err)
		}
		ip := pkt[14:]
		if ip[9] != 17 || binary.BigEndian.Uint16(ip[22:]) != 4739 || ipChecksum(ip[:20]) != 0 {
			t.Fatal("packet is not a valid IPv4/UDP datagram to 4739")
		}
		msg := ip[28:]
		if binary.BigEndian.Uint16(msg) != 10 || int(binary.BigEndian.Uint16(msg[2:])) != len(msg) {
			t.Fatal("bad IPFIX header")
		}
		if got := binary.BigEndian.Uint32(msg[8:]); got != seq {
			t.Fatalf("sequence %d, want %d", got, seq)
		}
		sets := msg[16:]
		tmplLen := binary.BigEndian.Uint16(sets[2:])
		if binary.BigEndian.Uint16(sets) != 2 || binary.BigEndian.Uint16(sets[4:]) != flowTemplateID {
			t.Fatal("first set is not template 256")
		}
		ds := sets[tmplLen:]
		n := (int(binary.BigEndian.Uint16(ds[2:])) - 4) / flowRecordLen
		for i := range n {
			rec := ds[4+i*flowRecordLen:]
			dst := netip.AddrFrom4([4]byte(rec[4:8]))
			pk, oc := binary.BigEndian.Uint64(rec[15:]), binary.BigEndian.Uint64(rec[23:])
			start := time.UnixMilli(int64(binary.BigEndian.Uint64(rec[31:])))
			if dst == target && !start.Before(d.From) && start.Before(d.To) && (rec[12] == 17 || rec[14] == 0x02) {
				attackFlows++
				attackPackets += pk
				attackBytes += oc
			} else if !start.Before(d.From) && start.Before(d.To) {
				otherBytes += oc
			}
		}
		records += int64(n)
		seq += uint32(n)
	}
	if records != truth.Counts["flows"] || attackFlows != d.Flows || int64(attackPackets) != d.Packets || int64(attackBytes) != d.Bytes {
		t.Errorf("capture holds %d records (%d attack, %d packets, %d bytes); truth.json: %d records, %+v",
			records, attackFlows, attackPackets, attackBytes, truth.Counts["flows"], d)
	}
	if attackBytes < 100*otherBytes {
		t.Errorf("attack %d bytes against %d other bytes in its hours: not dominant", attackBytes, otherBytes)
	}
	if d.Sources < 1000 || d.To.Sub(d.From) != 3*time.Hour {
		t.Errorf("DDoS from %d sources over %s", d.Sources, d.To.Sub(d.From))
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{{Days: 2}, {Hosts: 5}, {Format: "csv"}, {BeaconMin: 2 * time.Hour, BeaconMax: time.Hour}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("defaults refused: %v", err)
	}
}
