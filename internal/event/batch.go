package event

import "time"

// Batch carries records from a source to a store. It is the unit of
// durability: a store keeps all of a batch's records and its Progress, or
// none of them.
//
// A batch belongs to one goroutine at a time: the source fills it, hands it
// over, and does not touch it again until it is handed back. Records may
// share string memory with each other; a store must copy what it keeps.
type Batch struct {
	Conns     []Conn
	OpenConns []Conn
	DNS       []DNS
	HTTP      []HTTP
	TLS       []TLS
	X509      []X509
	Files     []File
	Flows     []Flow
	Host      []HostEvent
	Alerts    []Alert

	// Quarantine holds records held out of the hunt (Quarantined); they
	// are not counted by Len.
	Quarantine []Quarantined

	// Progress records how far the inputs behind these records have been
	// read; a store commits it together with the records.
	Progress []Progress
}

// Len returns the number of records in b.
func (b *Batch) Len() int {
	return len(b.Conns) + len(b.OpenConns) + len(b.DNS) + len(b.HTTP) + len(b.TLS) + len(b.X509) + len(b.Files) + len(b.Flows) + len(b.Host) +
		len(b.Alerts)
}

// Count returns the number of records of kind k in b.
func (b *Batch) Count(k Kind) int {
	switch k {
	case KindConn:
		return len(b.Conns)
	case KindOpenConn:
		return len(b.OpenConns)
	case KindDNS:
		return len(b.DNS)
	case KindHTTP:
		return len(b.HTTP)
	case KindTLS:
		return len(b.TLS)
	case KindX509:
		return len(b.X509)
	case KindFile:
		return len(b.Files)
	case KindFlow:
		return len(b.Flows)
	case KindWinlog:
		return len(b.Host)
	case KindAlert:
		return len(b.Alerts)
	}
	return 0
}

// Sources calls fn with the provenance of each record of kind k in b.
func (b *Batch) Sources(k Kind, fn func(*Source)) {
	each := func(n int, src func(int) *Source) {
		for i := range n {
			fn(src(i))
		}
	}
	switch k {
	case KindConn:
		each(len(b.Conns), func(i int) *Source { return &b.Conns[i].Src })
	case KindOpenConn:
		each(len(b.OpenConns), func(i int) *Source { return &b.OpenConns[i].Src })
	case KindDNS:
		each(len(b.DNS), func(i int) *Source { return &b.DNS[i].Src })
	case KindHTTP:
		each(len(b.HTTP), func(i int) *Source { return &b.HTTP[i].Src })
	case KindTLS:
		each(len(b.TLS), func(i int) *Source { return &b.TLS[i].Src })
	case KindX509:
		each(len(b.X509), func(i int) *Source { return &b.X509[i].Src })
	case KindFile:
		each(len(b.Files), func(i int) *Source { return &b.Files[i].Src })
	case KindFlow:
		each(len(b.Flows), func(i int) *Source { return &b.Flows[i].Src })
	case KindWinlog:
		each(len(b.Host), func(i int) *Source { return &b.Host[i].Src })
	case KindAlert:
		each(len(b.Alerts), func(i int) *Source { return &b.Alerts[i].Src })
	}
}

// Append moves o's records and progress to the end of b; o is unchanged.
func (b *Batch) Append(o *Batch) {
	b.Conns = append(b.Conns, o.Conns...)
	b.OpenConns = append(b.OpenConns, o.OpenConns...)
	b.DNS = append(b.DNS, o.DNS...)
	b.HTTP = append(b.HTTP, o.HTTP...)
	b.TLS = append(b.TLS, o.TLS...)
	b.X509 = append(b.X509, o.X509...)
	b.Files = append(b.Files, o.Files...)
	b.Flows = append(b.Flows, o.Flows...)
	b.Host = append(b.Host, o.Host...)
	b.Alerts = append(b.Alerts, o.Alerts...)
	b.Quarantine = append(b.Quarantine, o.Quarantine...)
	b.Progress = append(b.Progress, o.Progress...)
}

// Clear empties b like Reset and zeroes the records it held, so that the
// strings they point into (decoders' read buffers) can be freed while b
// waits for reuse; the room of a kind b did not hold this time is given
// back. What keeps an ingest's memory bounded: a batch reused for files
// of every kind in turn does not keep room for all of them.
func (b *Batch) Clear() {
	b.Conns = cleared(b.Conns)
	b.OpenConns = cleared(b.OpenConns)
	b.DNS = cleared(b.DNS)
	b.HTTP = cleared(b.HTTP)
	b.TLS = cleared(b.TLS)
	b.X509 = cleared(b.X509)
	b.Files = cleared(b.Files)
	b.Flows = cleared(b.Flows)
	b.Host = cleared(b.Host)
	b.Alerts = cleared(b.Alerts)
	b.Quarantine = cleared(b.Quarantine)
	b.Progress = cleared(b.Progress)
}

// cleared zeroes s and empties it, or drops it when it held nothing.
func cleared[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	clear(s)
	return s[:0]
}

// Reset empties b, keeping its capacity for reuse. Old records stay in the
// spare capacity until overwritten (Clear zeroes them).
func (b *Batch) Reset() {
	b.Conns = b.Conns[:0]
	b.OpenConns = b.OpenConns[:0]
	b.DNS = b.DNS[:0]
	b.HTTP = b.HTTP[:0]
	b.TLS = b.TLS[:0]
	b.X509 = b.X509[:0]
	b.Files = b.Files[:0]
	b.Flows = b.Flows[:0]
	b.Host = b.Host[:0]
	b.Alerts = b.Alerts[:0]
	b.Quarantine = b.Quarantine[:0]
	b.Progress = b.Progress[:0]
}

// InputID identifies an input file by its content rather than its path: the
// SHA-256 (hex) of the log type its name gives ("conn" for conn.log and
// conn.00:00:00-01:00:00.log.gz) and its first HeadLen decoded bytes. A file
// moved or compressed by Zeek's rotation keeps its identity; a file that
// grows keeps it once it is longer than the head.
type InputID string

// HeadSize is how many decoded bytes of a file its InputID covers.
const HeadSize = 4096

// Progress is how far dwell has read one input. Offsets count decoded bytes
// (after gzip), so a resumed read skips exactly what was stored.
type Progress struct {
	ID      InputID
	HeadLen int // bytes the ID hashes; less than HeadSize only for short files
	// Replaces is the ID this input had when it was shorter than HeadSize;
	// a store drops that entry when it stores this one.
	Replaces InputID
	Path     string // path the input was last read from
	Sensor   string
	Format   string // "zeek-tsv" or "zeek-json"
	// Header is the format's header state at Offset (Zeek TSV '#' lines of
	// the current block), so that reading can resume without rereading the file.
	Header string
	Offset int64 // decoded bytes consumed, always at a line boundary
	// Check is the SHA-256 (hex) of the up to 256 decoded bytes before
	// Offset: resuming verifies it, so two inputs that merely start alike
	// are never mistaken for one.
	Check string
	Size  int64 // on-disk size when last read
	Line  int64 // lines consumed
	Rows  int64 // records stored from this input, in total
	Bad   int64 // malformed lines skipped, in total
	// Complete is true once the input was read to its end and the end was
	// final (a gzip stream's trailer); plain files may still grow.
	Complete bool
	Updated  time.Time
}
