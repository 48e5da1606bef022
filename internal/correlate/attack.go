package correlate

import (
	"cmp"
	"slices"
	"strings"
)

// tactics orders ATT&CK tactics as an intrusion goes: in, settle, move,
// take, out (the issue's "initial access → C2 → lateral movement →
// collection → exfiltration", with the tactics between them).
var tactics = []string{
	"initial-access", "execution", "persistence", "privilege-escalation", "defense-evasion", "credential-access",
	"discovery", "command-and-control", "lateral-movement", "collection", "exfiltration", "impact",
}

// tacticOf maps the techniques dwell's detectors and intel name to their
// tactic (a technique in several takes the first in an intrusion).
var tacticOf = map[string]string{
	"T1190": "initial-access", "T1133": "initial-access", "T1566": "initial-access", "T1078": "initial-access",
	"T1059": "execution", "T1047": "execution", "T1053": "execution",
	"T1505": "persistence", "T1543": "persistence", "T1547": "persistence",
	"T1068": "privilege-escalation",
	"T1070": "defense-evasion", "T1027": "defense-evasion",
	"T1110": "credential-access", "T1003": "credential-access", "T1558": "credential-access",
	"T1046": "discovery", "T1018": "discovery", "T1087": "discovery",
	"T1071": "command-and-control", "T1573": "command-and-control", "T1572": "command-and-control", "T1090": "command-and-control",
	"T1105": "command-and-control", "T1568": "command-and-control", "T1095": "command-and-control", "T1571": "command-and-control",
	"T1021": "lateral-movement", "T1570": "lateral-movement", "T1550": "lateral-movement",
	"T1039": "collection", "T1560": "collection", "T1005": "collection", "T1114": "collection",
	"T1048": "exfiltration", "T1041": "exfiltration", "T1567": "exfiltration", "T1030": "exfiltration", "T1029": "exfiltration",
	"T1498": "impact", "T1499": "impact", "T1486": "impact",
}

// Tactic returns the tactic dwell files a technique id under ("T1071.001"
// goes with T1071), "" when it does not know it.
func Tactic(technique string) string {
	base, _, _ := strings.Cut(technique, ".")
	return tacticOf[base]
}

// OrderByTactic sorts technique ids by tactic, in the order of an
// intrusion, then by id; unknown ones last.
func OrderByTactic(ids []string) []string {
	rank := func(t string) int {
		if i := slices.Index(tactics, Tactic(t)); i >= 0 {
			return i
		}
		return len(tactics)
	}
	out := slices.Clone(ids)
	slices.SortFunc(out, func(a, b string) int { return cmp.Or(cmp.Compare(rank(a), rank(b)), strings.Compare(a, b)) })
	return slices.Compact(out)
}

// Tactics returns the ATT&CK tactics in the order of an intrusion.
func Tactics() []string { return slices.Clone(tactics) }
