package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Allow-list entries made from false-positive verdicts are kept in the
// store, beside the configuration's allow section, so that the analyst
// who closes an incident as a false positive can drop the infrastructure
// behind it from later hunts without editing the configuration; each
// entry says who added it, when, why and from which incident. Hunts merge
// them with the configuration's.

const allowKey = "allow:entries"

// allowEntry is one allow-listed value.
type allowEntry struct {
	Value    string    `json:"value"` // an address, a prefix, a domain, or SRC->DST
	Kind     string    `json:"kind"`  // net, domain or pair
	Reason   string    `json:"reason"`
	By       string    `json:"by"`
	At       time.Time `json:"at"`
	Incident string    `json:"incident,omitempty"`
}

func loadAllow(ctx context.Context, st interface {
	State(context.Context, string) (string, error)
}) ([]allowEntry, error) {
	v, err := st.State(ctx, allowKey)
	if err != nil || v == "" {
		return nil, err
	}
	var list []allowEntry
	if err := json.Unmarshal([]byte(v), &list); err != nil {
		return nil, fmt.Errorf("reading the stored allow-list: %w", err)
	}
	return list, nil
}

// allowKind classifies a value, or says why it cannot be allow-listed.
func allowKind(v string) (string, error) {
	if strings.Contains(v, "->") {
		if _, err := detect.ParsePair(v); err != nil {
			return "", err
		}
		return "pair", nil
	}
	if p, err := detect.ParsePrefix(v); err == nil {
		if p.Bits() < p.Addr().BitLen()-16 {
			return "", fmt.Errorf("%s is wider than a /%d: allow-list it in the configuration if you mean it", v, p.Addr().BitLen()-16)
		}
		return "net", nil
	}
	if _, err := netip.ParseAddr(v); err == nil {
		return "net", nil
	}
	d := strings.TrimPrefix(v, "=")
	if d == "" || strings.ContainsAny(d, " /\t:") || !strings.Contains(d, ".") {
		return "", fmt.Errorf("%q is not an address, a prefix, a domain or SRC->DST", v)
	}
	return "domain", nil
}

// withStoredAllow adds the store's allow-list entries to env.
func withStoredAllow(ctx context.Context, st store.Reader, env *detect.Env) error {
	list, err := loadAllow(ctx, st)
	if err != nil {
		return err
	}
	for _, e := range list {
		switch e.Kind {
		case "net":
			if p, err := detect.ParsePrefix(e.Value); err == nil {
				env.Allow.Nets = append(env.Allow.Nets, p)
			}
		case "domain":
			env.Allow.Domains = append(env.Allow.Domains, e.Value)
		case "pair":
			if p, err := detect.ParsePair(e.Value); err == nil {
				env.Allow.Pairs = append(env.Allow.Pairs, p)
			}
		}
	}
	return nil
}

func allowCommand() command {
	return command{
		name:    "allow",
		summary: "allow-list known-good infrastructure in the store (false-positive verdicts): add, list, remove",
		usage:   "allow add|list|remove [--db FILE] [--reason TEXT] [--incident ID] [--by NAME] [VALUE...]",
		example: `  dwell allow add --reason "the backup provider" --incident INC-5adc20b96c 198.51.100.20 backup.example.net
  dwell allow add --reason "our scanner" "10.9.9.9->0.0.0.0/0"
  dwell allow list
  dwell allow remove backup.example.net

Values: an address or prefix (at most 65,536 addresses), a domain (with
its subdomains; "=name" for the name only) or SRC->DST. Later hunts drop
findings about them, as they do for the configuration's allow section.
`,
		run: runAllow,
	}
}

func runAllow(ctx context.Context, a *App, args []string) error {
	c := allowCommand()
	sub, err := subcommand(a, c, args, "add, list or remove")
	if err != nil || sub == "" {
		return err
	}
	var co common
	fs := a.newFlags(c, &co)
	reason := fs.String("reason", "", "why the values are known-good (`text`; required to add)")
	incident := fs.String("incident", "", "the incident whose verdict this is (`ID`)")
	by := fs.String("by", os.Getenv("USER"), "who adds them (`name`)")
	values, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	switch sub {
	case "list":
	case "add", "remove":
		if len(values) == 0 {
			return usagef("name the values to %s", sub)
		}
	default:
		return usagef("unknown subcommand %q: add, list or remove", sub)
	}
	if sub == "add" {
		if strings.TrimSpace(*reason) == "" {
			return usagef("--reason: say why these are known-good")
		}
		for _, v := range values {
			if _, err := allowKind(v); err != nil {
				return usagef("%v", err)
			}
		}
	}
	_, st, err := co.open(ctx, sub == "list")
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	list, err := loadAllow(ctx, st)
	if err != nil {
		return err
	}
	if sub == "list" {
		if len(list) == 0 {
			fmt.Fprintln(a.Stdout, "no allow-list entries in the store (the configuration may have its own)")
		}
		for _, e := range list {
			fmt.Fprintf(a.Stdout, "%-40s %-6s %s by %s: %s%s\n", sanitize(e.Value, 40), e.Kind, e.At.Format(time.DateOnly), sanitize(e.By, 30),
				sanitize(e.Reason, 200), map[bool]string{true: " (" + e.Incident + ")"}[e.Incident != ""])
		}
		return nil
	}
	for _, v := range values {
		i := slices.IndexFunc(list, func(e allowEntry) bool { return e.Value == v })
		switch {
		case sub == "remove" && i < 0:
			return fmt.Errorf("%s is not in the stored allow-list", sanitize(v, 80))
		case sub == "remove":
			list = slices.Delete(list, i, i+1)
			fmt.Fprintf(a.Stdout, "removed %s\n", sanitize(v, 80))
		case i >= 0:
			fmt.Fprintf(a.Stdout, "%s is already allow-listed\n", sanitize(v, 80))
		default:
			kind, _ := allowKind(v)
			list = append(list, allowEntry{Value: v, Kind: kind, Reason: *reason, By: *by, At: a.Now().UTC(), Incident: *incident})
			fmt.Fprintf(a.Stdout, "allow-listed %s (%s): the next hunt drops findings about it\n", sanitize(v, 80), kind)
		}
	}
	data, err := json.Marshal(list)
	if err != nil {
		return err
	}
	return st.SetState(ctx, allowKey, string(data))
}
