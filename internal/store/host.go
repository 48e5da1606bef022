package store

import (
	"strconv"
	"strings"
)

// HostFilter selects the Windows events (winlog) HostEvents reads.
type HostFilter struct {
	// EventIDs keeps the events with one of these ids; empty keeps all.
	EventIDs []uint32
	// Carved keeps the records recovered from unused EVTX chunk space too.
	Carved bool
}

// IDList returns the event ids as SQL's comma-separated list ("" when
// the filter keeps every id).
func (f HostFilter) IDList() string {
	ids := make([]string, len(f.EventIDs))
	for i, id := range f.EventIDs {
		ids[i] = strconv.FormatUint(uint64(id), 10)
	}
	return strings.Join(ids, ", ")
}

// hostColumns are the winlog columns HostEvents reads, in the order the
// backends select them.
const hostColumns = "ts, channel, provider, event_id, computer, record_id, level, task, opcode, keywords, user_sid, process_id, thread_id, " +
	"data_names, data_values, carved, sensor, source_file, source_line"

// HostColumns returns the winlog columns a backend selects for
// HostEvents, in the order it scans them.
func HostColumns() string { return hostColumns }

// ParseKeywords reads the keywords column ("0x8020000000000000"); 0 when
// it is not a hexadecimal number.
func ParseKeywords(s string) uint64 {
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	if err != nil {
		return 0
	}
	return v
}
