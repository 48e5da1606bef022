package intel

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Lists and CSV: the simplest intel there is. A plain list has one value a
// line ("#" starts a comment); a CSV file has a header naming its columns:
// the value ("value", "indicator", "ioc"), and optionally "type" (a dwell
// or MISP type), "comment"/"description", "tlp", "confidence", "tags".
// Without a type, it is guessed from the value.

// GuessType returns the indicator type a bare value looks like.
func GuessType(v string) (event.IOCType, bool) {
	v = strings.TrimSpace(v)
	if _, err := netip.ParseAddr(strings.Trim(v, "[]")); err == nil {
		return event.IOCIP, true
	}
	if _, err := netip.ParsePrefix(v); err == nil {
		return event.IOCCIDR, true
	}
	if hexOnly.MatchString(strings.ToLower(v)) {
		switch len(v) {
		case 32:
			return event.IOCMD5, true
		case 40:
			return event.IOCSHA1, true
		case 64:
			return event.IOCSHA256, true
		}
	}
	if strings.Contains(v, "://") {
		return event.IOCURL, true
	}
	if strings.Contains(v, "@") {
		return event.IOCEmail, true
	}
	if _, err := normDomain(v); err == nil {
		return event.IOCDomain, true
	}
	if strings.Contains(v, "/") {
		if _, err := normURL(v); err == nil {
			return event.IOCURL, true
		}
	}
	return "", false
}

// typeNamed reads a type column: dwell's names or MISP's.
func typeNamed(s string) (event.IOCType, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if t, ok := mispType(s); ok {
		return t, true
	}
	if t := event.IOCType(s); t.Valid() {
		return t, true
	}
	switch s {
	case "ipv4", "ipv6", "ip-address", "ipv4-addr", "ipv6-addr":
		return event.IOCIP, true
	case "domain-name", "fqdn":
		return event.IOCDomain, true
	case "ja3-md5":
		return event.IOCJA3, true
	}
	return "", false
}

// ParseList reads a CSV file with a header, or a plain list.
func ParseList(data []byte, source string) (*Result, error) {
	first, _, _ := bytes.Cut(data, []byte("\n"))
	if header, ok := csvHeader(string(first)); ok {
		return parseCSV(data, source, header)
	}
	r := &Result{Format: "list"}
	n := 0
	for line := range bytes.Lines(data) {
		n++
		s := strings.TrimSpace(string(line))
		if i := strings.Index(s, "#"); i >= 0 {
			s = strings.TrimSpace(s[:i])
		}
		if s == "" {
			continue
		}
		r.count("line")
		addGuessed(r, event.Indicator{Source: source, Ref: fmt.Sprintf("line %d", n), Confidence: -1, Actionable: true}, s, "")
	}
	if r.Objects["line"] == 0 {
		return nil, errors.New("no values")
	}
	return r, nil
}

// csvHeader recognises a header line and returns the column of each
// known field.
func csvHeader(line string) (map[string]int, bool) {
	recs, err := csv.NewReader(strings.NewReader(line)).Read()
	if err != nil || len(recs) < 2 {
		return nil, false
	}
	h := map[string]int{}
	for i, c := range recs {
		switch strings.ToLower(strings.TrimSpace(c)) {
		case "value", "indicator", "ioc", "observable":
			h["value"] = i
		case "type", "indicator_type", "ioc_type":
			h["type"] = i
		case "comment", "description", "name":
			h["comment"] = i
		case "tlp":
			h["tlp"] = i
		case "confidence":
			h["confidence"] = i
		case "tags", "tag", "labels":
			h["tags"] = i
		}
	}
	_, ok := h["value"]
	return h, ok
}

func parseCSV(data []byte, source string, h map[string]int) (*Result, error) {
	r := &Result{Format: "csv"}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	line := 0
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line++
		if err != nil {
			r.skip(fmt.Sprintf("line %d", line), "", "bad CSV: "+err.Error())
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				continue
			}
			return nil, err
		}
		if line == 1 {
			continue // the header
		}
		col := func(name string) string {
			if i, ok := h[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		r.count("row")
		ind := event.Indicator{Source: source, Ref: fmt.Sprintf("line %d", line), Name: col("comment"), Confidence: -1, Actionable: true}
		if l, ok := TLPOf("tlp:" + strings.TrimPrefix(strings.ToLower(col("tlp")), "tlp:")); ok {
			ind.TLP = l
		}
		if c, err := strconv.Atoi(col("confidence")); err == nil && c >= 0 && c <= 100 {
			ind.Confidence = c
		}
		if t := col("tags"); t != "" {
			for _, tag := range strings.FieldsFunc(t, func(r rune) bool { return r == ';' || r == '|' }) {
				ind.Tags = append(ind.Tags, strings.TrimSpace(tag))
				ind.Attack = union(ind.Attack, AttackIDs(tag))
			}
		}
		addGuessed(r, ind, col("value"), col("type"))
	}
	return r, nil
}

// addGuessed adds one value of a named or guessed type.
func addGuessed(r *Result, ind event.Indicator, v, typeName string) {
	var t event.IOCType
	var ok bool
	if typeName != "" {
		if t, ok = typeNamed(typeName); !ok {
			r.skip(ind.Ref, typeName+" "+shorten(v, 60), "unknown type")
			return
		}
	} else if t, ok = GuessType(v); !ok {
		r.skip(ind.Ref, shorten(v, 60), "not an address, network, name, URL or hash")
		return
	}
	if t == event.IOCIP && strings.Contains(v, "/") {
		t = event.IOCCIDR
	}
	n, err := Normalize(t, v)
	if err != nil {
		r.skip(ind.Ref, string(t)+" "+shorten(v, 60), err.Error())
		return
	}
	ind.Type, ind.Value = t, n
	r.Indicators = append(r.Indicators, ind)
}
