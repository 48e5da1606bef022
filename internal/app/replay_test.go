package app

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/dwell-nsm/dwell/internal/scenario/scenariotest"
)

// TestReplayCompressed: dwell replay sends a zstd-compressed capture's
// messages as it sends the plain capture's.
func TestReplayCompressed(t *testing.T) {
	plain, data, _ := scenariotest.FlowCapture(t)
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	packed := filepath.Join(t.TempDir(), "ddos.pcap.zst")
	if err := os.WriteFile(packed, zw.EncodeAll(data, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	conn, err := (&net.ListenConfig{}).ListenPacket(t.Context(), "udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	var got atomic.Int64
	go func() {
		buf := make([]byte, 65536)
		for {
			if _, _, err := conn.ReadFrom(buf); err != nil {
				return
			}
			got.Add(1)
		}
	}()
	sent := regexp.MustCompile(`: (\d+) messages`)
	var counts []string
	for _, path := range []string{plain, packed} {
		code, out, errOut := runDwell(t, "replay", "--to", conn.LocalAddr().String(), "--speed", "0", path)
		if code != ExitOK {
			t.Fatalf("replay %s: exit %d: %s%s", path, code, out, errOut)
		}
		m := sent.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("replay %s: %s", path, out)
		}
		counts = append(counts, m[1])
	}
	if counts[0] != counts[1] || counts[0] == "0" {
		t.Errorf("messages sent: plain %s, zstd %s", counts[0], counts[1])
	}
	// UDP may lose some; at least one datagram must arrive, waited for
	// at most five seconds.
	for deadline := time.Now().Add(5 * time.Second); got.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got.Load() == 0 {
		t.Error("nothing arrived")
	}
}
