package alert

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/config"
)

// Webhook posts alerts as JSON.
type Webhook struct {
	cfg    config.Webhook
	client *http.Client
}

// NewWebhook returns a webhook channel.
func NewWebhook(c config.Webhook) *Webhook {
	return &Webhook{cfg: c, client: &http.Client{Timeout: 10 * time.Second}}
}

// Name implements Channel.
func (w *Webhook) Name() string { return "webhook " + w.cfg.URL }

// TLP implements Channel.
func (w *Webhook) TLP() string { return w.cfg.TLP }

// Send implements Channel: one POST; a 2xx answer is delivery.
func (w *Webhook) Send(ctx context.Context, a *Alert) error {
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "dwell")
	for k, v := range w.cfg.Headers {
		req.Header.Set(k, v)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}

// Syslog sends alerts to a syslog receiver.
type Syslog struct {
	cfg      config.Syslog
	hostname string
}

// NewSyslog returns a syslog channel.
func NewSyslog(c config.Syslog) *Syslog {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "-"
	}
	return &Syslog{cfg: c, hostname: h}
}

// Name implements Channel.
func (s *Syslog) Name() string { return "syslog " + s.cfg.Network + "://" + s.cfg.Address }

// TLP implements Channel.
func (s *Syslog) TLP() string { return s.cfg.TLP }

// Send implements Channel: one message over a new connection (UDP: one
// datagram; TCP and TLS: octet-counted framing, RFC 6587).
func (s *Syslog) Send(ctx context.Context, a *Alert) error {
	msg := s.Message(a)
	d := net.Dialer{Timeout: 10 * time.Second}
	var conn net.Conn
	var err error
	switch s.cfg.Network {
	case "tls":
		host, _, _ := net.SplitHostPort(s.cfg.Address)
		tc, terr := tlsConfig(host, s.cfg.CAFile)
		if terr != nil {
			return terr
		}
		td := tls.Dialer{NetDialer: &d, Config: tc}
		conn, err = td.DialContext(ctx, "tcp", s.cfg.Address)
	default:
		conn, err = d.DialContext(ctx, s.cfg.Network, s.cfg.Address)
	}
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if s.cfg.Network != "udp" {
		msg = strconv.Itoa(len(msg)) + " " + msg
	}
	_, err = io.WriteString(conn, msg)
	return err
}

// facility is local0: where IDS-like tools conventionally log.
const facility = 16

// Message formats an alert as an RFC 5424 message whose text is the
// alert's title (rfc5424) or a CEF record (cef).
func (s *Syslog) Message(a *Alert) string {
	sev := map[string]int{"critical": 2, "high": 3, "medium": 4, "low": 5}[a.Severity]
	if sev == 0 {
		sev = 6
	}
	pri := facility*8 + sev
	ts := a.At.UTC().Format("2006-01-02T15:04:05.000000Z")
	var sd, text string
	if s.cfg.Format == "cef" {
		sd, text = "-", cef(a)
	} else {
		// 32473 is the example enterprise number of RFC 5612.
		sd = fmt.Sprintf(`[dwell@32473 incident="%s" event="%s" severity="%s" class="%s" score="%.2f" tlp="%s"]`,
			sdEscape(a.Incident), sdEscape(a.Event), sdEscape(a.Severity), sdEscape(a.Class), a.Score, sdEscape(a.TLP))
		text = a.Title()
		if a.Summary != "" {
			text += ": " + a.Summary
		}
	}
	return fmt.Sprintf("<%d>1 %s %s dwell %d %s %s %s", pri, ts, s.hostname, os.Getpid(), "incident-"+a.Event, sd, oneLine(text))
}

// sdEscape escapes a structured-data parameter value (RFC 5424 6.3.3).
func sdEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`).Replace(oneLine(s))
}

func oneLine(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }

// cef formats an alert as ArcSight's Common Event Format.
func cef(a *Alert) string {
	head := strings.NewReplacer(`\`, `\\`, `|`, `\|`)
	ext := strings.NewReplacer(`\`, `\\`, `=`, `\=`, "\r", `\r`, "\n", `\n`)
	sev := map[string]int{"critical": 10, "high": 8, "medium": 5, "low": 3}[a.Severity]
	name := a.Title()
	fields := []string{"externalId=" + ext.Replace(a.Incident), "act=" + ext.Replace(a.Event), "cs1Label=tlp", "cs1=" + ext.Replace(a.TLP),
		"rt=" + strconv.FormatInt(a.At.UnixMilli(), 10)}
	if !a.Redacted {
		fields = append(fields, "cat="+ext.Replace(a.Class), "msg="+ext.Replace(a.Summary), "cs2Label=attack", "cs2="+ext.Replace(strings.Join(a.Attack, ",")),
			"cs3Label=hosts", "cs3="+ext.Replace(strings.Join(a.Hosts, ",")), "cs4Label=infrastructure", "cs4="+ext.Replace(strings.Join(a.Infrastructure, ",")))
		if !a.DwellStart.IsZero() {
			fields = append(fields, "start="+strconv.FormatInt(a.DwellStart.UnixMilli(), 10))
		}
	}
	return fmt.Sprintf("CEF:0|dwell|dwell|1|incident-%s|%s|%d|%s", head.Replace(a.Event), head.Replace(name), sev, strings.Join(fields, " "))
}

// tlsConfig verifies a receiver named host against the system's roots or
// the certificates in caFile.
func tlsConfig(host, caFile string) (*tls.Config, error) {
	c := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return c, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	c.RootCAs = x509.NewCertPool()
	if !c.RootCAs.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no certificate", caFile)
	}
	return c, nil
}

// Mail sends alerts by SMTP.
type Mail struct {
	cfg      config.Email
	password string
}

// NewMail returns a mail channel, reading its password file.
func NewMail(c config.Email) (*Mail, error) {
	m := &Mail{cfg: c}
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("alerts: e-mail password: %w", err)
		}
		m.password = strings.TrimRight(string(b), "\r\n")
	}
	return m, nil
}

// Name implements Channel.
func (m *Mail) Name() string { return "email " + m.cfg.Server }

// TLP implements Channel.
func (m *Mail) TLP() string { return m.cfg.TLP }

// Send implements Channel: one message to every recipient, over
// STARTTLS when the server offers it (required when configured so).
func (m *Mail) Send(ctx context.Context, a *Alert) error {
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", m.cfg.Server)
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(time.Minute))
	}
	host, _, _ := net.SplitHostPort(m.cfg.Server)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		_ = conn.Close()
		return err
	}
	defer func() { _ = c.Close() }()
	if ok, _ := c.Extension("STARTTLS"); ok {
		tc, err := tlsConfig(host, m.cfg.CAFile)
		if err != nil {
			return err
		}
		if err := c.StartTLS(tc); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
	} else if m.cfg.RequireTLS {
		return fmt.Errorf("%s does not offer STARTTLS and require_tls is set", m.cfg.Server)
	}
	if m.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", m.cfg.Username, m.password, host)); err != nil {
			return err
		}
	}
	if err := c.Mail(m.cfg.From); err != nil {
		return err
	}
	for _, to := range m.cfg.To {
		if err := c.Rcpt(to); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(m.message(a)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// message is the mail: headers and a plain-text body.
func (m *Mail) message(a *Alert) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s.%d@dwell>\r\n", m.cfg.From, strings.Join(m.cfg.To, ", "),
		oneLine(fmt.Sprintf("[TLP:%s] %s", strings.ToUpper(a.TLP), a.Title())), a.At.Format(time.RFC1123Z), a.Incident, a.At.UnixNano())
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%-16s %s\r\n", k+":", oneLine(v))
		}
	}
	line("TLP", strings.ToUpper(a.TLP))
	line("Incident", a.Incident)
	line("Event", a.Event)
	line("Severity", a.Severity)
	if a.Redacted {
		b.WriteString("\r\nThis channel is not cleared for the incident's TLP: read it in dwell (dwell incident " + a.Incident + ").\r\n")
		return b.Bytes()
	}
	line("Class", a.Class)
	line("Score", fmt.Sprintf("%.2f", a.Score))
	if !a.DwellStart.IsZero() {
		line("Dwell start", a.DwellStart.UTC().Format(time.DateTime+" UTC"))
		line("Last seen", a.LastSeen.UTC().Format(time.DateTime+" UTC"))
	}
	line("Hosts", strings.Join(a.Hosts, ", "))
	line("Infrastructure", strings.Join(a.Infrastructure, ", "))
	line("ATT&CK", strings.Join(a.Attack, ", "))
	line("Changes", strings.Join(a.Changes, "; "))
	fmt.Fprintf(&b, "\r\n%s\r\n", oneLine(a.Summary))
	return b.Bytes()
}
