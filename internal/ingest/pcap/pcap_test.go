package pcap

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
)

// An interrupted read resumes from its checkpoint: the second pass skips
// what the first stored, and together they give exactly one full read.
func TestResume(t *testing.T) {
	path := filepath.Join(dataset(t, "zeek-btest-pcap-to-logs"), "traces/wikipedia.pcap")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	full, _ := readCapture(t, path)
	in := &ingest.Input{Path: path, Head: data[:event.HeadSize], Final: true}
	src, err := open(bytes.NewReader(data), in)
	if err != nil {
		t.Fatal(err)
	}
	var first event.Batch
	if err := src.Next(context.Background(), &first, 10); err != nil {
		t.Fatal(err)
	}
	pos := src.Position()
	if pos.Offset != 0 || first.Len() < 10 {
		t.Fatalf("mid-pass position %+v after %d records", pos, first.Len())
	}
	in2 := &ingest.Input{Path: path, Head: data[:event.HeadSize], Final: true, Resume: pos}
	if !detect(in2) {
		t.Fatal("checkpoint not recognised")
	}
	src2, err := open(bytes.NewReader(data[pos.Offset:]), in2)
	if err != nil {
		t.Fatal(err)
	}
	var rest event.Batch
	for {
		err := src2.Next(context.Background(), &rest, 1000)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	first.Append(&rest)
	if !reflect.DeepEqual(first.Conns, full.Conns) || !reflect.DeepEqual(first.DNS, full.DNS) {
		t.Errorf("resumed: %d conns %d dns, full read %d %d", len(first.Conns), len(first.DNS), len(full.Conns), len(full.DNS))
	}
	end := src2.Position()
	if end.Offset != int64(len(data)) {
		t.Errorf("end position %+v, file of %d bytes", end, len(data))
	}
}

// Records name their capture and first packet, uids are unique and stable,
// and every TCP record has a Community ID.
func TestProvenance(t *testing.T) {
	path := filepath.Join(dataset(t, "zeek-btest-pcap-to-logs"), "traces/wikipedia.pcap")
	a, rep := readCapture(t, path)
	b, _ := readCapture(t, path)
	if !reflect.DeepEqual(a, b) {
		t.Error("two reads differ")
	}
	if rep.Bad != 0 || len(rep.Kinds) < 3 || rep.Kinds[0] != event.KindConn || rep.Kinds[1] != event.KindDNS {
		t.Errorf("report %+v", rep)
	}
	seen := map[string]bool{}
	for _, c := range a.Conns {
		if c.Src.File != path || c.Src.Line < 1 || seen[c.UID] || len(c.UID) != 18 || c.CommunityID == "" {
			t.Fatalf("conn %+v", c)
		}
		seen[c.UID] = true
	}
	for _, d := range a.DNS {
		if !seen[d.UID] {
			t.Errorf("dns record of no conn: %+v", d)
		}
	}
}

// The Community ID of the specification's own example.
func TestCommunityID(t *testing.T) {
	c := &conn{proto: protoTCP}
	c.orig, c.resp = mustAddr("128.232.110.120"), mustAddr("66.35.250.204")
	c.origPort, c.respPt = 34855, 80
	if got := communityID(c); got != "1:LQU9qZlK+B5F3KDmev6m5PMibrg=" {
		t.Errorf("community id %s", got)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// Every capture of the packet datasets is read without a malformed
// record, and gives connections.
func TestDatasetCaptures(t *testing.T) {
	for _, dir := range []string{"chrissanders-packets", "dns-tunnels-dmachard"} {
		root := dataset(t, dir)
		n := 0
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if !detect(&ingest.Input{Head: data[:min(len(data), event.HeadSize)]}) {
				return nil
			}
			n++
			_, rep := readCapture(t, p)
			if rep.Bad != 0 {
				t.Errorf("%s: %d bad: %+v", p, rep.Bad, rep.Errors)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n < 5 {
			t.Errorf("%s: only %d captures", dir, n)
		}
	}
}
