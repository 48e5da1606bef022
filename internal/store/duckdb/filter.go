package duckdb

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/dwell-nsm/dwell/internal/store"
)

// Network conditions in SQL, for LocalAddrs: the distinct addresses of a
// window are few (thousands where records are millions), so they are
// tested against the local networks once, and everything else filters on
// that list (sidesCond). Addresses are stored as text (netip's
// canonical form), and DuckDB's inet extension is not loaded (extensions
// are off), so membership of a prefix is tested on the text:
//
//   - IPv4 a.b.c.d/L: the first L/8 octets as a string prefix, and the
//     next octet's value in range when L is not a multiple of 8. Exact.
//   - IPv6 p/L with L <= 16: the first group's value in range (0 for text
//     starting "::"). Exact.
//   - IPv6 p/L with L > 16: the first group only. A superset: LocalAddrs
//     checks each address again in Go.

// netCond returns SQL conditions on column col: sure holds for addresses
// certainly in nets, maybe for every address that may be.
func netCond(col string, nets []netip.Prefix) (sure, maybe string) {
	var sures, maybes []string
	for _, p := range nets {
		p = p.Masked()
		c, exact := prefixCond(col, p)
		maybes = append(maybes, c)
		if exact {
			sures = append(sures, c)
		}
	}
	return orAll(sures), orAll(maybes)
}

func orAll(conds []string) string {
	if len(conds) == 0 {
		return "false"
	}
	return "(" + strings.Join(conds, " OR ") + ")"
}

// prefixCond returns the condition for one prefix and whether it is
// exact. IPv4-mapped IPv6 addresses ("::ffff:10.0.0.1") count as IPv4, as
// detect.Env.IsLocal has it.
func prefixCond(col string, p netip.Prefix) (string, bool) {
	if p.Addr().Is4() {
		mapped := "starts_with(" + col + ", '::ffff:') AND contains(" + col + ", '.')"
		return "(" + v4Cond(col, p) + " OR (" + mapped + " AND " + v4Cond("substr("+col+", 8)", p) + "))", true
	}
	return v6Cond(col, p)
}

// v4Cond tests IPv4 text.
func v4Cond(col string, p netip.Prefix) string {
	o := p.Addr().As4()
	full, rest := p.Bits()/8, p.Bits()%8
	conds := []string{"NOT contains(" + col + ", ':')"}
	if full > 0 {
		parts := make([]string, full)
		for i := range full {
			parts[i] = fmt.Sprint(o[i])
		}
		lit := strings.Join(parts, ".")
		if full == 4 {
			conds = append(conds, col+" = '"+lit+"'")
		} else {
			conds = append(conds, "starts_with("+col+", '"+lit+".')")
		}
	}
	if rest > 0 {
		lo := int(o[full])
		hi := lo + (1 << (8 - rest)) - 1
		conds = append(conds, fmt.Sprintf("TRY_CAST(split_part(%s, '.', %d) AS INTEGER) BETWEEN %d AND %d", col, full+1, lo, hi))
	}
	return "(" + strings.Join(conds, " AND ") + ")"
}

// v6Cond tests IPv6 text on its first group (mapped IPv4 excluded).
func v6Cond(col string, p netip.Prefix) (string, bool) {
	bits := p.Bits()
	a := p.Addr().As16()
	first := int(a[0])<<8 | int(a[1])
	n := min(bits, 16)
	lo := first &^ (1<<(16-n) - 1)
	hi := lo + 1<<(16-n) - 1
	group := fmt.Sprintf("CASE WHEN starts_with(%s, '::') THEN 0 ELSE TRY_CAST('0x' || split_part(%s, ':', 1) AS INTEGER) END", col, col)
	return fmt.Sprintf("(contains(%s, ':') AND NOT (starts_with(%s, '::ffff:') AND contains(%s, '.')) AND %s BETWEEN %d AND %d)",
		col, col, col, group, lo, hi), bits <= 16
}

// sidesCond returns the SQL condition keeping the records sides keeps, and
// its arguments: membership of the Inside list, a hash join in DuckDB.
func sidesCond(sides store.Sides, src, dst string) (string, []any) {
	conds := []string{"true"}
	var args []any
	for _, x := range []struct {
		col   string
		scope store.Scope
	}{{src, sides.Src}, {dst, sides.Dst}} {
		switch x.scope {
		case store.Inside:
			conds = append(conds, x.col+" IN (SELECT unnest(?::VARCHAR[]))")
		case store.Outside:
			conds = append(conds, x.col+" NOT IN (SELECT unnest(?::VARCHAR[]))")
		default:
			continue
		}
		args = append(args, addrList(sides.Inside))
	}
	return strings.Join(conds, " AND "), args
}

// addrList returns addresses as a SQL list parameter.
func addrList(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}
