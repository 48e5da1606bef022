// Package alert announces incidents outside dwell: to webhooks (JSON over
// HTTP, retried, undeliverable ones kept in a dead-letter file), syslog
// receivers (RFC 5424, or CEF for SIEMs, over UDP, TCP or TLS) and mail
// (SMTP with STARTTLS). Each channel is cleared for a TLP level: an
// incident marked above it goes out by that channel as its id, event and
// severity only, never its hosts, infrastructure or summary.
package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dwell-nsm/dwell/internal/config"
)

// Alert is one announcement about one incident.
type Alert struct {
	// Event is "new" (an incident first seen) or "escalated" (its
	// severity rose).
	Event    string    `json:"event"`
	At       time.Time `json:"at"`
	Incident string    `json:"incident"`
	Severity string    `json:"severity"`
	Class    string    `json:"class,omitempty"`
	Score    float64   `json:"score,omitempty"`
	Summary  string    `json:"summary,omitempty"`
	Hosts    []string  `json:"hosts,omitempty"`
	// Infrastructure is the outside addresses and names it involves.
	Infrastructure []string  `json:"infrastructure,omitempty"`
	Attack         []string  `json:"attack,omitempty"`
	DwellStart     time.Time `json:"dwell_start,omitzero"`
	LastSeen       time.Time `json:"last_seen,omitzero"`
	// Changes says what changed since the last announcement (escalated).
	Changes []string `json:"changes,omitempty"`
	// TLP is the incident's marking (clear, green, amber, amber+strict,
	// red).
	TLP string `json:"tlp"`
	// Redacted is true when the channel is not cleared for the TLP and
	// only the id, event and severity are given.
	Redacted bool `json:"redacted,omitempty"`
}

// For returns what a channel cleared up to tlp may carry of a: a itself,
// or its id, event, time, severity and marking only.
func (a *Alert) For(tlp string) *Alert {
	if config.TLPRank(a.TLP) <= config.TLPRank(tlp) && config.TLPRank(a.TLP) >= 0 {
		return a
	}
	return &Alert{Event: a.Event, At: a.At, Incident: a.Incident, Severity: a.Severity, TLP: a.TLP, Redacted: true}
}

// Title is a one-line description.
func (a *Alert) Title() string {
	if a.Redacted {
		return fmt.Sprintf("dwell: %s incident %s (%s, TLP:%s: details withheld from this channel)", a.Event, a.Incident, a.Severity, strings.ToUpper(a.TLP))
	}
	return fmt.Sprintf("dwell: %s incident %s (%s, %s)", a.Event, a.Incident, a.Severity, a.Class)
}

// Channel delivers alerts to one receiver.
type Channel interface {
	// Name identifies the receiver in logs and the dead-letter file
	// ("webhook https://siem.example/hook").
	Name() string
	// TLP is the highest marking the channel is cleared for.
	TLP() string
	// Send delivers one alert once; the Dispatcher retries.
	Send(ctx context.Context, a *Alert) error
}

// Dispatcher sends each alert by every channel, retrying failures with
// back-off and appending what stays undelivered to a dead-letter file.
type Dispatcher struct {
	Channels []Channel
	// DeadLetter is the JSON-lines file of undelivered alerts.
	DeadLetter string
	// Attempts per channel (default 4) and the first back-off (default
	// 1s, doubled each time).
	Attempts int
	Backoff  time.Duration
	Logger   *slog.Logger

	mu sync.Mutex // the dead-letter file
}

// Result counts deliveries.
type Result struct{ Delivered, Failed int }

// Dispatch sends a by every channel, at once, and waits for them.
func (d *Dispatcher) Dispatch(ctx context.Context, a *Alert) Result {
	attempts, backoff := d.Attempts, d.Backoff
	if attempts <= 0 {
		attempts = 4
	}
	if backoff <= 0 {
		backoff = time.Second
	}
	logger := d.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var res Result
	for _, c := range d.Channels {
		wg.Go(func() {
			msg := a.For(c.TLP())
			var err error
			wait := backoff
			for i := range attempts {
				if err = c.Send(ctx, msg); err == nil {
					break
				}
				logger.Warn("alert not delivered", "channel", c.Name(), "incident", a.Incident, "attempt", i+1, "err", err)
				if i == attempts-1 {
					break
				}
				select {
				case <-ctx.Done():
					err = errors.Join(err, ctx.Err())
				case <-time.After(wait):
					wait *= 2
					continue
				}
				break
			}
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				res.Delivered++
				return
			}
			res.Failed++
			if derr := d.deadLetter(c, msg, err); derr != nil {
				logger.Error("alert lost: the dead-letter file cannot be written", "channel", c.Name(), "incident", a.Incident, "err", derr)
			}
		})
	}
	wg.Wait()
	return res
}

// deadLetter appends an undelivered alert with its channel and error.
func (d *Dispatcher) deadLetter(c Channel, a *Alert, cause error) error {
	if d.DeadLetter == "" {
		return cause
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(d.DeadLetter), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(d.DeadLetter, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	line, err := json.Marshal(map[string]any{"channel": c.Name(), "error": cause.Error(), "failed_at": time.Now().UTC(), "alert": a})
	if err != nil {
		_ = f.Close()
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// Channels builds the channels an alerts configuration names.
func Channels(c *config.Alerts) ([]Channel, error) {
	var out []Channel
	for _, w := range c.Webhooks {
		out = append(out, NewWebhook(w))
	}
	for _, s := range c.Syslog {
		out = append(out, NewSyslog(s))
	}
	for _, e := range c.Email {
		m, err := NewMail(e)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}
