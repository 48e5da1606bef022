package duckdb_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/duckdb"
	"github.com/dwell-nsm/dwell/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := duckdb.Open(context.Background(), filepath.Join(t.TempDir(), "dwell.db"), duckdb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
