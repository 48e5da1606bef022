package collect

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect/ddos"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest/netflow"
	"github.com/dwell-nsm/dwell/internal/scenario/scenariotest"
)

// BenchmarkReceive is a socket reader's work per datagram, the
// scenario's IPFIX export without the socket: decoding, the streaming
// DDoS detector (every destination protected) and the copy queued for
// the store.
func BenchmarkReceive(b *testing.B) {
	_, data, _ := scenariotest.FlowCapture(b)
	var msgs [][]byte
	var size int64
	if err := netflow.Messages(bytes.NewReader(data), func(m netflow.Message) error {
		msgs = append(msgs, bytes.Clone(m.Payload))
		size += int64(len(m.Payload))
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	stream := ddos.NewStream(ddos.StreamConfig{Networks: []ddos.Network{{Prefix: netip.MustParsePrefix("0.0.0.0/0")}}}, nil)
	dec := netflow.NewDecoder()
	exporter := netip.MustParseAddr("127.0.0.1")
	var flows []event.Flow
	var n int64
	b.SetBytes(size / int64(len(msgs)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		now := time.Now()
		flows, _ = dec.Decode(exporter, now, msgs[i%len(msgs)], flows[:0])
		for j := range flows {
			flows[j].Src = event.Source{Sensor: "edge", File: "udp:127.0.0.1", Line: int64(i)}
		}
		stream.Observe(now, flows)
		q := make([]event.Flow, len(flows))
		copy(q, flows)
		n += int64(len(flows))
		if i%4096 == 0 {
			stream.Tick(now)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "flows/s")
}
