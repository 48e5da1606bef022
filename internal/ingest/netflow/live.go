package netflow

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest/capture"
)

// Decoder decodes flow messages as a collector receives them over UDP:
// NetFlow v5, v9, IPFIX and sFlow v5, with the v9 and IPFIX templates
// and sampling rates of each exporter and observation domain kept
// between messages (at most 65,536 templates in all). A Decoder is not
// safe for concurrent use: a collector gives each socket its own.
type Decoder struct {
	d *decoder
}

// NewDecoder returns a decoder that knows no templates yet.
func NewDecoder() *Decoder { return &Decoder{d: newDecoder()} }

// IsFlowMessage reports whether p looks like a NetFlow v5, v9, IPFIX or
// sFlow v5 message.
func IsFlowMessage(p []byte) bool { return isFlowDatagram(p) }

// Decode appends the flows of the message p, received at at from
// exporter, to out. On a malformed message it returns the flows decoded
// before the fault with the error.
func (d *Decoder) Decode(exporter netip.Addr, at time.Time, p []byte, out []event.Flow) ([]event.Flow, error) {
	return d.d.decode(datagram{ts: at, src: exporter.Unmap(), payload: p}, out)
}

// Unknown is how many data sets arrived before their template.
func (d *Decoder) Unknown() int64 { return d.d.unknown }

// decoderState is what a collector keeps across restarts.
type decoderState struct {
	Templates []savedTemplate `json:"templates,omitempty"`
	Sampling  []savedSampling `json:"sampling,omitempty"`
}

// State returns the templates and sampling rates known, as JSON, for
// Restore after a restart: an exporter sends its templates only every so
// often, and the data sets between would be lost.
func (d *Decoder) State() []byte {
	var st decoderState
	st.Templates, st.Sampling = d.d.saved()
	data, _ := json.Marshal(st) // plain values: cannot fail
	return data
}

// Restore adds the templates and sampling rates of a State.
func (d *Decoder) Restore(state []byte) error {
	var st decoderState
	if err := json.Unmarshal(state, &st); err != nil {
		return fmt.Errorf("flow decoder state: %w", err)
	}
	d.d.load(st.Templates, st.Sampling)
	return nil
}

// Message is one flow export datagram read from a capture.
type Message struct {
	TS       time.Time  // when it was captured
	Exporter netip.Addr // the address it came from
	Payload  []byte     // valid until the next call of the callback
}

// Messages calls fn with every flow message in the capture r (classic
// pcap or pcapng), in capture order; packets that are not flow messages
// are skipped. A capture cut short ends the messages without an error.
func Messages(r io.Reader, fn func(Message) error) error {
	pr := capture.NewReader(r)
	for {
		pkt, err := pr.Next()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
		dg, ok := udp(pkt.Link, pkt.Data)
		if !ok || !isFlowDatagram(dg.payload) {
			continue
		}
		if err := fn(Message{TS: pkt.TS, Exporter: dg.src, Payload: dg.payload}); err != nil {
			return err
		}
	}
}
