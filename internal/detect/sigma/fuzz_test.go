package sigma

import "testing"

// FuzzParse loads rules from arbitrary YAML (rules come from outside:
// SigmaHQ, a CERT, a colleague): never a panic, and a rule that loads
// evaluates on an event without one.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"title: t\nid: 1\nlogsource: {product: windows, category: process_creation}\ndetection:\n  s:\n    Image|endswith: '\\cmd.exe'\n" +
			"    CommandLine|contains|all: [a, b]\n  f:\n    User|re|i: '^nt auth'\n  condition: s and not f\n",
		"title: t\nid: 2\nlogsource: {product: windows}\ndetection:\n  k:\n    - 'mimi*katz'\n    - 'a\\*b'\n  c:\n    - A|base64offset|contains: x\n" +
			"    - B|windash|contains: ' -e '\n  condition: 1 of k or all of c*\n",
		"title: t\nid: 3\nlogsource: {product: windows}\ndetection:\n  s:\n    A|cidr: 10.0.0.0/8\n    B: null\n    C|exists: true\n" +
			"    D|fieldref: E\n    F|gte: 3\n  condition: (s)\n",
	} {
		f.Add([]byte(s))
	}
	ev := mapEvent{"Image": `C:\Windows\cmd.exe`, "CommandLine": "a b -e x", "User": "NT AUTHORITY", "A": "10.1.2.3", "C": "", "D": "x", "E": "X", "F": "4"}
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, _ := Parse("fuzz.yml", data, Options{Placeholders: map[string][]string{"p": {"x"}}})
		for _, r := range rules {
			r.cond.eval(ev, r)
		}
	})
}
