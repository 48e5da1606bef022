package alert

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/alert/alerttest"
	"github.com/dwell-nsm/dwell/internal/config"
)

func sample() *Alert {
	return &Alert{Event: "new", At: time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC), Incident: "INC-5adc20b96c", Severity: "high",
		Class: "espionage", Score: 0.83, Summary: "10.1.0.50 checks in with 198.51.100.77 every 4h | a=b \\ \"q\"]",
		Hosts: []string{"10.1.0.50"}, Infrastructure: []string{"198.51.100.77"}, Attack: []string{"T1071.001"}, TLP: "amber",
		DwellStart: time.Date(2025, 3, 3, 1, 0, 0, 0, time.UTC), LastSeen: time.Date(2025, 3, 10, 8, 0, 0, 0, time.UTC)}
}

func TestTLPRedaction(t *testing.T) {
	a := sample()
	if got := a.For("amber"); got != a {
		t.Errorf("a channel cleared for amber gets a redacted amber alert")
	}
	if got := a.For("red"); got != a {
		t.Errorf("a channel cleared for red gets a redacted amber alert")
	}
	g := a.For("green")
	if !g.Redacted || g.Summary != "" || len(g.Hosts) != 0 || len(g.Infrastructure) != 0 || g.Incident != a.Incident || g.Severity != "high" {
		t.Errorf("green channel: %+v", g)
	}
	red := *a
	red.TLP = "red"
	if r := red.For("amber+strict"); !r.Redacted {
		t.Errorf("TLP:RED went out in full by an amber+strict channel")
	}
	odd := *a
	odd.TLP = "purple"
	if r := odd.For("red"); !r.Redacted {
		t.Errorf("an unknown marking went out in full")
	}
}

// TestWebhookRetriesThenDeadLetter: a receiver that fails twice gets the
// alert on the third try; one that always fails leaves it in the
// dead-letter file with the error.
func TestWebhookRetriesThenDeadLetter(t *testing.T) {
	flaky, in := alerttest.Webhook(t, 2)
	down, _ := alerttest.Webhook(t, 1000)
	dead := filepath.Join(t.TempDir(), "dead.jsonl")
	d := &Dispatcher{DeadLetter: dead, Backoff: time.Millisecond, Attempts: 3, Channels: []Channel{
		NewWebhook(config.Webhook{Channel: config.Channel{TLP: "amber"}, URL: flaky, Headers: map[string]string{"Authorization": "Bearer s3cret"}}),
		NewWebhook(config.Webhook{Channel: config.Channel{TLP: "green"}, URL: down}),
	}}
	r := d.Dispatch(t.Context(), sample())
	if r.Delivered != 1 || r.Failed != 1 {
		t.Fatalf("result %+v", r)
	}
	var got Alert
	if msgs := in.Messages(); len(msgs) != 1 {
		t.Fatalf("%d deliveries", len(msgs))
	} else if err := json.Unmarshal([]byte(msgs[0]), &got); err != nil {
		t.Fatal(err)
	}
	if got.Incident != "INC-5adc20b96c" || got.Summary == "" || got.Hosts[0] != "10.1.0.50" {
		t.Errorf("got %+v", got)
	}
	data, err := os.ReadFile(dead)
	if err != nil {
		t.Fatal(err)
	}
	var line struct {
		Channel string `json:"channel"`
		Error   string `json:"error"`
		Alert   Alert  `json:"alert"`
	}
	if err := json.Unmarshal(data, &line); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(line.Channel, down) || !strings.Contains(line.Error, "503") || !line.Alert.Redacted || line.Alert.Summary != "" {
		t.Errorf("dead letter: %s", data)
	}
}

func TestSyslogMessages(t *testing.T) {
	udp, udpIn := alerttest.SyslogUDP(t)
	tcp, tcpIn := alerttest.SyslogTCP(t)
	a := sample()
	if err := NewSyslog(config.Syslog{Address: udp, Network: "udp", Format: "rfc5424"}).Send(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	if err := NewSyslog(config.Syslog{Address: tcp, Network: "tcp", Format: "cef"}).Send(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	msg, rec := wait(t, udpIn), wait(t, tcpIn)
	// <local0.err>1 TIMESTAMP HOST dwell PID MSGID [SD] MSG
	if !strings.HasPrefix(msg, "<131>1 2025-03-10T09:00:00.000000Z ") || !strings.Contains(msg, " dwell ") ||
		!strings.Contains(msg, ` incident-new [dwell@32473 incident="INC-5adc20b96c" event="new" severity="high" class="espionage" score="0.83" tlp="amber"] `) {
		t.Errorf("RFC 5424: %q", msg)
	}
	i := strings.Index(rec, "CEF:0|")
	if i < 0 {
		t.Fatalf("no CEF record: %q", rec)
	}
	rec = rec[i:]
	if !strings.HasPrefix(rec, "CEF:0|dwell|dwell|1|incident-new|dwell: new incident INC-5adc20b96c (high, espionage)|8|externalId=INC-5adc20b96c ") ||
		!strings.Contains(rec, `msg=10.1.0.50 checks in with 198.51.100.77 every 4h | a\=b \\ "q"]`) || !strings.Contains(rec, "cs3=10.1.0.50") {
		t.Errorf("CEF: %q", rec)
	}
}

// wait returns the first message an inbox receives.
func wait(t *testing.T, in *alerttest.Inbox) string {
	t.Helper()
	for range 500 {
		if m := in.Messages(); len(m) > 0 {
			return m[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("nothing received")
	return ""
}

// TestMailOverSTARTTLS sends an alert through a real SMTP server started
// here, which offers STARTTLS: the message arrives encrypted, addressed
// and complete.
func TestMailOverSTARTTLS(t *testing.T) {
	addr, ca, in := alerttest.SMTP(t, false)
	m, err := NewMail(config.Email{Channel: config.Channel{TLP: "amber"}, Server: addr, From: "dwell@ministry.example",
		To: []string{"soc@ministry.example", "cert@ministry.example"}, RequireTLS: true, CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(t.Context(), sample()); err != nil {
		t.Fatal(err)
	}
	msgs, enc := in.Messages(), in.Encrypted()
	if len(msgs) != 1 || !enc[0] {
		t.Fatalf("%d message(s), TLS %v", len(msgs), enc)
	}
	msg := msgs[0]
	for _, want := range []string{"MAIL FROM:dwell@ministry.example", "RCPT TO:soc@ministry.example,cert@ministry.example",
		"Subject: [TLP:AMBER] dwell: new incident INC-5adc20b96c (high, espionage)", "Hosts:           10.1.0.50", "ATT&CK:          T1071.001"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	sc := bufio.NewScanner(strings.NewReader(msg))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "Subject:") && strings.ContainsAny(sc.Text(), "\r\n") {
			t.Errorf("header injection: %q", sc.Text())
		}
	}
}

// TestMailRefusesPlaintext: with require_tls a server without STARTTLS
// gets nothing.
func TestMailRefusesPlaintext(t *testing.T) {
	addr, _, in := alerttest.SMTP(t, true)
	m, err := NewMail(config.Email{Server: addr, From: "dwell@ministry.example", To: []string{"soc@ministry.example"}, RequireTLS: true})
	if err != nil {
		t.Fatal(err)
	}
	err = m.Send(context.Background(), sample())
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("sent in clear text: %v", err)
	}
	if len(in.Messages()) != 0 {
		t.Errorf("a message arrived")
	}
}
