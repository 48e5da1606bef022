package hostlog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/detect/detecttest"
	"github.com/dwell-nsm/dwell/internal/event"
)

// TestTally checks that the detector's running totals give Detect's
// findings whatever order the events come in (detecttest.Tally): on every
// EVTX file of the shared evtx-to-mitre-attack collection at once, and on
// logons over ten days (new sources, names written two ways, ties).
func TestTally(t *testing.T) {
	d := New(&detect.Env{Local: detect.DefaultLocal()}, Config{})
	t.Run("logons", func(t *testing.T) {
		var evs []event.HostEvent
		logon := func(ts time.Time, host, user, src, lt string, line int64) event.HostEvent {
			e := ev(ts, host, security, 4624, "TargetUserName", user, "TargetDomainName", "MIN", "IpAddress", src, "LogonType", lt)
			e.Src.Line = line
			return e
		}
		for d := range 10 {
			day := t0.AddDate(0, 0, d).Add(123456789 * time.Nanosecond)
			evs = append(evs, logon(day, "FS1", "alice", "10.10.0.5", "3", int64(4*d)), logon(day, "FS1", "Bob", "10.10.0.6", "3", int64(4*d+1)),
				// The same account written another way, at the same time elsewhere.
				logon(day, "FS2", "BOB", "10.10.0.6", "3", int64(4*d+2)))
		}
		late := t0.AddDate(0, 0, 8)
		evs = append(evs, logon(late, "WS9", "alice", "10.20.0.25", "10", 100),
			ev(late.Add(10*time.Minute), "WS9", "System", 7045, "ServiceName", "svc", "ImagePath", `C:\ProgramData\x\x.exe`),
			ev(late.Add(10*time.Minute), "WS9", "System", 7045, "ServiceName", "svc", "ImagePath", `C:\ProgramData\y\y.exe`),
			logon(t0.AddDate(0, 0, 9), "FS1", "bob", "10.10.0.7", "3", 101))
		for i := range 8 { // more subjects than a finding keeps apart
			evs = append(evs, ev(late.Add(time.Hour), "WS9", "System", 7045, "ServiceName", "svc"+string(rune('a'+i)), "ImagePath",
				`C:\ProgramData\z.exe`))
		}
		for i := range evs {
			if evs[i].Src.Line == late.Unix() || evs[i].Src.Line == late.Add(10*time.Minute).Unix() || evs[i].Src.Line == late.Add(time.Hour).Unix() {
				evs[i].Src.Line += int64(i) // distinct places
			}
		}
		if fs := detecttest.Tally(t, d, &event.Batch{Host: evs}); len(byRule(fs, "new-source")) == 0 {
			t.Error("no new-source finding to compare")
		}
	})
	t.Run("evtx-to-mitre-attack", func(t *testing.T) {
		root := filepath.Join(datasets, "evtx-to-mitre-attack")
		if _, err := os.Stat(root); err != nil {
			t.Skipf("shared dataset absent (%v): skipping", err)
		}
		var paths []string
		_ = filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
			if err == nil && strings.HasSuffix(p, ".evtx") {
				paths = append(paths, p)
			}
			return nil
		})
		b := readEVTX(t, paths...)
		fs := detecttest.Tally(t, d, b)
		t.Logf("%d files, %d events, %d findings", len(paths), len(b.Host), len(fs))
		if len(fs) < 50 {
			t.Errorf("%d findings: too few to compare", len(fs))
		}
	})
}
