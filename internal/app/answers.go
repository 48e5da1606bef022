package app

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/detect"
)

// writeAnswers prints the section "Origin, data taken, attribution" of an
// incident: the prosecutors' three questions in plain sentences, the
// evidence beneath each (docs/attribution.md).
func writeAnswers(w io.Writer, inc *correlate.Incident) {
	fmt.Fprintln(w, "\nOrigin, data taken, attribution:")
	fmt.Fprintf(w, "  Where it came from: %s (The infrastructure above gives each address.)\n", sanitize(inc.OriginSentence(), 600))
	ans := inc.Answers
	if ans == nil {
		return
	}
	if n := len(ans.PassiveDNS); n > 0 {
		fmt.Fprintf(w, "    passive DNS (%d name-address pair(s) over all history):\n", n)
		for i, x := range ans.PassiveDNS {
			if i == 10 {
				fmt.Fprintf(w, "      ... %d more in the JSON form\n", n-i)
				break
			}
			fmt.Fprintf(w, "      %-40s %-15s %-4s %d record(s), %s to %s\n", sanitize(x.Name, 40), x.Addr, x.Log, x.Count,
				x.First.UTC().Format(time.DateOnly), x.Last.UTC().Format(time.DateOnly))
		}
	}
	fmt.Fprintf(w, "  What was taken: %s\n", sanitize(ans.TakenSentence(), 400))
	for _, t := range ans.Taken {
		names := ""
		if len(t.Names) > 0 {
			names = " (" + sanitize(strings.Join(t.Names, ", "), 120) + ")"
		}
		fmt.Fprintf(w, "    %s%s: %s in %d connection(s) on %d day(s), %s to %s, from %s\n", t.Dst, names, detect.HumanBytes(uint64(max(t.Bytes, 0))),
			t.Conns, len(t.PerDay), t.First.UTC().Format(time.DateOnly), t.Last.UTC().Format(time.DateOnly), addrList(t.Hosts))
		shown := 0
		for _, x := range t.Transfers {
			if shown == 5 {
				fmt.Fprintf(w, "      ... %d more record(s) in the JSON form\n", len(t.Transfers)-shown)
				break
			}
			fmt.Fprintf(w, "      %s  %s\n", x.At.UTC().Format("2006-01-02 15:04"), transferLine(&x))
			shown++
		}
	}
	for _, a := range ans.HostActions {
		n := ""
		if a.Count > 1 {
			n = fmt.Sprintf(" (%d events)", a.Count)
		}
		acct := ""
		if a.Account != "" {
			acct = " by " + sanitize(a.Account, 60)
		}
		fmt.Fprintf(w, "    %s  %s %s%s: %s%s  [event %d, %s:%d]\n", a.At.UTC().Format("2006-01-02 15:04"), sanitize(a.Computer, 40), a.What, acct,
			sanitize(a.Object, 200), n, a.EventID, sanitize(a.File, 80), a.Line)
	}
	fmt.Fprintf(w, "  Who is behind it: %s\n", sanitize(ans.WhoSentence(), 400))
	for i, h := range ans.Hypotheses {
		if i == 5 {
			fmt.Fprintf(w, "    ... %d more hypothesis(es) in the JSON form\n", len(ans.Hypotheses)-i)
			break
		}
		fmt.Fprintf(w, "    %d. %s  score %.2f (intel %.2f, behaviour %.2f)\n", i+1, sanitize(h.Line(), 200), h.Score, h.Intel, h.Behaviour)
		for _, s := range h.For {
			fmt.Fprintf(w, "       for:     %s\n", sanitize(s, 300))
		}
		for _, s := range h.Against {
			fmt.Fprintf(w, "       against: %s\n", sanitize(s, 300))
		}
	}
	if ans.Catalogue != "" {
		fmt.Fprintf(w, "    compared with %s\n", sanitize(ans.Catalogue, 300))
	}
	for _, n := range ans.Notes {
		fmt.Fprintf(w, "    note: %s\n", sanitize(n, 300))
	}
	fmt.Fprintf(w, "    caveat: %s\n", ans.Caveat)
}

func transferLine(x *correlate.Transferred) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s -> %s:%d %s", x.Log, x.Src, x.Dst, x.Port, detect.HumanBytes(uint64(max(x.Bytes, 0))))
	if x.Method != "" || x.URI != "" {
		fmt.Fprintf(&b, " %s %s%s", sanitize(x.Method, 10), sanitize(x.Host, 60), sanitize(x.URI, 120))
	}
	if x.Name != "" {
		fmt.Fprintf(&b, " file %q", sanitize(x.Name, 100))
	}
	if x.MIME != "" {
		fmt.Fprintf(&b, " %s", sanitize(x.MIME, 60))
	}
	if x.SHA256 != "" {
		fmt.Fprintf(&b, " sha256 %s", sanitize(x.SHA256, 64))
	} else if x.MD5 != "" {
		fmt.Fprintf(&b, " md5 %s", sanitize(x.MD5, 32))
	}
	fmt.Fprintf(&b, "  [%s:%d]", sanitize(x.File, 80), x.Line)
	return b.String()
}

func addrList[T fmt.Stringer](as []T) string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return strings.Join(out, ", ")
}
