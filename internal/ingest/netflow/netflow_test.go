package netflow

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
	"github.com/dwell-nsm/dwell/internal/ingest/capture"
	"github.com/dwell-nsm/dwell/internal/ingest/capture/capturetest"
	"github.com/dwell-nsm/dwell/internal/scenario"
	"github.com/dwell-nsm/dwell/internal/scenario/scenariotest"
)

const datasets = "../../../../shared/datasets"

func dataset(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(datasets, dir)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("dataset %s is not here (%v); skipping", dir, err)
	}
	return p
}

// scenarioCapture writes a small scenario and returns its flow capture.
func scenarioCapture(tb testing.TB) (string, *scenario.Truth) {
	tb.Helper()
	path, _, truth := scenariotest.FlowCapture(tb)
	return path, truth
}

// readAll reads a capture through the format's Source, as ingest does.
func readAll(t *testing.T, path string, data []byte, resume ingest.Position, final bool) ([]event.Flow, ingest.Report, ingest.Position) {
	t.Helper()
	in := &ingest.Input{Path: path, Sensor: "edge", Head: data[:min(len(data), event.HeadSize)], Resume: resume, Final: final}
	if resume.Offset == 0 && !detect(in) {
		t.Fatalf("%s: not detected as %s", path, FormatName)
	}
	src, err := open(bytes.NewReader(data[resume.Offset:]), in)
	if err != nil {
		t.Fatal(err)
	}
	var b event.Batch
	for {
		err := src.Next(context.Background(), &b, 1000)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return b.Flows, src.Report(), src.Position()
}

// TestAkvoradoFixtures decodes real exporters' datagrams (NetFlow v5, v9
// and IPFIX, with options and sampling), each template capture before its
// data, with one decoder as a collector would.
func TestAkvoradoFixtures(t *testing.T) {
	dir := dataset(t, "netflow-ipfix-sflow-akvorado/netflow")
	files, err := filepath.Glob(filepath.Join(dir, "*.pcap"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no captures in %s: %v", dir, err)
	}
	// Each template capture just before its data: two fixtures reuse one
	// exporter, domain and template id for different templates.
	key := func(f string) string {
		b := strings.TrimSuffix(filepath.Base(f), ".pcap")
		switch b {
		case "template":
			return "data 0"
		case "data":
			return "data 1"
		}
		for _, s := range []string{"-templates", "-template"} {
			if p, ok := strings.CutSuffix(b, s); ok {
				return p + " 0"
			}
		}
		return strings.TrimSuffix(b, "-data") + " 1"
	}
	sort.Slice(files, func(i, j int) bool { return key(files[i]) < key(files[j]) })
	d := newDecoder()
	got := map[string][]event.Flow{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		capturetest.Each(t, f, data, func(p capture.Packet) {
			dg, ok := udp(p.Link, p.Data)
			if !ok || !isFlowDatagram(dg.payload) {
				t.Fatalf("%s: a packet that is not a flow message", f)
			}
			out, err := d.decode(dg, nil)
			if err != nil {
				t.Errorf("%s: %v", filepath.Base(f), err)
			}
			got[filepath.Base(f)] = append(got[filepath.Base(f)], out...)
		})
	}
	if d.unknown != 0 {
		t.Errorf("%d data sets without their template", d.unknown)
	}
	for name, want := range map[string]int{"nfv5.pcap": 29, "data+templates.pcap": 21, "data.pcap": 4, "samplingrate-data.pcap": 6,
		"multiplesamplingrates-data.pcap": 12, "ipfixprobe-data.pcap": 4, "nat.pcap": 9, "icmp-data.pcap": 2, "mpls.pcap": 2,
		"physicalinterfaces.pcap": 8} {
		if n := len(got[name]); n != want {
			t.Errorf("%s: %d flows, want %d", name, n, want)
		}
		for _, f := range got[name] {
			if !f.SrcIP.IsValid() || !f.DstIP.IsValid() || f.TS.Year() < 2009 || f.End.Before(f.TS) || f.Proto == "" {
				t.Errorf("%s: implausible flow %+v", name, f)
				break
			}
		}
	}
	first := func(name string) event.Flow {
		if len(got[name]) == 0 {
			t.Fatalf("%s: no flows", name)
		}
		return got[name][0]
	}
	if f := first("nfv5.pcap"); f.Export != event.ExportNetFlow5 || f.SrcIP.String() != "161.202.212.212" || f.DstPort != 11963 || f.Proto != "tcp" || f.TCPFlags != 24 {
		t.Errorf("nfv5 first flow %+v", f)
	}
	if f := first("ipfixprobe-data.pcap"); f.Export != event.ExportIPFIX || f.SrcIP.String() != "10.10.1.4" || f.DstPort != 53 || f.Proto != "udp" ||
		f.End.Sub(f.TS) != 34025*time.Microsecond {
		t.Errorf("ipfixprobe first flow %+v", f)
	}
	// The sampling interval comes from an options record.
	if f := first("samplingrate-data.pcap"); f.Sampling != 2048 {
		t.Errorf("samplingrate-data: sampling %d, want 2048 (from the options data)", f.Sampling)
	}
	// Templates with IPv4 and IPv6 fields: the unused family is zeros.
	for _, f := range got["physicalinterfaces.pcap"] {
		if f.SrcIP.IsUnspecified() {
			t.Errorf("physicalinterfaces: unspecified source %+v", f)
		}
	}
}

// TestScenarioCapture reads the scenario's IPFIX capture of the DDoS
// through the ingest Source and checks it against the ground truth.
func TestScenarioCapture(t *testing.T) {
	path, truth := scenarioCapture(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	flows, rep, pos := readAll(t, path, data, ingest.Position{}, true)
	if int64(len(flows)) != truth.Counts["flows"] || rep.Rows != int64(len(flows)) || rep.Bad != 0 || rep.Truncated {
		t.Fatalf("%d flows (report %+v), truth %d", len(flows), rep, truth.Counts["flows"])
	}
	if pos.Offset != int64(len(data)) {
		t.Errorf("position %d, file %d bytes", pos.Offset, len(data))
	}
	target := netip.MustParseAddr(truth.DDoS.Target)
	var packets, octets int64
	srcs := map[netip.Addr]bool{}
	for _, f := range flows {
		if f.Exporter.String() != "10.20.0.1" || f.Export != event.ExportIPFIX || f.Src.Sensor != "edge" || f.Src.Line < 1 {
			t.Fatalf("flow %+v", f)
		}
		attack := f.DstIP == target && !f.TS.Before(truth.DDoS.From) && f.TS.Before(truth.DDoS.To) &&
			(f.TCPFlags == 0x02 || f.SrcPort == 53 || f.SrcPort == 123)
		if attack {
			packets += int64(f.Packets)
			octets += int64(f.Bytes)
			srcs[f.SrcIP] = true
		}
	}
	if packets != truth.DDoS.Packets || octets != truth.DDoS.Bytes || len(srcs) != truth.DDoS.Sources {
		t.Errorf("attack: %d packets, %d bytes, %d sources; truth %d, %d, %d", packets, octets, len(srcs),
			truth.DDoS.Packets, truth.DDoS.Bytes, truth.DDoS.Sources)
	}

	// Resumed from a checkpoint part-way, with the templates it carries,
	// the rest decodes: nothing lost, nothing twice.
	in := &ingest.Input{Path: path, Head: data[:event.HeadSize], Final: true}
	src, err := open(bytes.NewReader(data), in)
	if err != nil {
		t.Fatal(err)
	}
	var b event.Batch
	if err := src.Next(t.Context(), &b, 5000); err != nil {
		t.Fatal(err)
	}
	mid := src.Position()
	rest, _, _ := readAll(t, path, data, mid, true)
	if len(b.Flows)+len(rest) != len(flows) || rest[len(rest)-1] != flows[len(flows)-1] {
		t.Errorf("resumed at byte %d: %d + %d flows, want %d", mid.Offset, len(b.Flows), len(rest), len(flows))
	}

	// Cut inside a record: the packets before it are kept.
	cut := data[:len(data)-100]
	kept, rep, _ := readAll(t, path, cut, ingest.Position{}, true)
	if !rep.Truncated || len(kept) == 0 || len(kept) >= len(flows) {
		t.Errorf("cut capture: %d flows, report %+v", len(kept), rep)
	}
	_, rep, _ = readAll(t, path, cut, ingest.Position{}, false)
	if rep.Pending == 0 || rep.Truncated {
		t.Errorf("capture still being written: report %+v, want the last record pending", rep)
	}

	// A record header that claims a huge length ends the file with a
	// parse error; what came before is kept.
	bad := bytes.Clone(data)
	recAt := 24 + 16 + int(uint32(bad[24+8])|uint32(bad[24+9])<<8) // file header, first record
	bad[recAt+8], bad[recAt+9], bad[recAt+10], bad[recAt+11] = 0xff, 0xff, 0xff, 0x7f
	kept, rep, _ = readAll(t, path, bad, ingest.Position{}, true)
	if rep.Bad != 1 || len(rep.Errors) != 1 || rep.Errors[0].Line != 2 || len(kept) == 0 || !rep.Truncated {
		t.Errorf("corrupt record: %d flows, report %+v", len(kept), rep)
	}
}

// Captures of traffic itself (not flows) are not this format's: they
// are ingest/pcap's. The flow captures are.
func TestTrafficCaptureNotDetected(t *testing.T) {
	dir := dataset(t, "ddos-stopddos")
	for _, name := range []string{"pkt.TCP.synflood.spoofed.pcap", "amp.UDP.snmp.src161.pcapng", "amp.dns.RRSIG.fragmented.pcap", "amp.UDP.isakmp.pcap"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if detect(&ingest.Input{Head: data[:min(len(data), event.HeadSize)]}) {
			t.Errorf("%s: traffic detected as a flow capture", name)
		}
	}
	path, _ := scenarioCapture(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !detect(&ingest.Input{Head: data[:event.HeadSize]}) {
		t.Errorf("%s: flow capture not detected", path)
	}
}

func TestNotPcap(t *testing.T) {
	for _, head := range []string{"", "#separator \\x09\n", "\x0a\x0d\x0d\x0a pcapng"} {
		if detect(&ingest.Input{Head: []byte(head)}) {
			t.Errorf("detected %q as a pcap", head)
		}
	}
}

// TestAkvoradoSFlow decodes real agents' sFlow v5 datagrams: flow samples
// with raw Ethernet headers (VLAN and QinQ tags, IPv4, IPv6, ICMP) and
// expanded and sampled-IPv4 forms; counts and agents as the dataset's
// README gives them (tshark's reading).
func TestAkvoradoSFlow(t *testing.T) {
	dir := dataset(t, "netflow-ipfix-sflow-akvorado/sflow")
	want := map[string]struct {
		samples int
		agent   string
	}{
		"data-1140.pcap": {5, "172.16.0.3"}, "data-discard-interface.pcap": {1, "172.16.0.3"}, "data-encap-vxlan.pcap": {1, "127.0.0.1"},
		"data-icmpv4.pcap": {1, "127.0.0.1"}, "data-icmpv6.pcap": {1, "127.0.0.1"}, "data-local-interface.pcap": {1, "172.16.0.3"},
		"data-multiple-interfaces.pcap": {1, "172.16.0.3"}, "data-qinq.pcap": {1, "172.17.128.58"},
		"data-sflow-expanded-sample.pcap": {1, "49.49.49.49"}, "data-sflow-ipv4-data.pcap": {1, "49.49.49.49"},
		"data-sflow-raw-ipv4.pcap": {2, "172.19.64.116"},
	}
	for name, w := range want {
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		flows, rep, _ := readAll(t, path, data, ingest.Position{}, true)
		if len(flows) != w.samples || rep.Bad != 0 {
			t.Errorf("%s: %d flows (report %+v), want %d", name, len(flows), rep, w.samples)
			continue
		}
		for _, f := range flows {
			if f.Exporter.String() != w.agent || f.Export != event.ExportSFlow5 || f.Packets != 1 || f.Bytes == 0 ||
				!f.SrcIP.IsValid() || !f.DstIP.IsValid() || f.Sampling == 0 {
				t.Errorf("%s: flow %+v", name, f)
			}
		}
	}
	// Two VLAN tags before IPv4; the sampling rate of the agent.
	data, err := os.ReadFile(filepath.Join(dir, "data-qinq.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	flows, _, _ := readAll(t, "data-qinq.pcap", data, ingest.Position{}, true)
	if f := flows[0]; f.SrcIP.String() != "49.49.49.2" || f.DstPort != 443 || f.Proto != "tcp" || f.Sampling != 4096 {
		t.Errorf("QinQ sample %+v", f)
	}
}

// The scenario's capture rewritten as pcapng, in either byte order, gives
// the same flows, and resumes from a checkpoint.
func TestPcapNG(t *testing.T) {
	path, _ := scenarioCapture(t)
	classic, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, _, _ := readAll(t, path, classic, ingest.Position{}, true)
	for _, order := range []capturetest.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		ng := capturetest.ToPcapNG(t, classic, order)
		got, rep, pos := readAll(t, "ddos.pcapng", ng, ingest.Position{}, true)
		if len(got) != len(want) || rep.Bad != 0 || pos.Offset != int64(len(ng)) {
			t.Fatalf("%v: %d flows (report %+v), classic %d", order, len(got), rep, len(want))
		}
		for i := range got {
			got[i].Src.File = want[i].Src.File
			if got[i] != want[i] {
				t.Fatalf("%v: flow %d\n%+v\nwant %+v", order, i, got[i], want[i])
			}
		}
		src, err := open(bytes.NewReader(ng), &ingest.Input{Path: "ddos.pcapng", Head: ng[:event.HeadSize], Final: true})
		if err != nil {
			t.Fatal(err)
		}
		var b event.Batch
		if err := src.Next(t.Context(), &b, 5000); err != nil {
			t.Fatal(err)
		}
		rest, _, _ := readAll(t, "ddos.pcapng", ng, src.Position(), true)
		if len(b.Flows)+len(rest) != len(want) {
			t.Errorf("%v: resumed: %d + %d flows, want %d", order, len(b.Flows), len(rest), len(want))
		}
	}
}
