package attribution

import (
	"cmp"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// MaxTransfers bounds the records listed per destination.
const MaxTransfers = 25

// Taken sums what hosts sent to the outside addresses infra, from the
// records of uploads (store.Analytics.Uploads of the connections to and
// from infra). Bytes are the conn log's payload: the originator's bytes
// of connections a host opened to infra, the responder's of those infra
// opened to a host (a web shell's operator downloading). HTTP and files
// records are the transfers behind them: listed, not added again.
// names gives server names already known per address (an exfiltration
// finding's). The result is ordered by bytes, most first.
func Taken(hosts, infra []netip.Addr, names map[netip.Addr][]string, uploads []store.Upload) ([]correlate.Taken, int64) {
	isHost := set(hosts)
	isInfra := set(infra)
	type agg struct {
		t      correlate.Taken
		hosts  map[netip.Addr]bool
		names  map[string]bool
		days   map[string]int64
		conns  []correlate.Transferred
		named  []correlate.Transferred
		counts bool
	}
	by := map[netip.Addr]*agg{}
	get := func(dst netip.Addr) *agg {
		a := by[dst]
		if a == nil {
			a = &agg{t: correlate.Taken{Dst: dst}, hosts: map[netip.Addr]bool{}, names: map[string]bool{}, days: map[string]int64{}}
			for _, n := range names[dst] {
				a.names[n] = true
			}
			by[dst] = a
		}
		return a
	}
	for i := range uploads {
		u := &uploads[i]
		// Which end is ours, which theirs, and how much ours sent.
		var host, dst netip.Addr
		var sent int64
		switch {
		case isHost[u.Src] && isInfra[u.Dst]:
			host, dst, sent = u.Src, u.Dst, u.Bytes
		case isInfra[u.Src] && isHost[u.Dst] && u.Log != "files":
			host, dst, sent = u.Dst, u.Src, u.Received
		default:
			continue
		}
		a := get(dst)
		x := correlate.Transferred{At: u.TS, Log: u.Log, Src: u.Src, Dst: u.Dst, Port: u.DstPort, Bytes: sent, Method: u.Method, Host: u.Host,
			URI: u.URI, Name: u.Filename, MIME: u.MIME, MD5: u.MD5, SHA1: u.SHA1, SHA256: u.SHA256, File: u.File, Line: u.Line}
		if u.Host != "" && u.Src == host {
			a.names[u.Host] = true // the name the host asked for; not ours, asked of us
		}
		switch u.Log {
		case "conn":
			if sent <= 0 {
				continue
			}
			a.counts = true
			a.hosts[host] = true
			a.t.Bytes += sent
			a.t.Conns++
			a.days[u.TS.UTC().Format(time.DateOnly)] += sent
			if a.t.First.IsZero() || u.TS.Before(a.t.First) {
				a.t.First = u.TS
			}
			a.t.Last = event.Latest(a.t.Last, u.TS)
			a.conns = append(a.conns, x)
		default:
			if sent > 0 || x.Name != "" {
				a.named = append(a.named, x)
			}
		}
	}
	var out []correlate.Taken
	var total int64
	for _, a := range by {
		if !a.counts {
			continue
		}
		t := a.t
		t.Hosts = slices.SortedFunc(maps.Keys(a.hosts), netip.Addr.Compare)
		t.Names = slices.Sorted(maps.Keys(a.names))
		for _, d := range slices.Sorted(maps.Keys(a.days)) {
			t.PerDay = append(t.PerDay, correlate.DayBytes{Day: d, Bytes: uint64(a.days[d])}) //nolint:gosec // G115: sums of non-negative byte counts
		}
		largest := func(x, y correlate.Transferred) int {
			return cmp.Or(cmp.Compare(y.Bytes, x.Bytes), x.At.Compare(y.At), cmp.Compare(x.File, y.File), cmp.Compare(x.Line, y.Line))
		}
		slices.SortFunc(a.named, largest)
		slices.SortFunc(a.conns, largest)
		t.Transfers = append(t.Transfers, a.named[:min(len(a.named), MaxTransfers)]...)
		t.Transfers = append(t.Transfers, a.conns[:min(len(a.conns), max(5, MaxTransfers-len(t.Transfers)))]...)
		total += t.Bytes
		out = append(out, t)
	}
	slices.SortFunc(out, func(x, y correlate.Taken) int { return cmp.Or(cmp.Compare(y.Bytes, x.Bytes), x.Dst.Compare(y.Dst)) })
	return out, total
}

func set(as []netip.Addr) map[netip.Addr]bool {
	m := make(map[netip.Addr]bool, len(as))
	for _, a := range as {
		m[a] = true
	}
	return m
}

// CollectionEvents are the Windows event ids HostActions reads: Sysmon's
// process creation and file creation, Security's process creation and
// file-share access.
func CollectionEvents() []uint32 { return []uint32{1, 11, 4688, 5140, 5145} }

var (
	archiveExt = regexp.MustCompile(`(?i)\.(rar|zip|7z|tar|tgz|gz|bz2|xz|cab|arj|ace|pst|ost)$`)
	// Archivers run to pack files: rar/winrar/7-Zip "a", makecab, tar -c,
	// PowerShell's Compress-Archive.
	archiver = regexp.MustCompile(`(?i)(?:\b(?:rar|winrar|7z|7za|7zr)(?:\.exe)?"?\s+a\b|\bmakecab(?:\.exe)?\b|\btar(?:\.exe)?"?\s+-?[a-z]*c|Compress-Archive)`)
)

// HostAction reads one host event for what it shows of collection:
// an archive written (Sysmon 11 of an archive's name, an archiver's command
// line in Sysmon 1 or Security 4688), a mailbox exported (the Exchange
// cmdlets), a share read (Security 5140 and 5145). Other events: false.
func HostAction(e *event.HostEvent) (correlate.HostAction, bool) {
	f := func(n string) string { v, _ := e.Field(n); return v }
	a := correlate.HostAction{At: e.TS, Computer: e.Computer, EventID: int(e.EventID), File: e.Src.File, Line: e.Src.Line}
	sysmon := strings.Contains(e.Channel, "Sysmon")
	switch {
	case sysmon && e.EventID == 11:
		name := f("TargetFilename")
		if !archiveExt.MatchString(name) {
			return a, false
		}
		a.What, a.Object, a.Account = "archive created", name, f("User")
	case (sysmon && e.EventID == 1) || (e.Channel == "Security" && e.EventID == 4688):
		cmd := f("CommandLine")
		a.Account = cmp.Or(f("User"), joinAccount(f("SubjectDomainName"), f("SubjectUserName")))
		switch {
		case detect.MailboxExport(cmd):
			a.What, a.Object = "mailbox exported", cmd
		case archiver.MatchString(cmd):
			a.What, a.Object = "archive created", cmd
		default:
			return a, false
		}
	case e.Channel == "Security" && (e.EventID == 5140 || e.EventID == 5145):
		share := f("ShareName")
		if share == "" || strings.HasSuffix(strings.TrimRight(share, "\\"), "$") { // IPC$, ADMIN$, C$: not data shares
			return a, false
		}
		a.What, a.Object = "share read", share
		if rel := f("RelativeTargetName"); rel != "" && e.EventID == 5145 {
			a.Object = strings.TrimRight(share, "\\") + "\\" + rel
		}
		a.Account = joinAccount(f("SubjectDomainName"), f("SubjectUserName"))
	default:
		return a, false
	}
	return a, true
}

func joinAccount(domain, user string) string {
	if domain == "" || user == "" {
		return user
	}
	return domain + "\\" + user
}

// SameComputer reports whether a computer name from an event is one of
// names (case ignored, a fully qualified name matching its first label).
func SameComputer(computer string, names []string) bool {
	short := func(s string) string { h, _, _ := strings.Cut(strings.ToLower(s), "."); return h }
	return slices.ContainsFunc(names, func(n string) bool { return short(n) == short(computer) })
}

// Scope is what of an incident host events are read for: its computers,
// and for share reads its accounts and addresses.
type Scope struct {
	Computers []string     // names as the events give them
	Accounts  []string     // DOMAIN\user or user
	Addrs     []netip.Addr // its internal hosts
}

// reader reports whether a share read is the incident's: by one of its
// accounts, or from one of its hosts. Everyone reads shares; only these
// reads are evidence.
func (s Scope) reader(a *correlate.HostAction, e *event.HostEvent) bool {
	if ip, ok := e.Field("IpAddress"); ok {
		if x, err := netip.ParseAddr(strings.TrimPrefix(ip, "::ffff:")); err == nil && slices.Contains(s.Addrs, x) {
			return true
		}
	}
	user := func(acct string) string {
		_, u, found := strings.Cut(acct, "\\")
		if !found {
			u = acct
		}
		return strings.ToLower(u)
	}
	return a.Account != "" && slices.ContainsFunc(s.Accounts, func(x string) bool { return user(x) == user(a.Account) })
}

// Collection returns what events of the scope's computers show of
// collection (HostAction), one entry per computer, action and object with
// the first event's time and provenance and the count, in time order.
func Collection(events []event.HostEvent, scope Scope) []correlate.HostAction {
	idx := map[[3]string]int{}
	var out []correlate.HostAction
	for i := range events {
		e := &events[i]
		if !SameComputer(e.Computer, scope.Computers) {
			continue
		}
		a, ok := HostAction(e)
		if !ok || (a.What == "share read" && !scope.reader(&a, e)) {
			continue
		}
		k := [3]string{strings.ToLower(a.Computer), a.What, a.Object}
		if j, seen := idx[k]; seen {
			out[j].Count++
			if a.At.Before(out[j].At) {
				a.Count = out[j].Count
				out[j] = a
			}
			continue
		}
		a.Count = 1
		idx[k] = len(out)
		out = append(out, a)
	}
	slices.SortStableFunc(out, func(x, y correlate.HostAction) int { return x.At.Compare(y.At) })
	return out
}
