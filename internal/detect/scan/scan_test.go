package scan

import (
	"fmt"
	"testing"
	"time"

	dt "github.com/dwell-nsm/dwell/internal/detect/detecttest"
)

// TestScans: nmap's default thousand ports from inside, a sweep of the
// LAN on SMB, an ICMP sweep, and masscan outward are found, outward and
// inward scans of the network kept apart in score; an Internet scanner
// probing a server is a low finding; a single-port check of one host and
// a busy client answered by fifty web servers are not scans.
func TestScans(t *testing.T) {
	dt.Run(t, "scans", func(g *dt.Gen) {
		t0 := dt.Start.Add(10 * time.Hour)
		states := []string{"S0", "REJ", "REJ", "RSTOS0"}
		for p := 1; p <= 1000; p++ {
			g.Conn(dt.Conn{TS: t0.Add(time.Duration(p) * 5 * time.Millisecond), Src: "10.1.0.66", Dst: "10.1.0.20", DstPort: p, State: states[p%4]})
		}
		for h := range 60 {
			g.Conn(dt.Conn{TS: t0.Add(time.Hour + time.Duration(h)*time.Second), Src: "10.1.0.67", Dst: fmt.Sprintf("10.1.2.%d", h+1), DstPort: 445,
				State: states[h%2]})
			g.Conn(dt.Conn{TS: t0.Add(2*time.Hour + time.Duration(h)*100*time.Millisecond), Src: "10.1.0.68", Dst: fmt.Sprintf("10.1.3.%d", h+1),
				DstPort: 0, SrcPort: 8, Proto: "icmp", State: "OTH"})
		}
		for p := range 1001 {
			g.Conn(dt.Conn{TS: t0.Add(3*time.Hour + time.Duration(p)*10*time.Millisecond), Src: "10.1.0.69", Dst: "198.51.100.15", DstPort: p, State: "S0"})
		}
		for i, p := range []int{21, 22, 23, 25, 80, 110, 135, 139, 143, 443, 445, 993, 995, 1433, 1521, 1723, 3306, 3389, 5432, 5900, 6379, 8080, 8443, 9200, 11211} {
			g.Conn(dt.Conn{TS: t0.Add(4*time.Hour + time.Duration(i)*time.Minute), Src: "203.0.113.200", Dst: "10.1.0.25", DstPort: p, State: "REJ"})
		}
		// nmap -p 80 with host discovery: one host, port 80 and 443.
		for _, p := range []int{80, 443, 80} {
			g.Conn(dt.Conn{TS: t0.Add(5 * time.Hour), Src: "10.1.0.70", Dst: "130.211.223.103", DstPort: p, State: "RSTO"})
		}
		for h := range 50 {
			g.Conn(dt.Conn{TS: t0.Add(6*time.Hour + time.Duration(h)*time.Minute), Src: "10.1.0.71", Dst: fmt.Sprintf("198.51.100.%d", 100+h),
				DstPort: 443, SrcBytes: 900, DstBytes: 40_000})
		}
	}, New(dt.Env(), Config{}))
}
