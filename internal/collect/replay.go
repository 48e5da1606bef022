package collect

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/dwell-nsm/dwell/internal/ingest/netflow"
)

// ReplayStats says what a replay sent.
type ReplayStats struct {
	Messages  int64
	Bytes     int64
	Exporters int
	Took      time.Duration
}

// ReplayOptions say how a capture is replayed.
type ReplayOptions struct {
	// Speed 1 keeps the capture's pace, N is N times faster, 0 sends as
	// fast as the socket takes them.
	Speed float64
	// From and To, when set, keep the messages captured in [From, To).
	From, To time.Time
	// Sent, when not nil, is called after each message with its capture
	// time and the time it left.
	Sent func(captured, at time.Time)
}

// Replay sends the flow messages of the capture r to the collector at
// to, as their exporters sent them. Each original exporter gets its own
// sending socket, so the collector keeps their templates apart.
func Replay(ctx context.Context, r io.Reader, to string, opt ReplayOptions) (ReplayStats, error) {
	speed := opt.Speed
	var st ReplayStats
	raddr, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		return st, fmt.Errorf("replay: %w", err)
	}
	socks := map[netip.Addr]*net.UDPConn{}
	defer func() {
		for _, c := range socks {
			_ = c.Close()
		}
	}()
	begin := time.Now()
	var first time.Time
	err = netflow.Messages(r, func(m netflow.Message) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if (!opt.From.IsZero() && m.TS.Before(opt.From)) || (!opt.To.IsZero() && !m.TS.Before(opt.To)) {
			return nil
		}
		if first.IsZero() {
			first = m.TS
		}
		if speed > 0 {
			due := begin.Add(time.Duration(float64(m.TS.Sub(first)) / speed))
			if d := time.Until(due); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				case <-t.C:
				}
			}
		}
		c := socks[m.Exporter]
		if c == nil {
			var err error
			if c, err = net.DialUDP("udp", nil, raddr); err != nil {
				return err
			}
			socks[m.Exporter] = c
		}
		if _, err := c.Write(m.Payload); err != nil {
			return err
		}
		st.Messages++
		st.Bytes += int64(len(m.Payload))
		if opt.Sent != nil {
			opt.Sent(m.TS, time.Now())
		}
		return nil
	})
	st.Exporters = len(socks)
	st.Took = time.Since(begin)
	if err != nil {
		return st, fmt.Errorf("replay: %w", err)
	}
	return st, nil
}
