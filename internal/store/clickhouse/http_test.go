package clickhouse

import (
	"errors"
	"testing"

	"github.com/dwell-nsm/dwell/internal/store"
)

// TestServerErrorOutOfMemory: ClickHouse's memory limit exception (code
// 241, as 18.16 writes it over HTTP) is store.ErrOutOfMemory, with its
// text kept; another exception is not.
func TestServerErrorOutOfMemory(t *testing.T) {
	oom := parseServerError(500, []byte("Code: 241, e.displayText() = DB::Exception: Memory limit (for query) exceeded: "+
		"would use 9.54 MiB (attempt to allocate chunk of 1048576 bytes), maximum: 9.54 MiB, e.what() = DB::Exception\n"))
	if !errors.Is(oom, store.ErrOutOfMemory) {
		t.Errorf("%v: not out of memory", oom)
	}
	if want := "clickhouse: code 241: Memory limit (for query) exceeded: would use 9.54 MiB (attempt to allocate chunk of 1048576 bytes), maximum: 9.54 MiB"; oom.Error() != want {
		t.Errorf("text %q, want %q", oom.Error(), want)
	}
	other := parseServerError(404, []byte("Code: 47, e.displayText() = DB::Exception: Unknown identifier: nosuchcolumn, e.what() = DB::Exception\n"))
	if errors.Is(other, store.ErrOutOfMemory) {
		t.Errorf("%v: taken for out of memory", other)
	}
}
