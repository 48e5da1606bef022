package app

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/dwell-nsm/dwell/internal/collect"
	"github.com/dwell-nsm/dwell/internal/ingest"
)

func replayCommand() command {
	return command{
		name:    "replay",
		summary: "send the flow exports of a capture to a collector over UDP, at the capture's pace or faster (tests, demos, latency measurements)",
		usage:   "replay [--to HOST:PORT] [--speed N] [--from TIME] [--until TIME] CAPTURE...",
		example: `  dwell replay --to 127.0.0.1:2055 flows.pcap            # as fast as the socket takes them
  dwell replay --to 127.0.0.1:2055 --speed 1 flows.pcap  # at the pace they were captured
  dwell replay --to 127.0.0.1:2055 --speed 60 --from 2026-02-10T13:00:00Z scenario/flows/ddos.pcap

CAPTURE is a pcap or pcapng file (plain, or gzip, zstd or bzip2
compressed, known by its first bytes) of a collector's port
(tcpdump -w), as dwell ingest reads; the NetFlow, IPFIX and sFlow
messages in it are sent again, each original exporter from a socket of
its own so the collector keeps their templates apart.
`,
		run: runReplay,
	}
}

func runReplay(ctx context.Context, a *App, args []string) error {
	c := replayCommand()
	fs := a.newFlags(c, nil)
	to := fs.String("to", "127.0.0.1:2055", "the collector's `address`")
	speed := fs.Float64("speed", 0, "`times` the capture's pace (1: real time; 0: as fast as possible)")
	from := fs.String("from", "", "replay the messages captured from this `time` on (RFC 3339)")
	until := fs.String("until", "", "replay the messages captured before this `time` (RFC 3339)")
	files, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return usagef("no capture to replay")
	}
	if *speed < 0 {
		return usagef("--speed must not be negative")
	}
	opt := collect.ReplayOptions{Speed: *speed}
	for _, f := range []struct {
		name, v string
		t       *time.Time
	}{{"--from", *from, &opt.From}, {"--until", *until, &opt.To}} {
		if f.v == "" {
			continue
		}
		if *f.t, err = time.Parse(time.RFC3339, f.v); err != nil {
			return usagef("%s: %q is not an RFC 3339 time (2026-03-01T13:00:00Z)", f.name, f.v)
		}
	}
	for _, path := range files {
		st, err := replayFile(ctx, path, *to, opt)
		if err != nil {
			return err
		}
		rate := float64(st.Messages) / max(st.Took.Seconds(), 1e-9)
		fmt.Fprintf(a.Stdout, "%s: %d messages (%d bytes) from %d exporters sent to %s in %s (%.0f messages/s)\n",
			path, st.Messages, st.Bytes, st.Exporters, *to, st.Took.Round(time.Millisecond), rate)
	}
	return nil
}

func replayFile(ctx context.Context, path, to string, opt collect.ReplayOptions) (collect.ReplayStats, error) {
	f, err := os.Open(path) //nolint:gosec // G703: the capture the user named
	if err != nil {
		return collect.ReplayStats{}, err
	}
	defer func() { _ = f.Close() }()
	// Compressed captures (gzip, zstd, bzip2) are known by their first
	// bytes, as ingest knows them.
	r, _, closeDec, err := ingest.Decompressed(f)
	if err != nil {
		return collect.ReplayStats{}, fmt.Errorf("%s: %w", path, err)
	}
	defer func() { _ = closeDec() }()
	st, err := collect.Replay(ctx, r, to, opt)
	if err != nil {
		return st, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}
