package exfil

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"path"
	"strings"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Uploads are also judged one by one, whatever else the pair exchanged: a
// pair that downloads gigabytes must not hide one upload of an archive.
// A transfer weighs by its size, by what it is (an archive or a memory
// dump, an HTTP PUT or a WebDAV method, a large POST body, a connection
// that sent far more than it received) and by where it goes (an address
// nothing named, a destination few hosts reach).

// archiveExts are the file name extensions of archives, disk images and
// dumps: what stolen data is packed into.
var archiveExts = map[string]bool{".7z": true, ".zip": true, ".rar": true, ".tar": true, ".gz": true, ".tgz": true, ".bz2": true,
	".xz": true, ".zst": true, ".cab": true, ".dmp": true, ".mdmp": true, ".iso": true, ".img": true, ".vhd": true, ".vhdx": true,
	".vmdk": true, ".pst": true, ".ost": true, ".bak": true, ".kdbx": true, ".ntds": true, ".dit": true}

// archiveMIME reports MIME types of archives and raw data.
func archiveMIME(m string) bool {
	m = strings.ToLower(m)
	for _, s := range []string{"zip", "x-7z", "x-rar", "x-tar", "gzip", "x-bzip", "x-xz", "zstd", "x-iso9660", "ms-cab", "x-dmp",
		"vnd.ms-outlook", "x-ms-minidump"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// webdav are the HTTP methods of WebDAV clients (and PUT).
var webdav = map[string]bool{"PUT": true, "PROPFIND": true, "PROPPATCH": true, "MKCOL": true, "COPY": true, "MOVE": true, "LOCK": true}

// transfer is the best upload seen on one pair, and how many there were.
type transfer struct {
	best     store.Upload
	score    float64
	what     string
	kind     float64
	size     float64
	count    int
	sentAll  int64
	archives int
}

// transfers judges every upload of at least MinBytes from an internal
// host to an outside address, per pair.
func (d *Detector) transfers(ctx context.Context, r store.Reader, w store.Window, outbound store.Sides, prev *detect.Prevalence, peers *detect.Peers) (map[pairKey]*transfer, error) {
	out := map[pairKey]*transfer{}
	counted := map[pairKey]map[string]int64{} // bytes counted per connection uid: conn, http and files name one transfer alike
	err := r.Uploads(ctx, w, store.UploadFilter{Sides: outbound, MinBytes: d.cfg.MinBytes}, func(u *store.Upload) error {
		if !d.env.IsLocal(u.Src) || d.env.IsLocal(u.Dst) || !detect.Unicast(u.Dst) {
			return nil
		}
		kind, what := transferKind(u)
		if kind == 0 {
			return nil
		}
		size := detect.Ramp(math.Log10(float64(u.Bytes)), 6, 8.5)
		dest := max(peers.Naming(u.Src, u.Dst), rarity(prev, u.Dst))
		if peers.Of(u.Dst).HTTPBare {
			dest = 1
		}
		score := (0.35 + 0.35*size + 0.3*kind) * (0.5 + 0.5*dest) * prev.Damp(d.env, u.Src, u.Dst)
		k := pairKey{u.Sensor, u.Src, u.Dst}
		t := out[k]
		if t == nil {
			t = &transfer{}
			out[k] = t
		}
		if counted[k] == nil {
			counted[k] = map[string]int64{}
		}
		if prior, seen := counted[k][u.UID]; !seen || u.UID == "" {
			t.count++
			t.sentAll += u.Bytes
			counted[k][u.UID] = u.Bytes
		} else if u.Bytes > prior {
			t.sentAll += u.Bytes - prior
			counted[k][u.UID] = u.Bytes
		}
		if kind == 1 {
			t.archives++
		}
		if score > t.score {
			t.best, t.score, t.what, t.kind, t.size = *u, score, what, kind, size
		}
		return nil
	})
	return out, err
}

// rarity is 1 for a destination one or two internal hosts of ten or more
// reach, 0 otherwise (or when the network is too small to tell).
func rarity(prev *detect.Prevalence, dst netip.Addr) float64 {
	if prev.Hosts >= 10 && prev.Of(dst).Clients <= 2 {
		return 1
	}
	return 0
}

// transferKind says what an upload is: 1 for an archive, image or dump,
// or a PUT or WebDAV method; 0.6 for a POST body; 0.5 for a connection
// that sent at least five times what it received; 0 for anything else.
func transferKind(u *store.Upload) (float64, string) {
	name := u.Filename
	ext := strings.ToLower(path.Ext(name))
	switch {
	case archiveExts[ext] || archiveMIME(u.MIME):
		what := "an archive"
		if name != "" {
			what = fmt.Sprintf("%q", clip(name))
		}
		return 1, what
	case u.Log == "http" && webdav[strings.ToUpper(u.Method)]:
		return 1, "an HTTP " + strings.ToUpper(u.Method)
	case u.Log == "http" && strings.EqualFold(u.Method, "POST"):
		return 0.6, "an HTTP POST body"
	case u.Log == "conn" && u.Bytes >= 5*u.Received:
		return 0.5, "a connection that sent far more than it received"
	}
	return 0, ""
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// describeTransfer says in a sentence what the best upload of a pair was.
func describeTransfer(t *transfer) string {
	u := &t.best
	s := fmt.Sprintf("its largest suspect upload was %s of %s (%s, %s)", t.what, detect.HumanBytes(uint64(max(u.Bytes, 0))), u.Log,
		u.TS.UTC().Format("2006-01-02 15:04"))
	if t.count > 1 {
		s += fmt.Sprintf(", one of %d uploads (%s in all)", t.count, detect.HumanBytes(uint64(max(t.sentAll, 0))))
	}
	return s
}

// transferEvidence lists an upload's facts.
func transferEvidence(t *transfer) map[string]any {
	u := &t.best
	ev := map[string]any{"log": u.Log, "time": u.TS.UTC().Format("2006-01-02T15:04:05Z"), "bytes": u.Bytes, "received": u.Received,
		"port": u.DstPort, "uploads": t.count, "archives": t.archives}
	for k, v := range map[string]string{"uid": u.UID, "method": u.Method, "host": u.Host, "user_agent": u.Agent, "mime": u.MIME, "filename": u.Filename} {
		if v != "" {
			ev[k] = v
		}
	}
	return ev
}
