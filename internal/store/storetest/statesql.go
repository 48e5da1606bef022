package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dwell-nsm/dwell/internal/store"
)

// StateQueries are statements that would read dwell's own state in every
// backend's SQL; each must be refused with store.ErrState.
var StateQueries = []string{
	"SELECT * FROM dwell_meta",
	"select value from DWELL_META",
	`SELECT value FROM "dwell_meta"`,
	"SELECT /* dwell_meta */ value FROM -- x\n dwell_meta",
	"WITH x AS (SELECT value FROM dwell_meta) SELECT * FROM x",
	"SELECT uid FROM conn WHERE uid IN (SELECT value FROM dwell_meta)",
	"SELECT uid FROM conn UNION ALL SELECT value FROM dwell_meta",
	"SELECT c.uid, m.value FROM conn AS c CROSS JOIN dwell_meta AS m",
	"SELECT count(*) FROM (SELECT * FROM (SELECT value FROM dwell_meta) AS a) AS b",
}

// secret is the state value the refused queries must never return.
const secret = "TLP:RED incident, named people only"

// testStateSQL keeps a secret in the state and checks that analysts' SQL
// cannot read it, while a query that only mentions the name in a string
// or reads telemetry still runs.
func testStateSQL(t *testing.T, s store.Store) {
	defer closeStore(t, s)
	CheckStateRefused(t, s, StateQueries)
	ctx := context.Background()
	for _, q := range []string{"SELECT 'dwell_meta' AS name", "SELECT count(*) AS n FROM conn"} {
		rows, err := s.Query(ctx, q)
		if err != nil {
			t.Errorf("Query(%q): %v", q, err)
			continue
		}
		for rows.Next() {
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			t.Errorf("Query(%q): %v", q, err)
		}
	}
}

// CheckStateRefused writes Sample and a secret state value into s, then
// runs each query and fails the test unless it is refused with an error
// wrapping store.ErrState (and the secret never comes back). Backends
// call it with their own dialect's forms too.
func CheckStateRefused(t *testing.T, s store.Store, queries []string) {
	t.Helper()
	ctx := context.Background()
	if err := s.Write(ctx, Sample()); err != nil {
		t.Fatal(err)
	}
	if err := s.SetState(ctx, "triage:INC-RED", secret); err != nil {
		t.Fatal(err)
	}
	if v, err := s.State(ctx, "triage:INC-RED"); err != nil || v != secret {
		t.Fatalf("State = %q, %v; want the secret back", v, err)
	}
	for _, q := range queries {
		rows, err := s.Query(ctx, q)
		if err == nil {
			var got []string
			for rows.Next() {
				got = append(got, fmt.Sprint(rows.Values()...))
			}
			_ = rows.Close()
			t.Errorf("Query(%q) ran (leaked the secret: %t)", q, strings.Contains(strings.Join(got, "\n"), secret))
			continue
		}
		if !errors.Is(err, store.ErrState) {
			t.Errorf("Query(%q) error %v does not wrap ErrState", q, err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("Query(%q) error shows the secret: %v", q, err)
		}
	}
}
