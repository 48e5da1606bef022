package pcap

import (
	"bytes"
	"crypto/md5"  //nolint:gosec // G501: files.log's md5 field
	"crypto/sha1" //nolint:gosec // G505: files.log's sha1 field
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"net/netip"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// fileState is one file (an HTTP body) being transferred: hashed and
// measured as it goes, its type told from its first bytes.
type fileState struct {
	rec       event.File
	md5, sha1 hash.Hash
	sha256    hash.Hash
	head      []byte
	first     time.Time
	last      time.Time
	filename  string
	seen      uint64
}

const mimeHead = 512

func (t *table) newFile(c *conn, isOrig bool, source string, depth uint64, total int64) *fileState {
	f := &fileState{md5: md5.New(), sha1: sha1.New(), sha256: sha256.New(), first: t.now} //nolint:gosec // G401: files.log's hashes
	f.rec = event.File{
		TS: event.Micro(t.now), FUID: t.nextFUID(c), UID: c.uid, SrcIP: c.orig, SrcPort: c.origPort,
		DstIP: c.resp, DstPort: c.respPt, ConnUIDs: []string{c.uid}, Source: source, Depth: event.Some(depth),
		Analyzers: []string{"MD5", "SHA1", "SHA256"}, IsOrig: event.Some(isOrig), Src: t.source(t.num),
	}
	if isOrig {
		f.rec.TxHosts, f.rec.RxHosts = []netip.Addr{c.orig}, []netip.Addr{c.resp}
	} else {
		f.rec.TxHosts, f.rec.RxHosts = []netip.Addr{c.resp}, []netip.Addr{c.orig}
	}
	if total >= 0 {
		f.rec.TotalBytes = event.Some(uint64(total))
	}
	return f
}

// nextFUID returns a new file id, made from the connection that first
// carries the file and the capture's count of files.
func (t *table) nextFUID(c *conn) string {
	t.fileSeq++
	b := make([]byte, 0, 32)
	b = binary.BigEndian.AppendUint64(append(b, c.uid...), uint64(t.fileSeq)) //nolint:gosec // G115: a count
	return zeekID('F', b)
}

func (f *fileState) write(b []byte, now time.Time) {
	f.md5.Write(b)
	f.sha1.Write(b)
	f.sha256.Write(b)
	if len(f.head) < mimeHead {
		f.head = append(f.head, b[:min(len(b), mimeHead-len(f.head))]...)
	}
	f.seen += uint64(len(b))
	f.last = now
}

// endFile finishes a file and keeps its files.log record.
func (t *table) endFile(f *fileState) event.File {
	r := f.rec
	r.SeenBytes = event.Some(f.seen)
	r.MissingBytes = event.Some(uint64(0))
	r.OverflowBytes = event.Some(uint64(0))
	r.TimedOut = event.Some(false)
	r.Duration = event.Some(event.Micro(f.last).Sub(event.Micro(f.first)))
	r.MIMEType = sniffMIME(f.head)
	r.Filename = f.filename
	r.MD5 = hex.EncodeToString(f.md5.Sum(nil))
	r.SHA1 = hex.EncodeToString(f.sha1.Sum(nil))
	r.SHA256 = hex.EncodeToString(f.sha256.Sum(nil))
	t.files = append(t.files, r)
	return r
}

// mimeMagic are the leading bytes of common file types, with the names
// Zeek's signatures give them.
var mimeMagic = []struct {
	prefix string
	mime   string
}{
	{"MZ", "application/x-dosexec"},
	{"\x7fELF", "application/x-executable"},
	{"%PDF-", "application/pdf"},
	{"PK\x03\x04", "application/zip"},
	{"\x1f\x8b", "application/x-gzip"},
	{"BZh", "application/x-bzip2"},
	{"\xfd7zXZ\x00", "application/x-xz"},
	{"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"},
	{"Rar!\x1a\x07", "application/x-rar"},
	{"MSCF", "application/vnd.ms-cab-compressed"},
	{"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/vnd.ms-office"},
	{"\x89PNG\r\n\x1a\n", "image/png"},
	{"\xff\xd8\xff", "image/jpeg"},
	{"GIF87a", "image/gif"},
	{"GIF89a", "image/gif"},
	{"BM", "image/bmp"},
	{"\x00\x00\x01\x00", "image/x-icon"},
	{"RIFF", "application/x-riff"},
	{"CWS", "application/x-shockwave-flash"},
	{"FWS", "application/x-shockwave-flash"},
	{"\xca\xfe\xba\xbe", "application/x-java-applet"},
	{"\x30\x82", "application/x-x509-ca-cert"},
	{"-----BEGIN CERTIFICATE", "application/x-x509-ca-cert"},
	{"<?xml", "application/xml"},
	{"ID3", "audio/mpeg"},
	{"OggS", "application/ogg"},
	{"\x00\x00\x00\x18ftyp", "video/mp4"},
	{"\x00\x00\x00\x20ftyp", "video/mp4"},
	{"wOFF", "application/font-woff"},
}

// sniffMIME tells a file's type from its first bytes: magic numbers,
// then markup, JSON and plain text; "" when unknown.
func sniffMIME(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	for _, m := range mimeMagic {
		if bytes.HasPrefix(b, []byte(m.prefix)) {
			return m.mime
		}
	}
	t := bytes.TrimLeft(b, " \t\r\n\xef\xbb\xbf")
	lower := bytes.ToLower(t[:min(len(t), 64)])
	for _, p := range []string{"<!doctype html", "<html", "<head", "<body", "<script", "<title", "<!--", "<iframe", "<div", "<p>", "<a ", "<h1"} {
		if bytes.HasPrefix(lower, []byte(p)) {
			return "text/html"
		}
	}
	if bytes.HasPrefix(lower, []byte("<svg")) {
		return "image/svg+xml"
	}
	if !textual(b) {
		return ""
	}
	if len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		return "text/json"
	}
	return "text/plain"
}

// textual reports whether b reads as text (ASCII or UTF-8, few control bytes).
func textual(b []byte) bool {
	ctl := 0
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' {
			ctl++
		}
		if c == 0 {
			return false
		}
	}
	return ctl*20 < len(b)
}
