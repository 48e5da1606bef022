package longconn

import (
	"testing"
	"time"

	dt "github.com/dwell-nsm/dwell/internal/detect/detecttest"
)

func TestLongAndOpen(t *testing.T) {
	dt.Run(t, "long_and_open", func(g *dt.Gen) {
		hosts := dt.Hosts(40)
		// A tunnel kept up for ten hours by one host.
		g.Conn(dt.Conn{TS: dt.Start.Add(9 * time.Hour), Src: "10.1.0.10", Dst: "198.51.100.66", DstPort: 443, Service: "ssl",
			Duration: 10 * time.Hour, SrcBytes: 900_000, DstBytes: 2_000_000})
		// A reverse shell still open at the end, seen only in open_conn reports.
		uid := "Copen000001"
		for h := 2; h <= 20; h += 2 {
			g.OpenConn(uid, dt.Conn{TS: dt.Start.Add(time.Hour), Src: "10.1.0.11", SrcPort: 50123, Dst: "203.0.113.5", DstPort: 22, Proto: "tcp",
				Service: "ssh", Duration: time.Duration(h) * time.Hour, SrcBytes: int64(h) * 1000, DstBytes: int64(h) * 5000})
		}
		// Every host keeps a two-hour session to the collaboration service: common, not suspicious.
		for d := range 5 {
			for _, h := range hosts {
				g.Conn(dt.Conn{TS: dt.Start.AddDate(0, 0, d).Add(9 * time.Hour), Src: h, Dst: "52.112.0.10", DstPort: 443, Service: "ssl",
					Duration: 2 * time.Hour, SrcBytes: 50_000, DstBytes: 400_000})
				g.Conn(dt.Conn{TS: dt.Start.AddDate(0, 0, d).Add(10 * time.Hour), Src: h, Dst: "93.184.216.34", DstPort: 443, Service: "ssl",
					Duration: 30 * time.Second, SrcBytes: 900, DstBytes: 40_000})
			}
		}
	}, New(dt.Env(), Config{}))
}

// TestShortOverlapNoise: a 25-minute session moving 8 MB to an address
// the host never resolved is reported below RITA's hour, the same to a
// name it resolved is not; two connections side by side cover a day
// once; multicast announcements are never long connections; a connection
// seen from its middle, oriented from outside to an ephemeral port, is
// reported from the inside host.
func TestShortOverlapNoise(t *testing.T) {
	fs := dt.Run(t, "short_overlap_noise", func(g *dt.Gen) {
		hosts := dt.Hosts(40)
		for d := range 3 {
			day := dt.Start.AddDate(0, 0, d)
			for _, h := range hosts {
				g.DNS(dt.DNS{TS: day.Add(8 * time.Hour), Src: h, Query: "www.example.org", Answers: []string{"93.184.216.34"}})
				g.Conn(dt.Conn{TS: day.Add(8 * time.Hour), Src: h, Dst: "93.184.216.34", DstPort: 443, Duration: time.Minute, SrcBytes: 900, DstBytes: 40_000})
			}
			// Two sessions side by side, 20 hours each.
			for range 2 {
				g.Conn(dt.Conn{TS: day.Add(2 * time.Hour), Src: "10.1.0.12", Dst: "198.51.100.70", DstPort: 443, Duration: 20 * time.Hour,
					SrcBytes: 50_000, DstBytes: 90_000})
			}
			g.Conn(dt.Conn{TS: day.Add(time.Hour), Src: "10.1.0.14", Dst: "239.255.255.250", DstPort: 1900, Proto: "udp", Duration: 20 * time.Hour,
				SrcBytes: 3_000_000, State: "S0"})
		}
		g.DNS(dt.DNS{TS: dt.Start.Add(9 * time.Hour), Src: "10.1.0.13", Query: "files.example.net", Answers: []string{"198.51.100.80"}})
		g.Conn(dt.Conn{TS: dt.Start.Add(10 * time.Hour), Src: "10.1.0.13", Dst: "203.0.113.77", DstPort: 4444, Duration: 25 * time.Minute,
			SrcBytes: 8_000_000, DstBytes: 200_000})
		g.Conn(dt.Conn{TS: dt.Start.Add(11 * time.Hour), Src: "10.1.0.13", Dst: "198.51.100.80", DstPort: 443, Duration: 25 * time.Minute,
			SrcBytes: 8_000_000, DstBytes: 200_000})
		g.Conn(dt.Conn{TS: dt.Start.Add(12 * time.Hour), Src: "198.51.100.99", SrcPort: 4975, Dst: "10.1.0.15", DstPort: 50516, Duration: 8 * time.Hour,
			SrcBytes: 8500, DstBytes: 8000, State: "OTH"})
	}, New(dt.Env(), Config{}))
	for _, f := range fs {
		if f.Src.String() == "10.1.0.12" {
			if c := f.Evidence["covered_seconds_per_day"].(float64); c > 86400 || c < 19*3600 {
				t.Errorf("two sessions side by side cover %v s a day, want 20 hours: %s", c, f.Summary)
			}
		}
	}
}
