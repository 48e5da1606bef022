package detect

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func channel(det string, src, dst string, port int, score float64) Finding {
	t0 := time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)
	return Finding{Detector: det, Sensor: "s", Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Score: score,
		Severity: SeverityOf(score), FirstSeen: t0, LastSeen: t0.Add(time.Hour), Attack: []string{"T1071"},
		Evidence: map[string]any{"port": uint16(port), "proto": "tcp"}, Summary: det + " " + dst + "."}
}

// TestGroupPeers: a host's channels with ten peers on unusual ports,
// from three detectors, are one finding named beacon; its channel on a
// usual port, and another host's few peers, stay as they are.
func TestGroupPeers(t *testing.T) {
	env := &Env{Local: DefaultLocal()}
	var fs []Finding
	for i := range 10 {
		det := []string{"beacon", "deadc2", "c2"}[i%3]
		fs = append(fs, channel(det, "10.0.0.5", fmt.Sprintf("198.51.100.%d", i+1), 6000+i, 0.5+0.04*float64(i)))
	}
	fs = append(fs, channel("beacon", "10.0.0.5", "93.184.216.34", 443, 0.6))
	for i := range 3 {
		fs = append(fs, channel("c2", "10.0.0.6", fmt.Sprintf("203.0.113.%d", i+1), 7000+i, 0.4))
	}
	got := GroupPeers(fs, env)
	if len(got) != 1+1+3 {
		t.Fatalf("%d findings, want 5: %+v", len(got), got)
	}
	g := got[len(got)-1]
	if g.Detector != "beacon" || g.Evidence["peers"] != 10 || g.Evidence["kind"] != "peers" || g.Dst.String() != "198.51.100.10" || g.Score != 0.86 {
		t.Errorf("group %+v", g)
	}
}

// TestMergeChannels: findings of several detectors about one channel are
// one, the best standing; a second service between the same hosts stays
// apart; a finding with no port joins the best cluster; supported
// agreement raises the score a little, unsupported does not.
func TestMergeChannels(t *testing.T) {
	c2 := channel("c2", "10.0.0.5", "203.0.113.9", 4433, 0.7)
	c2.Components = map[string]float64{"support": 0.8}
	long := channel("longconn", "203.0.113.9", "10.0.0.5", 4433, 0.5) // the other way round
	tls := channel("tlsanom", "10.0.0.5", "203.0.113.9", 4433, 0.45)
	bare := channel("httpanom", "10.0.0.5", "203.0.113.9", 0, 0.3) // no port: joins the best cluster
	delete(bare.Evidence, "port")
	ssh := channel("longconn", "10.0.0.5", "203.0.113.9", 22, 0.9)
	other := channel("beacon", "10.0.0.6", "203.0.113.9", 443, 0.8)
	got := MergeChannels([]Finding{c2, long, tls, ssh, other, bare})
	if len(got) != 3 {
		t.Fatalf("%d findings, want 3: %+v", len(got), got)
	}
	var merged, sshMerged *Finding
	for i := range got {
		switch got[i].Detector {
		case "c2":
			merged = &got[i]
		case "longconn":
			sshMerged = &got[i]
		}
	}
	if sshMerged == nil || len(sshMerged.Detectors()) != 2 || sshMerged.Detectors()[1] != "httpanom" {
		t.Errorf("the port-less finding did not join the best cluster: %+v", sshMerged)
	}
	if merged == nil {
		t.Fatalf("no c2 finding in %+v", got)
	}
	if ds := merged.Detectors(); len(ds) != 3 || ds[1] != "longconn" || ds[2] != "tlsanom" {
		t.Errorf("merged detectors %v", ds)
	}
	if merged.Score <= 0.7 || merged.Score > 0.77 {
		t.Errorf("merged score %.3f, want a little above 0.7", merged.Score)
	}
	// Without support, no raise.
	c2.Components = map[string]float64{"support": 0}
	for _, f := range MergeChannels([]Finding{c2, long}) {
		if f.Detector == "c2" && f.Score != 0.7 {
			t.Errorf("unsupported agreement raised the score to %.3f", f.Score)
		}
	}
}

// TestCorroborate checks the cap on unsupported behavioural findings and
// the signals that lift it.
func TestCorroborate(t *testing.T) {
	peers := &Peers{peers: map[netip.Addr]*Peer{}, dnsSeen: true, names: &Names{queried: map[netip.Addr]bool{netip.MustParseAddr("10.0.0.5"): true}}}
	named := peers.get(netip.MustParseAddr("93.184.216.34"))
	named.Resolved, named.Names, named.TLSValid = time.Now(), []string{"www.example.org"}, true
	for _, tc := range []struct {
		dst     string
		port    uint16
		signals int
	}{
		{"93.184.216.34", 443, 0},  // named, usual port, valid certificate
		{"203.0.113.9", 443, 1},    // never named though the host's DNS is seen
		{"93.184.216.34", 4444, 1}, // an unusual port
		{"203.0.113.9", 8443, 2},   // both, one of them half
	} {
		s := SupportOf(nil, peers, netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr(tc.dst), tc.port, "tcp")
		if len(s.Signals) != tc.signals {
			t.Errorf("%s:%d: signals %v, want %d", tc.dst, tc.port, s.Signals, tc.signals)
		}
		if supported := s.Strength() >= supportFloor; supported != (tc.signals > 0) {
			t.Errorf("%s:%d: strength %.2f", tc.dst, tc.port, s.Strength())
		}
	}
	if !peers.Vetted(netip.MustParseAddr("93.184.216.34")) || peers.Vetted(netip.MustParseAddr("203.0.113.9")) {
		t.Error("vetted")
	}
}
