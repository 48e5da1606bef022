package app

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/console"
	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/ingest"
	"github.com/dwell-nsm/dwell/internal/ingest/evtx"
	"github.com/dwell-nsm/dwell/internal/ingest/netflow"
	"github.com/dwell-nsm/dwell/internal/ingest/winlog"
	"github.com/dwell-nsm/dwell/internal/ingest/zeek"
	"github.com/dwell-nsm/dwell/internal/scenario"
	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/clickhouse"
	"github.com/dwell-nsm/dwell/internal/store/clickhouse/chtest"
	"github.com/dwell-nsm/dwell/internal/store/duckdb"
	"github.com/dwell-nsm/dwell/internal/store/storetest"
)

// chServers are the ClickHouse servers of this test binary (nil, with
// chSkip saying why, where ClickHouse is not installed).
var (
	chServers *chtest.Servers
	chSkip    string
)

// withClickHouse runs the tests with ClickHouse servers started, where
// installed, and stops them after.
func withClickHouse(m *testing.M) int {
	dir, err := os.MkdirTemp("", "dwell-app-clickhouse-")
	if err != nil {
		chSkip = err.Error()
		return m.Run()
	}
	defer func() { _ = os.RemoveAll(dir) }()
	if chServers, err = chtest.Start(context.Background(), dir); err != nil {
		chSkip = err.Error()
	} else {
		defer chServers.Stop()
	}
	return m.Run()
}

// TestBackendsAgree runs every detector over every detector case and over
// a generated scenario on the memory store (the reference), DuckDB,
// single-node ClickHouse and the two-shard cluster: the findings must be
// the same, scores equal to 1e-9.
func TestBackendsAgree(t *testing.T) {
	if chServers == nil {
		t.Skip(chSkip)
	}
	if testing.Short() {
		t.Skip("ingests a scenario into four stores; skipped with -short")
	}
	dirs, err := filepath.Glob("../detect/*/testdata/*")
	if err != nil {
		t.Fatal(err)
	}
	var cases []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "conn.log")); err == nil {
			cases = append(cases, d)
		}
	}
	if len(cases) < 5 {
		t.Fatalf("found %d detector cases: %v", len(cases), dirs)
	}
	// The generated scenario takes most of the test's time; under the
	// race detector (make race) it is left out, as the findings it
	// compares do not depend on timing, and the detector cases still
	// take every backend through the concurrent hunt.
	sc := t.TempDir()
	if !raceDetector {
		cfg := scenario.Default()
		cfg.Days, cfg.Hosts, cfg.Rate = 4, 60, 20_000
		if _, err := scenario.Generate(t.Context(), cfg, sc, nil); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, sc)
	}
	for _, dir := range cases {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			ref := huntOn(t, storetest.NewMem(), dir)
			if len(ref) == 0 {
				t.Fatal("the reference found nothing: the case tests nothing")
			}
			if dir == sc && !slices.ContainsFunc(slices.Collect(maps.Keys(ref)), func(k string) bool { return strings.HasPrefix(k, "ddos ") }) {
				t.Error("the reference found no DDoS in the scenario's flows")
			}
			if dir == sc && !slices.ContainsFunc(slices.Collect(maps.Keys(ref)), func(k string) bool { return strings.HasPrefix(k, "host ") }) {
				t.Error("the reference found nothing in the scenario's host events")
			}
			for name, open := range map[string]func() (store.Store, error){
				"duckdb": func() (store.Store, error) { return duckdb.Open(t.Context(), ":memory:", duckdb.Options{}) },
				"clickhouse": func() (store.Store, error) {
					return clickhouse.Open(t.Context(), chServers.SingleURL(), clickhouse.Options{})
				},
				"cluster": func() (store.Store, error) {
					return clickhouse.Open(t.Context(), chServers.ClusterURL(), clickhouse.Options{})
				},
			} {
				st, err := open()
				if err != nil {
					t.Fatal(err)
				}
				got := huntOn(t, st, dir)
				sameFindings(t, name, got, ref)
			}
		})
	}
}

// huntOn ingests the Zeek logs under dir into st, closes it after, and
// returns what every detector finds over all history.
func huntOn(t *testing.T, st store.Store, dir string) map[string]float64 {
	t.Helper()
	defer func() { _ = st.Close() }()
	ctx := t.Context()
	cands, err := ingest.Discover([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	formats := slices.Concat(winlog.Formats(), zeek.Formats(), netflow.Formats(), evtx.Formats())
	if _, err := ingest.New(st, ingest.Options{Formats: formats, Sensor: "test"}).Run(ctx, cands); err != nil {
		t.Fatal(err)
	}
	env := &detect.Env{Local: detect.DefaultLocal()}
	ds, err := detectors(env, config.DetectorNames())
	if err != nil {
		t.Fatal(err)
	}
	res, err := runDetectors(ctx, st, env, ds, store.Window{})
	if err != nil {
		t.Fatalf("%s: %v", st.Backend(), err)
	}
	out := map[string]float64{}
	for _, f := range res.Findings {
		k := fmt.Sprintf("%s %s %v>%v %s %s %v %s..%s %s", f.Detector, f.Sensor, f.Src, f.Dst, f.Domain, f.Host, f.Severity,
			f.FirstSeen.Format("2006-01-02T15:04:05.000000"), f.LastSeen.Format("2006-01-02T15:04:05.000000"), f.Summary)
		out[k] = f.Score
	}
	return out
}

func sameFindings(t *testing.T, backend string, got, want map[string]float64) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	bad := 0
	for _, k := range keys {
		g, gok := got[k]
		w, wok := want[k]
		switch {
		case !gok:
			t.Errorf("%s misses: %s", backend, k)
		case !wok:
			t.Errorf("%s adds: %s", backend, k)
		case math.Abs(g-w) > 1e-9:
			t.Errorf("%s scores %s %.12f, the reference %.12f", backend, k, g, w)
		default:
			continue
		}
		if bad++; bad > 10 {
			t.Fatalf("%s: more differences", backend)
		}
	}
}

// TestClickHouseCommands runs the commands an analyst uses with --db
// clickhouse://: ingest (twice: nothing doubles), query, intel import with
// its retro-hunt, hunt, incidents.
func TestClickHouseCommands(t *testing.T) {
	if chServers == nil {
		t.Skip(chSkip)
	}
	for _, db := range []string{chServers.SingleURL(), chServers.ClusterURL()} {
		code, out, errOut := runDwell(t, "ingest", "--db", db, "--complete", "../../examples/zeek")
		if code != ExitOK {
			t.Fatalf("ingest: exit %d\n%s%s", code, out, errOut)
		}
		count := func() string {
			code, out, errOut := runDwell(t, "query", "--db", db, "--format", "csv", "SELECT count() AS n FROM conn")
			if code != ExitOK {
				t.Fatalf("query: exit %d\n%s", code, errOut)
			}
			return out
		}
		first := count()
		if code, _, errOut := runDwell(t, "ingest", "--db", db, "--complete", "../../examples/zeek"); code != ExitOK {
			t.Fatalf("second ingest: exit %d: %s", code, errOut)
		}
		if again := count(); again != first || !strings.HasPrefix(first, "n\n") || first == "n\n0\n" {
			t.Errorf("conn rows after one ingest %q, after two %q", first, again)
		}
		if code, _, errOut := runDwell(t, "query", "--db", db, "DROP TABLE conn"); code == ExitOK || !strings.Contains(errOut, "read-only") {
			t.Errorf("DROP TABLE through dwell query: exit %d, %s", code, errOut)
		}
		iocs := filepath.Join(t.TempDir(), "iocs.txt")
		if err := os.WriteFile(iocs, []byte("8.8.8.8\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, out, errOut := runDwell(t, "intel", "import", "--db", db, iocs); code != ExitOK {
			t.Fatalf("intel import: exit %d\n%s%s", code, out, errOut)
		}
		code, out, errOut = runDwell(t, "hunt", "--db", db, "--format", "json")
		if code != ExitOK || !strings.Contains(out, `"incidents"`) {
			t.Fatalf("hunt: exit %d\n%s%s", code, out, errOut)
		}
		if code, _, errOut := runDwell(t, "incidents", "--db", db); code != ExitOK {
			t.Errorf("incidents: exit %d: %s", code, errOut)
		}
		// The web console's own queries run on ClickHouse too.
		qs := console.HostQueries(netip.MustParseAddr("10.55.100.105"))
		for _, f := range []detect.Finding{{Src: netip.MustParseAddr("10.55.100.105"), Dst: netip.MustParseAddr("165.227.88.15")},
			{Src: netip.MustParseAddr("10.55.100.105"), Domain: "example.com"}} {
			q, kind := console.RecordsQuery(&f)
			qs = append(qs, [2]string{kind, q})
		}
		for _, q := range qs {
			if code, out, errOut := runDwell(t, "query", "--db", db, "--format", "csv", q[1]); code != ExitOK || !strings.Contains(out, "\n") {
				t.Errorf("console query %s: exit %d: %s%s", q[0], code, out, errOut)
			}
		}
	}
}

// TestClickHouseSigmaNetwork runs Sigma's network rules over Zeek logs
// stored in ClickHouse, one server and the cluster.
func TestClickHouseSigmaNetwork(t *testing.T) {
	if chServers == nil {
		t.Skip(chSkip)
	}
	for _, db := range []string{chServers.SingleURL(), chServers.ClusterURL()} {
		sigmaNetworkRules(t, db)
	}
}
