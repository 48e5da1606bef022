package exfil

import (
	"testing"
	"time"

	dt "github.com/dwell-nsm/dwell/internal/detect/detecttest"
)

func TestUploads(t *testing.T) {
	fs := dt.Run(t, "uploads", func(g *dt.Gen) {
		hosts := dt.Hosts(40)
		for d := range 14 {
			day := dt.Start.AddDate(0, 0, d)
			for i, h := range hosts {
				// Downloads from a CDN: big, but inbound.
				g.Conn(dt.Conn{TS: day.Add(9 * time.Hour), Src: h, Dst: "151.101.1.69", DstPort: 443, Service: "ssl", SrcBytes: 40_000, DstBytes: 80_000_000})
				// Everyone syncs to the cloud office suite, both ways.
				g.Conn(dt.Conn{TS: day.Add(10 * time.Hour), Src: h, Dst: "52.96.10.10", DstPort: 443, Service: "ssl", SrcBytes: 6_000_000, DstBytes: 9_000_000})
				// Backups go to an internal server.
				if i < 5 {
					g.Conn(dt.Conn{TS: day.Add(20 * time.Hour), Src: h, Dst: "10.9.9.9", DstPort: 445, SrcBytes: 900_000_000, DstBytes: 10_000})
				}
				// Developers push code to a forge a few of them use.
				if i < 8 {
					g.Conn(dt.Conn{TS: day.Add(15 * time.Hour), Src: h, Dst: "140.82.121.3", DstPort: 443, Service: "ssl", SrcBytes: 30_000_000, DstBytes: 25_000_000})
				}
			}
			// Low and slow: 15 MB a day in 200 kB pieces to a rented server.
			for i := range 75 {
				g.Conn(dt.Conn{TS: day.Add(time.Duration(i) * 17 * time.Minute), Src: "10.1.0.30", Dst: "198.51.100.99", DstPort: 443,
					Service: "ssl", SrcBytes: 200_000, DstBytes: 2_000})
			}
		}
		// One large upload.
		g.Conn(dt.Conn{TS: dt.Start.AddDate(0, 0, 9).Add(23 * time.Hour), Src: "10.1.0.31", Dst: "203.0.113.44", DstPort: 443,
			Service: "ssl", Duration: 40 * time.Minute, SrcBytes: 800_000_000, DstBytes: 50_000})
	}, New(dt.Env(), Config{}))
	// The one large upload's finding carries the host's own days around
	// it, its baseline: 14 days of 40 kB to the CDN and 6 MB to the
	// office suite, and 800 MB more on the upload's day.
	for _, f := range fs {
		if f.Dst.String() != "203.0.113.44" {
			continue
		}
		days, _ := f.Evidence["host_bytes_out_per_day"].([]map[string]any)
		if len(days) != 14 {
			t.Fatalf("host_bytes_out_per_day has %d days, want the host's 14: %v", len(days), days)
		}
		upload := dt.Start.AddDate(0, 0, 9).Format(time.DateOnly)
		for _, d := range days {
			want := int64(6_040_000)
			if d["day"] == upload {
				want += 800_000_000
			}
			if d["bytes"] != want {
				t.Errorf("host bytes out on %v = %v, want %d", d["day"], d["bytes"], want)
			}
		}
		return
	}
	t.Error("no finding of the large upload")
}

// TestTransfers judges uploads one by one: an archive PUT to an address
// the host never resolved, a 7z file sent over HTTPS, a memory dump sent
// in one connection of a pair that downloads gigabytes, and WebDAV to a
// rented server are found; POSTs of forms to a service everyone uses are
// not.
func TestTransfers(t *testing.T) {
	dt.Run(t, "transfers", func(g *dt.Gen) {
		hosts := dt.Hosts(40)
		t0 := dt.Start.Add(10 * time.Hour)
		for i, h := range hosts {
			g.DNS(dt.DNS{TS: t0, Src: h, Query: "forms.example.org", Answers: []string{"198.51.100.10"}})
			g.Conn(dt.Conn{TS: t0.Add(time.Duration(i) * time.Minute), Src: h, Dst: "198.51.100.10", DstPort: 443, SrcBytes: 1_500_000, DstBytes: 900_000})
			g.HTTP(dt.HTTP{TS: t0.Add(time.Duration(i) * time.Minute), Src: h, Dst: "198.51.100.10", Method: "POST", Host: "forms.example.org",
				URI: "/submit", ReqBytes: 1_400_000, RespBytes: 2000, Status: 200})
		}
		g.DNS(dt.DNS{TS: t0, Src: "10.1.0.50", Query: "www.example.com", Answers: []string{"93.184.216.34"}})
		g.Conn(dt.Conn{TS: t0.Add(2 * time.Hour), Src: "10.1.0.50", Dst: "203.0.113.70", DstPort: 80, SrcBytes: 45_000_000, DstBytes: 300})
		g.HTTP(dt.HTTP{TS: t0.Add(2 * time.Hour), Src: "10.1.0.50", Dst: "203.0.113.70", Method: "PUT", Host: "203.0.113.70", URI: "/u/q3.zip",
			ReqBytes: 45_000_000, Status: 201, MIME: "application/zip", Filename: "q3.zip"})
		g.Conn(dt.Conn{TS: t0.Add(3 * time.Hour), Src: "10.1.0.51", Dst: "203.0.113.71", DstPort: 443, SrcBytes: 60_000_000, DstBytes: 80_000})
		g.File(dt.File{TS: t0.Add(3 * time.Hour), Src: "10.1.0.51", Dst: "203.0.113.71", FromOrig: true, MIME: "application/x-7z-compressed",
			Filename: "hr.7z", SeenBytes: 60_000_000})
		for d := range 3 {
			g.Conn(dt.Conn{TS: t0.AddDate(0, 0, d), Src: "10.1.0.52", Dst: "203.0.113.72", DstPort: 443, SrcBytes: 50_000, DstBytes: 900_000_000})
		}
		g.Conn(dt.Conn{TS: t0.Add(5 * time.Hour), Src: "10.1.0.52", Dst: "203.0.113.72", DstPort: 443, SrcBytes: 120_000_000, DstBytes: 40_000})
		g.Conn(dt.Conn{TS: t0.Add(6 * time.Hour), Src: "10.1.0.53", Dst: "203.0.113.73", DstPort: 443, SrcBytes: 30_000_000, DstBytes: 60_000})
		g.HTTP(dt.HTTP{TS: t0.Add(6 * time.Hour), Src: "10.1.0.53", Dst: "203.0.113.73", Method: "PROPFIND", Host: "dav.example.net", URI: "/",
			UserAgent: "Microsoft-WebDAV-MiniRedir/10.0.19045", ReqBytes: 2_000_000, Status: 207})
	}, New(dt.Env(), Config{}))
}
