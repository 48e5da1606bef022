package store_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/storetest"
)

// TestSessions checks the stitching of flow records into connections on
// storetest's flows, one case each: adjoining pieces of a long
// connection joined, a short silence joined and a long one split,
// exporters kept apart, the originator guessed, counts multiplied by the
// sampling interval, payload less headers, and the state of each attempt.
func TestSessions(t *testing.T) {
	sessions := store.Sessions(storetest.SessionFlows())
	got := map[string]event.Conn{}
	for _, c := range sessions {
		k := fmt.Sprintf("%s %s:%d>%s:%d %s", c.Src.Sensor, c.SrcIP, c.SrcPort, c.DstIP, c.DstPort, c.TS.Format("15:04:05.000"))
		if _, dup := got[k]; dup {
			t.Errorf("two sessions %s", k)
		}
		got[k] = c
	}
	for _, w := range []struct {
		key      string
		dur      time.Duration
		state    string
		src, dst uint64 // payload bytes
		srcIP    uint64
	}{
		{"edge 10.0.0.5:50001>198.51.100.7:443 06:00:00.000", 3*time.Hour + time.Millisecond, "SF", 6 * (60_000 - 100*40), 6 * (900_000 - 90*40), 360_000},
		{"edge 10.0.0.17:40000>203.0.113.9:8080 10:00:00.000", 50 * time.Second, "SF", 2 * (600 - 5*40), 30_000 - 12*40, 1200},
		{"edge 10.0.0.17:40000>203.0.113.9:8080 10:02:20.000", 10 * time.Second, "OTH", 600 - 5*40, 0, 600},
		{"edge 10.0.0.5:123>192.0.2.123:123 10:01:04.000", 20 * time.Millisecond, "SF", 76 - 28, 76 - 28, 76},
		{"edge 10.0.0.5:5353>192.0.2.53:53 11:00:00.000", time.Minute, "S0", 4 * (70 - 28), 0, 280},
		{"edge 10.0.0.17:41002>198.51.100.99:22 11:00:02.000", 0, "S0", 4, 0, 44},
		{"edge 10.0.0.17:42000>198.51.100.7:3389 11:00:00.000", 0, "REJ", 4, 0, 44},
		{"edge 10.0.0.17:42001>198.51.100.7:80 11:00:01.000", time.Second, "RSTO", 500 - 160, 300 - 120, 500},
		{"edge 10.0.0.17:42002>198.51.100.7:80 11:00:02.000", time.Second, "RSTR", 500 - 160, 300 - 120, 500},
		{"edge 10.0.0.17:42003>198.51.100.7:22 11:00:03.000", 9 * time.Second, "S1", 9000 - 1600, 19000 - 1600, 9000},
		{"edge 10.0.0.17:42004>198.51.100.7:25 11:00:04.000", time.Second, "OTH", 500 - 160, 0, 500},
		{"edge 10.0.0.5:51000>198.51.100.8:443 11:01:00.000", 2 * time.Second, "OTH", 100 * (3000 - 120), 0, 300_000},
		{"edge 2001:db8::5:51000>2001:db8:1::7:443 11:01:00.000", 2 * time.Second, "OTH", 10_000 - 600, 0, 10_000},
		{"core 10.0.0.5:51001>10.0.0.17:445 11:02:00.000", time.Minute, "SF", 40_000 - 1200, 2_000 - 800, 40_000},
	} {
		c, ok := got[w.key]
		if !ok {
			var keys []string
			for k := range got {
				keys = append(keys, k)
			}
			t.Errorf("no session %s; sessions:\n%s", w.key, strings.Join(keys, "\n"))
			continue
		}
		if c.Duration.V != w.dur || c.ConnState != w.state || c.SrcBytes.V != w.src || c.DstBytes.V != w.dst || c.SrcIPBytes.V != w.srcIP {
			t.Errorf("%s: duration %v state %s bytes %d/%d ip %d; want %v %s %d/%d %d", w.key, c.Duration.V, c.ConnState,
				c.SrcBytes.V, c.DstBytes.V, c.SrcIPBytes.V, w.dur, w.state, w.src, w.dst, w.srcIP)
		}
	}
	// Per exporter: the same five-tuple through the second exporter is a
	// session of its own; NTP polls 64 s apart are four.
	n := map[string]int{}
	for _, c := range sessions {
		n[fmt.Sprintf("%s:%d>%s:%d", c.SrcIP, c.SrcPort, c.DstIP, c.DstPort)]++
	}
	if n["10.0.0.5:50001>198.51.100.7:443"] != 2 || n["10.0.0.5:123>192.0.2.123:123"] != 4 || n["10.0.0.17:40000>203.0.113.9:8080"] != 2 {
		t.Errorf("session counts %v", n)
	}
}
