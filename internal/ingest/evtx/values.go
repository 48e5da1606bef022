package evtx

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Value types of substitution values ([MS-EVEN6] 2.2.18; libevtx "Value
// types"). typeArray marks an array of the type in the low bits.
const (
	typeNull     = 0x00
	typeString   = 0x01
	typeAnsi     = 0x02
	typeInt8     = 0x03
	typeUint8    = 0x04
	typeInt16    = 0x05
	typeUint16   = 0x06
	typeInt32    = 0x07
	typeUint32   = 0x08
	typeInt64    = 0x09
	typeUint64   = 0x0a
	typeReal32   = 0x0b
	typeReal64   = 0x0c
	typeBool     = 0x0d
	typeBinary   = 0x0e
	typeGUID     = 0x0f
	typeSize     = 0x10
	typeFiletime = 0x11
	typeSystime  = 0x12
	typeSID      = 0x13
	typeHex32    = 0x14
	typeHex64    = 0x15
	typeBinXML   = 0x21
	typeArray    = 0x80
)

// fixedSize returns the size of one element of a fixed-size type, or 0.
func fixedSize(t byte) int {
	switch t {
	case typeInt8, typeUint8:
		return 1
	case typeInt16, typeUint16:
		return 2
	case typeInt32, typeUint32, typeReal32, typeBool, typeHex32:
		return 4
	case typeInt64, typeUint64, typeReal64, typeFiletime, typeHex64:
		return 8
	case typeGUID, typeSystime:
		return 16
	}
	return 0
}

// appendValue appends the text of a substitution value of type t to dst,
// the way Windows renders it in an event's XML: decimal integers,
// hexadecimal 0x… for the hex types and sizes, {GUID} in upper case,
// S-1-… SIDs, ISO 8601 UTC times, upper-case hex for binary data.
// Array elements are separated by commas.
func appendValue(dst []byte, t byte, b []byte) []byte {
	if t&typeArray != 0 {
		return appendArray(dst, t&^typeArray, b)
	}
	switch t {
	case typeNull:
		return dst
	case typeString:
		return appendUTF16(dst, trimNUL16(b))
	case typeAnsi:
		return appendANSI(dst, b)
	case typeBinary:
		return appendHexUpper(dst, b)
	case typeSID:
		return appendSID(dst, b)
	case typeSize:
		switch len(b) {
		case 4:
			return appendHex(dst, uint64(binary.LittleEndian.Uint32(b)))
		case 8:
			return appendHex(dst, binary.LittleEndian.Uint64(b))
		}
		return appendHexUpper(dst, b)
	}
	if n := fixedSize(t); n == 0 || len(b) < n {
		return appendHexUpper(dst, b) // an unknown or short value: its bytes
	}
	switch t {
	case typeInt8:
		return strconv.AppendInt(dst, int64(int8(b[0])), 10) //nolint:gosec // G115: the byte is a two's-complement int8
	case typeUint8:
		return strconv.AppendUint(dst, uint64(b[0]), 10)
	case typeInt16:
		return strconv.AppendInt(dst, int64(int16(binary.LittleEndian.Uint16(b))), 10) //nolint:gosec // G115: reinterpreting two's complement
	case typeUint16:
		return strconv.AppendUint(dst, uint64(binary.LittleEndian.Uint16(b)), 10)
	case typeInt32:
		return strconv.AppendInt(dst, int64(int32(binary.LittleEndian.Uint32(b))), 10) //nolint:gosec // G115: reinterpreting two's complement
	case typeUint32:
		return strconv.AppendUint(dst, uint64(binary.LittleEndian.Uint32(b)), 10)
	case typeInt64:
		return strconv.AppendInt(dst, int64(binary.LittleEndian.Uint64(b)), 10) //nolint:gosec // G115: reinterpreting two's complement
	case typeUint64:
		return strconv.AppendUint(dst, binary.LittleEndian.Uint64(b), 10)
	case typeReal32:
		return strconv.AppendFloat(dst, float64(math.Float32frombits(binary.LittleEndian.Uint32(b))), 'g', -1, 32)
	case typeReal64:
		return strconv.AppendFloat(dst, math.Float64frombits(binary.LittleEndian.Uint64(b)), 'g', -1, 64)
	case typeBool:
		if binary.LittleEndian.Uint32(b) != 0 {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case typeHex32:
		return appendHex(dst, uint64(binary.LittleEndian.Uint32(b)))
	case typeHex64:
		return appendHex(dst, binary.LittleEndian.Uint64(b))
	case typeGUID:
		return appendGUID(dst, b)
	case typeFiletime:
		return appendTime(dst, filetime(binary.LittleEndian.Uint64(b)))
	case typeSystime:
		return appendTime(dst, systime(b))
	}
	return dst
}

// appendArray appends the items of an array value, comma-separated.
func appendArray(dst []byte, t byte, b []byte) []byte {
	for i, it := range splitArray(t, b) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendValue(dst, t, it)
	}
	return dst
}

// splitArray returns the items of an array value whose items are of type
// t: NUL-terminated strings, or packed fixed-size values.
func splitArray(t byte, b []byte) [][]byte {
	var out [][]byte
	switch t {
	case typeString:
		for len(b) >= 2 {
			i := 0
			for i+1 < len(b) && (b[i] != 0 || b[i+1] != 0) {
				i += 2
			}
			out = append(out, b[:min(i, len(b))])
			if i+2 > len(b) {
				break
			}
			b = b[i+2:]
		}
		return out
	case typeAnsi:
		for len(b) > 0 {
			i := bytes.IndexByte(b, 0)
			if i < 0 {
				return append(out, b)
			}
			out = append(out, b[:i])
			b = b[i+1:]
		}
		return out
	}
	n := fixedSize(t)
	if t == typeSize {
		n = 8
		if len(b)%8 != 0 {
			n = 4
		}
	}
	if n == 0 {
		return [][]byte{b}
	}
	for i := 0; i+n <= len(b); i += n {
		out = append(out, b[i:i+n])
	}
	return out
}

// trimNUL16 drops UTF-16 NUL characters from the end of b.
func trimNUL16(b []byte) []byte {
	for len(b) >= 2 && b[len(b)-2] == 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-2]
	}
	return b
}

// utf16String decodes UTF-16LE text; an unpaired surrogate becomes U+FFFD.
func utf16String(b []byte) string {
	ascii := true
	for i := 0; i+1 < len(b); i += 2 {
		if b[i+1] != 0 || b[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		s := make([]byte, len(b)/2)
		for i := range s {
			s[i] = b[2*i]
		}
		return string(s)
	}
	return string(appendUTF16(nil, b))
}

// appendUTF16 appends UTF-16LE text as UTF-8.
func appendUTF16(dst []byte, b []byte) []byte {
	for i := 0; i+1 < len(b); i += 2 {
		r := rune(binary.LittleEndian.Uint16(b[i:]))
		switch {
		case r < utf8.RuneSelf:
			dst = append(dst, byte(r))
			continue
		case utf16.IsSurrogate(r):
			if r < 0xdc00 && i+3 < len(b) {
				r2 := rune(binary.LittleEndian.Uint16(b[i+2:]))
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					dst = utf8.AppendRune(dst, dec)
					i += 2
					continue
				}
			}
			r = utf8.RuneError
		}
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// appendANSI appends single-byte text: UTF-8 when it is valid, otherwise
// Latin-1 (Windows-1252's printable range), without trailing NULs.
func appendANSI(dst []byte, b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	if utf8.Valid(b) {
		return append(dst, b...)
	}
	for _, c := range b {
		dst = utf8.AppendRune(dst, rune(c))
	}
	return dst
}

func appendHex(dst []byte, v uint64) []byte {
	return strconv.AppendUint(append(dst, '0', 'x'), v, 16)
}

func appendHexUpper(dst []byte, b []byte) []byte {
	const upper = "0123456789ABCDEF"
	for _, c := range b {
		dst = append(dst, upper[c>>4], upper[c&0xf])
	}
	return dst
}

// appendGUID writes a GUID as Windows does: {XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX},
// the first three groups little-endian.
func appendGUID(dst []byte, b []byte) []byte {
	const upper = "0123456789ABCDEF"
	h := func(c byte) { dst = append(dst, upper[c>>4], upper[c&0xf]) }
	dst = append(dst, '{')
	for _, i := range [...]int{3, 2, 1, 0} {
		h(b[i])
	}
	dst = append(dst, '-')
	h(b[5])
	h(b[4])
	dst = append(dst, '-')
	h(b[7])
	h(b[6])
	dst = append(dst, '-')
	h(b[8])
	h(b[9])
	dst = append(dst, '-')
	for _, c := range b[10:16] {
		h(c)
	}
	return append(dst, '}')
}

// appendSID writes a security identifier as S-R-A-S1-S2-...
func appendSID(dst []byte, b []byte) []byte {
	if len(b) < 8 {
		return appendHexUpper(dst, b)
	}
	n := int(b[1])
	if len(b) < 8+4*n {
		return appendHexUpper(dst, b)
	}
	var auth uint64
	for _, c := range b[2:8] {
		auth = auth<<8 | uint64(c)
	}
	dst = append(dst, 'S', '-')
	dst = strconv.AppendUint(dst, uint64(b[0]), 10)
	dst = append(dst, '-')
	dst = strconv.AppendUint(dst, auth, 10)
	for i := range n {
		dst = append(dst, '-')
		dst = strconv.AppendUint(dst, uint64(binary.LittleEndian.Uint32(b[8+4*i:])), 10)
	}
	return dst
}

// filetime converts a Windows FILETIME (100 ns ticks since 1601) to a time.
func filetime(v uint64) time.Time {
	const unixEpoch = 11644473600                                    // seconds from 1601-01-01 to 1970-01-01
	return time.Unix(int64(v/1e7)-unixEpoch, int64(v%1e7)*100).UTC() //nolint:gosec // G115: v/1e7 < 2^61
}

// systime converts a SYSTEMTIME structure to a time; an impossible one
// gives the zero time.
func systime(b []byte) time.Time {
	u := func(i int) int { return int(binary.LittleEndian.Uint16(b[2*i:])) }
	y, mo, d, h, mi, s, ms := u(0), u(1), u(3), u(4), u(5), u(6), u(7)
	if mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60 || ms > 999 {
		return time.Time{}
	}
	return time.Date(y, time.Month(mo), d, h, mi, s, ms*1e6, time.UTC)
}

// appendTime writes t as Windows writes SystemTime: ISO 8601 UTC with
// seven fractional digits.
func appendTime(dst []byte, t time.Time) []byte {
	return t.AppendFormat(dst, "2006-01-02T15:04:05.0000000Z")
}
