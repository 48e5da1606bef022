package detect

import (
	"net/netip"
	"strings"

	"github.com/dwell-nsm/dwell/internal/event"
)

// HostAddrs learns which address each computer has from its own Windows
// events: the source of the network connections Sysmon saw it start
// (event 3, Initiated). Host findings name a computer; with its address
// they join the network findings about it in one incident.
type HostAddrs struct {
	seen map[string]map[netip.Addr]int
}

// Add learns from one event (other events than Sysmon 3 are ignored).
func (h *HostAddrs) Add(e *event.HostEvent) {
	if e.EventID != 3 || !strings.Contains(e.Channel, "Sysmon") {
		return
	}
	if v, _ := e.Field("Initiated"); !strings.EqualFold(v, "true") {
		return
	}
	src, _ := e.Field("SourceIp")
	a, err := netip.ParseAddr(src)
	if err != nil || a.IsLoopback() || a.IsUnspecified() || a.IsLinkLocalUnicast() {
		return
	}
	if h.seen == nil {
		h.seen = map[string]map[netip.Addr]int{}
	}
	m := h.seen[e.Computer]
	if m == nil {
		m = map[netip.Addr]int{}
		h.seen[strings.Clone(e.Computer)] = m // kept: not the event's memory
	}
	m[a.Unmap()]++
}

// Addr returns the address a computer's events show most, IPv4 first
// (what network sensors see of a ministry's hosts); the zero Addr when
// none.
func (h *HostAddrs) Addr(computer string) netip.Addr {
	var best netip.Addr
	n := 0
	for a, c := range h.seen[computer] {
		if a.Is4() {
			c += 1 << 30
		}
		if c > n || (c == n && a.Less(best)) {
			best, n = a, c
		}
	}
	return best
}
