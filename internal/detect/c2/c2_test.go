package c2

import (
	"fmt"
	"testing"
	"time"

	dt "github.com/dwell-nsm/dwell/internal/detect/detecttest"
)

// TestChannels: an interactive session of minutes on an unusual port to
// an address the host never resolved, with HTTP to the bare address, is
// found, and so is the download that set it up; a reconnect loop of a
// thousand attempts to one unusual port is found; a mail relay's
// deliveries to many mail servers, a long TLS session to a name the host
// resolved with a certificate that validates, and DNS to a public
// resolver are not channels.
func TestChannels(t *testing.T) {
	dt.Run(t, "channels", func(g *dt.Gen) {
		hosts := dt.Hosts(40)
		t0 := dt.Start.Add(9 * time.Hour)
		for d := range 3 {
			for _, h := range hosts {
				g.DNS(dt.DNS{TS: t0.AddDate(0, 0, d), Src: h, Query: "www.example.org", Answers: []string{"93.184.216.34"}})
				g.Conn(dt.Conn{TS: t0.AddDate(0, 0, d), Src: h, Dst: "93.184.216.34", DstPort: 443, Duration: time.Minute, SrcBytes: 2000, DstBytes: 90_000})
			}
		}
		// The stager, then the interactive channel.
		g.Conn(dt.Conn{TS: t0.Add(time.Hour), Src: "10.1.0.60", Dst: "203.0.113.81", DstPort: 80, Duration: 2 * time.Second, SrcBytes: 300, DstBytes: 350_000})
		g.HTTP(dt.HTTP{TS: t0.Add(time.Hour), Src: "10.1.0.60", Dst: "203.0.113.81", Method: "GET", URI: "/a.ps1", Status: 200})
		for i, dur := range []time.Duration{2 * time.Second, 4 * time.Minute} {
			g.Conn(dt.Conn{TS: t0.Add(time.Hour + time.Minute + time.Duration(i)*3*time.Second), Src: "10.1.0.60", Dst: "203.0.113.80", DstPort: 4433,
				Duration: dur, SrcBytes: 90_000, DstBytes: 1_200_000})
		}
		g.HTTP(dt.HTTP{TS: t0.Add(time.Hour + time.Minute), Src: "10.1.0.60", Dst: "203.0.113.80", DstPort: 4433, Method: "GET", URI: "/x", Status: 200})
		// A reconnect loop.
		for i := range 1000 {
			st := []string{"S0", "SF"}[i%2]
			g.Conn(dt.Conn{TS: t0.Add(2*time.Hour + time.Duration(i)*3*time.Second), Src: "10.1.0.61", Dst: "198.51.100.61", DstPort: 4975, State: st,
				SrcBytes: int64(60 * (i % 2)), DstBytes: int64(120 * (i % 2))})
		}
		// A mail relay delivering to thirty mail servers every day.
		for d := range 3 {
			for m := range 30 {
				g.Conn(dt.Conn{TS: t0.AddDate(0, 0, d).Add(time.Duration(m) * time.Minute), Src: "10.1.0.62", Dst: fmt.Sprintf("192.0.2.%d", m+1),
					DstPort: 25, Duration: 10 * time.Second, SrcBytes: 300_000, DstBytes: 2000})
			}
		}
		// A long TLS session to a name it resolved, certificate valid.
		g.DNS(dt.DNS{TS: t0, Src: "10.1.0.63", Query: "sync.example.net", Answers: []string{"198.51.100.63"}})
		for d := range 3 {
			g.Conn(dt.Conn{TS: t0.AddDate(0, 0, d), Src: "10.1.0.63", Dst: "198.51.100.63", DstPort: 443, Duration: 8 * time.Hour, SrcBytes: 2_000_000, DstBytes: 9_000_000})
			g.TLS(dt.TLS{TS: t0.AddDate(0, 0, d), Src: "10.1.0.63", Dst: "198.51.100.63", ServerName: "sync.example.net"})
		}
		// Two resolvers forward to a public resolver.
		for i := range 200 {
			g.Conn(dt.Conn{TS: t0.Add(time.Duration(i) * 10 * time.Minute), Src: "10.1.0.64", Dst: "9.9.9.9", DstPort: 53, Proto: "udp", SrcBytes: 80, DstBytes: 4000})
		}
	}, New(dt.Env(), Config{}))
}
