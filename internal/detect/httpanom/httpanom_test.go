package httpanom

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	dt "github.com/dwell-nsm/dwell/internal/detect/detecttest"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/storetest"
)

func TestHTTP(t *testing.T) {
	dt.Run(t, "http", func(g *dt.Gen) {
		hosts := dt.Hosts(30)
		browser := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0"
		for d := range 10 {
			ts := dt.Start.AddDate(0, 0, d).Add(9 * time.Hour)
			for i, h := range hosts {
				g.HTTP(dt.HTTP{TS: ts.Add(time.Duration(i) * time.Minute), Src: h, Dst: "93.184.216.34", Method: "GET", Host: "www.example.com",
					URI: "/news?id=" + fmt.Sprint(i), UserAgent: browser, Status: 200})
				// The webmail front end: everyone, GET and POST.
				g.HTTP(dt.HTTP{TS: ts.Add(time.Hour), Src: "198.51.100.200", Dst: "10.2.0.25", DstPort: 443, Method: "POST", Host: "mail.ministry.example",
					URI: "/owa/auth.owa", UserAgent: browser, Status: 302})
			}
			// Internet users reach the mail server's login page.
			for i := range 20 {
				g.HTTP(dt.HTTP{TS: ts.Add(time.Duration(i) * 7 * time.Minute), Src: fmt.Sprintf("203.0.113.%d", 100+i), Dst: "10.2.0.25", DstPort: 443,
					Method: "GET", Host: "mail.ministry.example", URI: "/owa/auth/logon.aspx", UserAgent: browser, Status: 200})
			}
			// A web shell on the mail server, driven by two outside addresses.
			for i := range 3 {
				g.HTTP(dt.HTTP{TS: ts.Add(time.Duration(10+i) * time.Hour), Src: []string{"192.0.2.10", "192.0.2.11"}[i%2], Dst: "10.2.0.25", DstPort: 443,
					Method: "POST", Host: "mail.ministry.example", URI: "/owa/auth/errorEE.aspx?x=1", UserAgent: "python-requests/2.31", ReqBytes: 900, Status: 200})
			}
			// Every host's antivirus fetches its signature updates, a
			// program, over HTTP from content-network addresses that
			// change: one name, many addresses.
			for i, h := range hosts {
				g.HTTP(dt.HTTP{TS: ts.Add(time.Duration(i)*time.Minute + 2*time.Hour), Src: h, Dst: fmt.Sprintf("23.32.%d.%d", d, i%7+1),
					Method: "GET", Host: "definitionupdates.example-av.com", URI: "/mpam-fe.exe", UserAgent: "AV-Updater/4.18",
					RespBytes: 120_000_000, RespMIME: "application/x-dosexec", Status: 200})
			}
			// A dropper on one server: wget fetches an ELF from a name
			// no other host uses, once.
			if d == 4 {
				g.HTTP(dt.HTTP{TS: ts.Add(5 * time.Hour), Src: "10.1.0.60", Dst: "104.24.97.120", Method: "GET", Host: "skiddump.example",
					URI: "/c/mxnjks", UserAgent: "Wget/1.18 (linux-gnueabihf)", RespBytes: 18_716, RespMIME: "application/x-executable", Status: 200})
			}
			// An implant: no Host header, its own user agent, straight to an IP.
			for i := range 8 {
				g.HTTP(dt.HTTP{TS: ts.Add(time.Duration(i) * 3 * time.Hour), Src: "10.1.0.50", Dst: "198.51.100.77", Method: "POST",
					URI: "/gate.php", UserAgent: "Modzilla/0.0001 (Atari 7800)", ReqBytes: 300, Status: 200})
			}
		}
	}, New(dt.Env(), Config{}))
}

// TestWebShellNamesEveryOperator: a web shell driven from three outside
// addresses names the busiest as its source and the other two as
// infrastructure, so incidents and blocklists have all three.
func TestWebShellNamesEveryOperator(t *testing.T) {
	m := storetest.NewMem()
	ts := time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC)
	var b event.Batch
	for i := range 9 {
		b.HTTP = append(b.HTTP, event.HTTP{TS: ts.Add(time.Duration(i) * time.Hour), UID: fmt.Sprintf("C%d", i),
			SrcIP: netip.MustParseAddr([]string{"192.0.2.10", "192.0.2.10", "192.0.2.11", "192.0.2.12"}[i%4]), SrcPort: 40000,
			DstIP: netip.MustParseAddr("10.2.0.25"), DstPort: 443, Method: "POST", Host: "mail.ministry.example", URI: "/owa/auth/errorEE.aspx",
			UserAgent: "python-requests/2.31", RequestBodyLen: event.Some[uint64](900), StatusCode: event.Some[uint64](200),
			Src: event.Source{Sensor: "s", File: "http.log", Line: int64(i + 1)}})
	}
	if err := m.Write(t.Context(), &b); err != nil {
		t.Fatal(err)
	}
	fs, err := New(&detect.Env{Local: detect.DefaultLocal()}, Config{}).Detect(t.Context(), detect.NewCache(m), store.Window{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if f.Evidence["path"] == nil {
			continue
		}
		got := []netip.Addr{f.Src}
		got = append(got, f.Infra...)
		if len(got) != 3 || f.Src.String() != "192.0.2.10" {
			t.Errorf("web shell names %v (src %v)", got, f.Src)
		}
		return
	}
	t.Fatalf("no web-shell finding: %+v", fs)
}
