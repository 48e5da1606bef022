package evtx

import (
	"encoding/binary"
	"hash/crc32"
	"time"
	"unicode/utf16"
)

// builder writes small EVTX files for tests: one template (a Security
// logon event) defined inline by the first record of each chunk and
// referenced by the others, as Windows writes them.
type builder struct {
	chunks [][]byte
	cur    []byte
	tmpl   uint32 // offset of the template definition in the current chunk
	names  map[string]uint32
	nextID uint64
	first  uint64
}

// logon is the content of one test record.
type logon struct {
	ts       time.Time
	eventID  uint16
	computer string
	user     string
	ip       string
	types    []string // an array value: repeats its Data element
}

func le16(b []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(b, v) }
func le32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
func le64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }

func utf16le(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = le16(b, u)
	}
	return b
}

func newBuilder() *builder {
	return &builder{nextID: 1}
}

func (b *builder) startChunk() {
	b.cur = make([]byte, chunkHeaderSize, chunkSize)
	b.names = map[string]uint32{}
	b.tmpl = 0
	b.first = b.nextID
}

// name appends a name reference, defining the name inline on first use.
func (b *builder) name(out []byte, base int, s string) []byte {
	if off, ok := b.names[s]; ok {
		return le32(out, off)
	}
	off := uint32(base + len(out) + 4)
	b.names[s] = off
	out = le32(out, off)
	out = le32(out, 0)
	out = le16(out, 0) // hash, not checked by readers
	out = le16(out, uint16(len(utf16.Encode([]rune(s)))))
	out = append(out, utf16le(s)...)
	return le16(out, 0)
}

// elem appends an element start with optional attributes.
func (b *builder) elem(out []byte, base int, name string, attrs func([]byte) []byte) []byte {
	tok := byte(tokOpenStart)
	if attrs != nil {
		tok |= tokMore
	}
	out = append(out, tok)
	out = le16(out, 0xffff)
	sizeAt := len(out)
	out = le32(out, 0) // data size: readers do not need it exact
	out = b.name(out, base, name)
	if attrs != nil {
		at := len(out)
		out = le32(out, 0)
		out = attrs(out)
		binary.LittleEndian.PutUint32(out[at:], uint32(len(out)-at-4))
	}
	_ = sizeAt
	return out
}

func subst(out []byte, id uint16, typ byte, optional bool) []byte {
	tok := byte(tokSubst)
	if optional {
		tok = tokOptionalSubst
	}
	return append(le16(append(out, tok), id), typ)
}

// templateBody returns the Binary XML of the test template, written at
// chunk offset base.
func (b *builder) templateBody(base int) []byte {
	var t []byte
	t = append(t, tokFragment, 1, 1, 0)
	t = b.elem(t, base, "Event", nil)
	t = append(t, tokCloseStart)
	t = b.elem(t, base, "System", nil)
	t = append(t, tokCloseStart)
	t = b.elem(t, base, "Provider", func(o []byte) []byte {
		o = append(o, tokAttribute)
		o = b.name(o, base, "Name")
		o = append(o, tokValue, typeString)
		o = le16(o, uint16(len("Microsoft-Windows-Security-Auditing")))
		return append(o, utf16le("Microsoft-Windows-Security-Auditing")...)
	})
	t = append(t, tokCloseEmpty)
	t = b.elem(t, base, "EventID", nil)
	t = append(subst(append(t, tokCloseStart), 0, typeUint16, false), tokEnd)
	t = b.elem(t, base, "TimeCreated", func(o []byte) []byte {
		o = append(o, tokAttribute)
		o = b.name(o, base, "SystemTime")
		return subst(o, 1, typeFiletime, false)
	})
	t = append(t, tokCloseEmpty)
	t = b.elem(t, base, "EventRecordID", nil)
	t = append(subst(append(t, tokCloseStart), 2, typeUint64, false), tokEnd)
	t = b.elem(t, base, "Channel", nil)
	t = append(t, tokCloseStart, tokValue, typeString)
	t = le16(t, uint16(len("Security")))
	t = append(append(t, utf16le("Security")...), tokEnd)
	t = b.elem(t, base, "Computer", nil)
	t = append(subst(append(t, tokCloseStart), 3, typeString, false), tokEnd)
	t = b.elem(t, base, "Security", func(o []byte) []byte {
		o = append(o, tokAttribute)
		o = b.name(o, base, "UserID")
		return subst(o, 8, typeSID, true)
	})
	t = append(t, tokCloseEmpty)
	t = append(t, tokEnd) // System
	t = b.elem(t, base, "EventData", nil)
	t = append(t, tokCloseStart)
	for i, field := range []string{"TargetUserName", "IpAddress", "LogonType", "LogonGuid"} {
		t = b.elem(t, base, "Data", func(o []byte) []byte {
			o = append(o, tokAttribute)
			o = b.name(o, base, "Name")
			o = append(o, tokValue, typeString)
			o = le16(o, uint16(len(field)))
			return append(o, utf16le(field)...)
		})
		typ := []byte{typeString, typeString, typeString | typeArray, typeGUID}[i]
		t = append(subst(append(t, tokCloseStart), uint16(4+i), typ, true), tokEnd)
	}
	t = append(t, tokEnd) // EventData
	t = append(t, tokEnd) // Event
	return append(t, tokEOF)
}

// add appends one record to the current chunk.
func (b *builder) add(l logon) {
	if b.cur == nil {
		b.startChunk()
	}
	recStart := len(b.cur)
	base := recStart + recordHeader
	var x []byte
	x = append(x, tokFragment, 1, 1, 0)
	x = append(x, tokTemplate, 1)
	x = le32(x, 0x1234)
	if b.tmpl == 0 {
		b.tmpl = uint32(base + len(x) + 4)
		x = le32(x, b.tmpl)
		defAt := len(x)
		x = le32(x, 0)                     // next template
		x = append(x, make([]byte, 16)...) // GUID
		x = le32(x, 0)                     // size, set below
		body := b.templateBody(base + len(x))
		binary.LittleEndian.PutUint32(x[defAt+20:], uint32(len(body)))
		x = append(x, body...)
	} else {
		x = le32(x, b.tmpl)
	}
	str := func(s string) []byte { return utf16le(s) }
	ft := uint64(l.ts.UnixNano()/100) + 116444736000000000
	var types []byte
	for _, s := range l.types {
		types = append(types, str(s)...)
		types = le16(types, 0)
	}
	sid := []byte{1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0} // S-1-5-18
	guid := []byte{0x78, 0x56, 0x34, 0x12, 0x34, 0x12, 0x78, 0x56, 1, 2, 3, 4, 5, 6, 7, 8}
	vals := []struct {
		typ  byte
		data []byte
	}{
		{typeUint16, le16(nil, l.eventID)},
		{typeFiletime, le64(nil, ft)},
		{typeUint64, le64(nil, b.nextID)},
		{typeString, str(l.computer)},
		{typeString, str(l.user)},
		{typeString, str(l.ip)},
		{typeString | typeArray, types},
		{typeGUID, guid},
		{typeSID, sid},
	}
	if l.types == nil {
		vals[6].typ = typeNull
	}
	x = le32(x, uint32(len(vals)))
	for _, v := range vals {
		x = le16(x, uint16(len(v.data)))
		x = append(x, v.typ, 0)
	}
	for _, v := range vals {
		x = append(x, v.data...)
	}
	x = append(x, tokEOF)
	size := uint32(recordHeader + len(x) + 4)
	if recStart+int(size) > chunkSize {
		b.finishChunk()
		b.add(l)
		return
	}
	var rec []byte
	rec = append(rec, recordMagic...)
	rec = le32(rec, size)
	rec = le64(rec, b.nextID)
	rec = le64(rec, ft)
	rec = append(rec, x...)
	rec = le32(rec, size)
	b.cur = append(b.cur, rec...)
	b.nextID++
}

// finishChunk writes the current chunk's header and checksums.
func (b *builder) finishChunk() {
	if b.cur == nil {
		return
	}
	c := b.cur
	free := len(c)
	c = c[:chunkSize]
	copy(c, chunkMagic)
	le := binary.LittleEndian
	le.PutUint64(c[8:], b.first)
	le.PutUint64(c[16:], b.nextID-1)
	le.PutUint64(c[24:], b.first)
	le.PutUint64(c[32:], b.nextID-1)
	le.PutUint32(c[40:], 128)
	le.PutUint32(c[48:], uint32(free))
	le.PutUint32(c[52:], crc32.ChecksumIEEE(c[chunkHeaderSize:free]))
	le.PutUint32(c[124:], crc32.Update(crc32.ChecksumIEEE(c[:120]), crc32.IEEETable, c[128:chunkHeaderSize]))
	b.chunks = append(b.chunks, c)
	b.cur = nil
}

// bytes returns the whole file.
func (b *builder) bytes() []byte {
	b.finishChunk()
	h := make([]byte, fileHeaderSize)
	copy(h, fileMagic)
	le := binary.LittleEndian
	le.PutUint64(h[16:], uint64(max(len(b.chunks)-1, 0)))
	le.PutUint64(h[24:], b.nextID)
	le.PutUint32(h[32:], 128)
	le.PutUint16(h[36:], 1)
	le.PutUint16(h[38:], 3)
	le.PutUint16(h[40:], fileHeaderSize)
	le.PutUint16(h[42:], uint16(len(b.chunks)))
	le.PutUint32(h[124:], crc32.ChecksumIEEE(h[:120]))
	out := h
	for _, c := range b.chunks {
		out = append(out, c...)
	}
	return out
}
