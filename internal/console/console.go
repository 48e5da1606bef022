// Package console is the analysts' web console that dwell serve serves:
// incidents and their timelines, triage and notes, and the SQL console,
// behind local accounts (argon2id), sessions, CSRF protection, roles,
// TLP:RED need-to-know and a hash-chained audit trail. Pages are rendered
// on the server with html/template, plots are SVG drawn here; no script
// runs in the browser at all, and the Content-Security-Policy says so.
// Data comes from the same commands the command line runs (Runner), with
// the user's identity, so the console shows what dwell says.
package console

import (
	"bytes"
	"context"
	"embed"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/microcosm-cc/bluemonday"
	"github.com/yuin/goldmark"

	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/detect"
)

// Runner runs one dwell command line against the served store (as
// server.Runner).
type Runner interface {
	Run(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// Options configure the console.
type Options struct {
	Runner Runner
	Users  *Users
	Audit  *Audit
	// Secure marks the session cookie Secure (the server speaks TLS).
	Secure bool
	// OIDC, when set, offers login through an OpenID Connect provider.
	OIDC   *OIDC
	Now    func() time.Time
	Logger *slog.Logger
}

// Console is the console's http.Handler.
type Console struct {
	o        Options
	mux      *http.ServeMux
	pages    map[string]*template.Template
	sessions sessions
	byUser   limiter
	byAddr   limiter
	md       goldmark.Markdown
	policy   *bluemonday.Policy
	oidc     *oidcLogin
}

//go:embed web
var web embed.FS

const cookieName = "dwell_session"

// New returns the console.
func New(o Options) (*Console, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Console{o: o, mux: http.NewServeMux(), pages: map[string]*template.Template{}, md: goldmark.New(), policy: bluemonday.UGCPolicy()}
	funcs := template.FuncMap{
		"date":     func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04") },
		"upper":    strings.ToUpper,
		"join":     strings.Join,
		"score":    func(f float64) string { return fmt.Sprintf("%.2f", f) },
		"bytes":    detect.HumanBytes,
		"clip":     clip,
		"evidence": evidenceText,
		"list":     func(xs ...string) []string { return xs },
		"dict": func(kv ...any) map[string]any {
			m := map[string]any{}
			for i := 0; i+1 < len(kv); i += 2 {
				if k, ok := kv[i].(string); ok {
					m[k] = kv[i+1]
				}
			}
			return m
		},
	}
	for _, p := range []string{"login", "incidents", "incident", "finding", "host", "intel", "sql", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(web, "web/layout.html", "web/"+p+".html")
		if err != nil {
			return nil, err
		}
		c.pages[p] = t
	}
	c.mux.HandleFunc("GET /static/style.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "max-age=3600")
		http.ServeFileFS(w, r, web, "web/style.css")
	})
	if o.OIDC != nil {
		c.oidc = &oidcLogin{cfg: *o.OIDC}
		c.mux.HandleFunc("GET /oidc/login", c.oidcStart)
		c.mux.HandleFunc("GET /oidc/callback", c.oidcCallback)
	}
	c.mux.HandleFunc("GET /login", c.loginPage)
	c.mux.HandleFunc("POST /login", c.login)
	c.mux.HandleFunc("POST /logout", c.auth(RoleViewer, c.logout))
	c.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/incidents", http.StatusSeeOther) })
	c.mux.HandleFunc("GET /incidents", c.auth(RoleViewer, c.incidents))
	c.mux.HandleFunc("GET /incidents/{id}", c.auth(RoleViewer, c.incident))
	c.mux.HandleFunc("POST /incidents/{id}/triage", c.auth(RoleAnalyst, c.triage))
	c.mux.HandleFunc("GET /incidents/{id}/findings/{n}", c.auth(RoleViewer, c.finding))
	c.mux.HandleFunc("POST /incidents/{id}/allow", c.auth(RoleAnalyst, c.allow))
	c.mux.HandleFunc("GET /incidents/{id}/export/{what}", c.auth(RoleViewer, c.export))
	c.mux.HandleFunc("GET /hosts/{addr}", c.auth(RoleViewer, c.host))
	c.mux.HandleFunc("GET /intel", c.auth(RoleViewer, c.intel))
	c.mux.HandleFunc("POST /intel/import", c.auth(RoleAnalyst, c.importIntel))
	c.mux.HandleFunc("GET /sql", c.auth(RoleAdmin, c.sql))
	c.mux.HandleFunc("POST /sql", c.auth(RoleAdmin, c.sql))
	return c, nil
}

// ServeHTTP implements http.Handler, with the security headers on every
// answer.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	if c.o.Secure {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	c.mux.ServeHTTP(w, r)
}

// user is who a request comes from.
type user struct {
	*User
	csrf  string
	sid   string
	since time.Time // the login before this session's
}

// CSRF is the token a page's forms carry.
func (u *user) CSRF() string { return u.csrf }

// external is the option that tells dwell's commands whether the user is
// of another organisation (TLP:AMBER+STRICT is not for them).
func (u *user) external() string { return fmt.Sprintf("--external=%t", u.Org != "") }

type handler func(w http.ResponseWriter, r *http.Request, u *user)

// auth admits a request with a session of a user whose role reaches role;
// a state change must also carry the session's CSRF token and come from
// this origin.
func (c *Console) auth(role string, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(cookieName)
		var s *session
		if err == nil {
			s = c.sessions.get(ck.Value, c.o.Now())
		}
		if s == nil {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		acct, err := c.o.Users.Get(s.user)
		if err != nil || acct == nil {
			c.sessions.end(ck.Value)
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		u := &user{User: acct, csrf: s.csrf, sid: ck.Value, since: s.since}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxUpload+1<<20)
			if !sameOrigin(r) || r.PostFormValue("csrf") != s.csrf {
				c.fail(w, r, u, http.StatusForbidden, "This request did not come from this console's own page (a missing or wrong CSRF token): nothing was changed.")
				return
			}
		}
		if !u.Can(role) {
			c.fail(w, r, u, http.StatusForbidden, fmt.Sprintf("This needs the %s role; %s is a %s.", role, u.Name, u.Role))
			return
		}
		h(w, r, u)
	}
}

// sameOrigin checks the Origin (or Referer) of a state change against the
// request's host.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
		origin = r.Header.Get("Referer")
	}
	if origin == "" {
		return false
	}
	o, err := url.Parse(origin)
	return err == nil && o.Host == r.Host
}

func (c *Console) render(w http.ResponseWriter, status int, page string, data map[string]any) {
	var buf bytes.Buffer
	if err := c.pages[page].Execute(&buf, data); err != nil {
		c.o.Logger.Error("console page", "page", page, "err", err)
		http.Error(w, "the page could not be drawn", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	// Control characters from logs are shown as U+FFFD: the escaping of
	// html/template leaves them, and they have no business in a page.
	_, _ = w.Write(bytes.Map(func(r rune) rune {
		if r < 0x20 && r != '\n' && r != '\t' && r != '\r' || r == 0x7f {
			return '\uFFFD'
		}
		return r
	}, buf.Bytes()))
}

func (c *Console) fail(w http.ResponseWriter, _ *http.Request, u *user, status int, msg string) {
	c.render(w, status, "error", map[string]any{"User": u, "Title": http.StatusText(status), "Message": msg})
}

func (c *Console) audit(u, action, object, detail string) {
	if c.o.Audit == nil {
		return
	}
	if err := c.o.Audit.Log(c.o.Now(), u, action, object, detail); err != nil {
		c.o.Logger.Error("audit trail not written", "err", err, "action", action)
	}
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, http.StatusOK, "login", map[string]any{"Next": safeNext(r.URL.Query().Get("next")), "OIDC": c.oidcLabel()})
}

// safeNext keeps a post-login redirect on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/incidents"
	}
	return next
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	name, password, next := r.PostFormValue("user"), r.PostFormValue("password"), safeNext(r.PostFormValue("next"))
	now := c.o.Now()
	again := func(msg string) {
		c.render(w, http.StatusUnauthorized, "login", map[string]any{"Next": next, "Error": msg, "Name": name, "OIDC": c.oidcLabel()})
	}
	if !sameOrigin(r) {
		again("This login did not come from this console's own page.")
		return
	}
	addr := clientAddr(r)
	if l, until := c.byUser.locked("u:"+name, now); l {
		c.audit(name, "login_refused", "", "locked out until "+until.UTC().Format(time.DateTime))
		again(fmt.Sprintf("Too many failed logins: try again after %s UTC.", until.UTC().Format("15:04")))
		return
	}
	if l, until := c.byAddr.locked("a:"+addr, now); l {
		c.audit(name, "login_refused", addr, "address locked out until "+until.UTC().Format(time.DateTime))
		again(fmt.Sprintf("Too many failed logins from this address: try again after %s UTC.", until.UTC().Format("15:04")))
		return
	}
	acct, err := c.o.Users.Get(name)
	// The hash is computed for unknown users too: the time says nothing.
	hash := "$argon2id$v=19$m=65536,t=3,p=2$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	if acct != nil {
		hash = acct.Hash
	}
	ok := CheckPassword(hash, password) && acct != nil && err == nil
	if !ok {
		c.byUser.fail("u:"+name, now)
		c.byAddr.fail("a:"+addr, now)
		c.audit(name, "login_failed", addr, "")
		again("Wrong user name or password.")
		return
	}
	c.byUser.reset("u:" + name)
	c.byAddr.reset("a:" + addr)
	c.startSession(w, r, acct, now, "password")
	http.Redirect(w, r, next, http.StatusSeeOther) //nolint:gosec // G710: safeNext keeps it a path of this site
}

// startSession logs acct in: a new session id whatever cookie came with
// the request (no fixation), the previous login remembered, audited.
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, acct *User, now time.Time, how string) {
	if old, err := r.Cookie(cookieName); err == nil {
		c.sessions.end(old.Value)
	}
	sid, sess := c.sessions.start(acct.Name, now)
	if prev, err := c.o.Users.Visited(acct.Name, now); err == nil {
		sess.since = prev
	}
	// Secure when the server speaks TLS; on plain loopback a Secure cookie
	// would not come back.
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: sid, Path: "/", HttpOnly: true, Secure: c.o.Secure, SameSite: http.SameSiteStrictMode, //nolint:gosec // G124: as above
		MaxAge: int(sessionLife.Seconds())})
	c.audit(acct.Name, "login", clientAddr(r), how)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, u *user) {
	c.sessions.end(u.sid)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true, Secure: c.o.Secure, SameSite: http.SameSiteStrictMode, MaxAge: -1}) //nolint:gosec // G124: as at login
	c.audit(u.Name, "logout", "", "")
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// run runs a command line for the console and decodes its JSON output.
func (c *Console) run(ctx context.Context, v any, args ...string) error {
	var out, errs bytes.Buffer
	if code := c.o.Runner.Run(ctx, args, &out, &errs); code != 0 {
		msg := strings.TrimSpace(errs.String())
		if i := strings.Index(msg, ": "); strings.HasPrefix(msg, "dwell ") && i > 0 {
			msg = msg[i+2:]
		}
		return errors.New(msg)
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(out.Bytes(), v)
}

// triageView is what the console shows of an incident's triage (the JSON
// of dwell triage).
type triageView struct {
	Status   string   `json:"status"`
	Assignee string   `json:"assignee"`
	TLP      string   `json:"tlp"`
	People   []string `json:"people"`
	Reason   string   `json:"reason"`
	Notes    []struct {
		At   time.Time `json:"at"`
		By   string    `json:"by"`
		Text string    `json:"text"`
	} `json:"notes"`
	History []struct {
		At    time.Time `json:"at"`
		By    string    `json:"by"`
		Field string    `json:"field"`
		From  string    `json:"from"`
		To    string    `json:"to"`
	} `json:"history"`
}

// row is one incident in the list.
type row struct {
	*correlate.Incident
	Triage *triageView
	Fresh  string // "new" or "changed" since the user's previous login
}

func (c *Console) incidents(w http.ResponseWriter, r *http.Request, u *user) {
	var doc struct {
		HuntedAt  time.Time              `json:"hunted_at"`
		Incidents []correlate.Incident   `json:"incidents"`
		Triage    map[string]*triageView `json:"triage"`
	}
	if err := c.run(r.Context(), &doc, "incidents", "--format", "json", "--as", u.Name, u.external()); err != nil {
		c.fail(w, r, u, http.StatusServiceUnavailable, err.Error())
		return
	}
	// What changed since the user's previous login (dwell serve's
	// incident history).
	var hist struct {
		Incidents []struct {
			ID            string    `json:"id"`
			FirstReported time.Time `json:"first_reported"`
			LastChanged   time.Time `json:"last_changed"`
		} `json:"incidents"`
	}
	fresh := map[string]string{}
	if !u.since.IsZero() && c.run(r.Context(), &hist, "incidents", "--history", "--format", "json") == nil {
		for _, h := range hist.Incidents {
			switch {
			case h.FirstReported.After(u.since):
				fresh[h.ID] = "new"
			case h.LastChanged.After(u.since):
				fresh[h.ID] = "changed"
			}
		}
	}
	q := r.URL.Query()
	f := map[string]string{"class": q.Get("class"), "severity": q.Get("severity"), "status": q.Get("status"), "assignee": q.Get("assignee"),
		"host": q.Get("host"), "tlp": q.Get("tlp")}
	counts := map[string]int{}
	var rows []row
	for i := range doc.Incidents {
		inc := &doc.Incidents[i]
		t := doc.Triage[inc.ID]
		if t == nil {
			t = &triageView{Status: "new", TLP: "amber"}
		}
		counts[string(inc.Class)]++
		hosts := make([]string, len(inc.Hosts))
		for i, h := range inc.Hosts {
			hosts[i] = h.String()
		}
		if (f["class"] != "" && string(inc.Class) != f["class"]) || (f["severity"] != "" && inc.Severity.String() != f["severity"]) ||
			(f["status"] != "" && t.Status != f["status"]) || (f["assignee"] != "" && t.Assignee != f["assignee"]) ||
			(f["tlp"] != "" && t.TLP != f["tlp"]) || (f["host"] != "" && !slices.Contains(hosts, f["host"]) && !slices.Contains(inc.HostNames, f["host"])) {
			continue
		}
		rows = append(rows, row{Incident: inc, Triage: t, Fresh: fresh[inc.ID]})
	}
	switch q.Get("sort") {
	case "start":
		slices.SortStableFunc(rows, func(a, b row) int { return a.DwellStart.Compare(b.DwellStart) })
	case "last":
		slices.SortStableFunc(rows, func(a, b row) int { return b.LastSeen.Compare(a.LastSeen) })
	case "status":
		slices.SortStableFunc(rows, func(a, b row) int { return strings.Compare(a.Triage.Status, b.Triage.Status) })
	}
	classes := make([]string, 0, len(counts))
	for k := range counts {
		classes = append(classes, k)
	}
	slices.Sort(classes)
	c.render(w, http.StatusOK, "incidents", map[string]any{"User": u, "Rows": rows, "Counts": counts, "Classes": classes, "Filter": f,
		"HuntedAt": doc.HuntedAt, "Total": len(doc.Incidents), "Since": u.since})
}

// incidentDoc is dwell incident --as's JSON.
type incidentDoc struct {
	Incident correlate.Incident `json:"incident"`
	Triage   triageView         `json:"triage"`
}

func (c *Console) incident(w http.ResponseWriter, r *http.Request, u *user) {
	id := r.PathValue("id")
	var doc incidentDoc
	if err := c.run(r.Context(), &doc, "incident", "--format", "json", "--as", u.Name, u.external(), "--", id); err != nil {
		c.fail(w, r, u, http.StatusNotFound, err.Error())
		return
	}
	if doc.Triage.TLP == "red" {
		c.audit(u.Name, "view_red", doc.Incident.ID, "")
	}
	notes := make([]template.HTML, len(doc.Triage.Notes))
	for i, n := range doc.Triage.Notes {
		notes[i] = c.markdown(n.Text)
	}
	fs := slices.Clone(doc.Incident.Findings)
	detect.Sort(fs)
	c.render(w, http.StatusOK, "incident", map[string]any{"User": u, "I": &doc.Incident, "T": &doc.Triage, "Notes": notes, "Findings": fs,
		"Timeline": timeline(&doc.Incident), "BytesOut": bytesOut(&doc.Incident), "Matrix": matrix(&doc.Incident), "Statuses": []string{"new", "investigating", "contained", "closed", "false_positive"},
		"TLPs": []string{"clear", "green", "amber", "amber+strict", "red"}, "CanEdit": u.Can(RoleAnalyst), "Error": r.URL.Query().Get("error")})
}

// markdown renders a note safely: goldmark leaves raw HTML out and
// bluemonday keeps only the elements and URLs user content may have.
func (c *Console) markdown(text string) template.HTML {
	var buf bytes.Buffer
	if err := c.md.Convert([]byte(text), &buf); err != nil {
		return template.HTML(template.HTMLEscapeString(text)) //nolint:gosec // G203: escaped
	}
	return template.HTML(c.policy.SanitizeBytes(buf.Bytes())) //nolint:gosec // G203: sanitized by bluemonday's UGC policy
}

func (c *Console) triage(w http.ResponseWriter, r *http.Request, u *user) {
	id := r.PathValue("id")
	// The user must see the incident to change it.
	if err := c.run(r.Context(), nil, "incident", "--format", "json", "--as", u.Name, u.external(), "--", id); err != nil {
		c.fail(w, r, u, http.StatusNotFound, err.Error())
		return
	}
	args := []string{"triage", "--format", "json", "--by", u.Name}
	var changed []string
	for _, k := range []string{"status", "assignee", "tlp", "note", "reason"} {
		if v := strings.TrimSpace(r.PostFormValue(k)); v != "" {
			args = append(args, "--"+k, v)
			changed = append(changed, k)
		}
	}
	for _, p := range strings.FieldsFunc(r.PostFormValue("people"), func(r rune) bool { return r == ',' || r == ' ' }) {
		args = append(args, "--person", p)
		changed = append(changed, "people")
	}
	dest := "/incidents/" + url.PathEscape(id)
	if len(changed) > 0 {
		if err := c.run(r.Context(), nil, append(args, "--", id)...); err != nil {
			http.Redirect(w, r, dest+"?error="+url.QueryEscape(err.Error()), http.StatusSeeOther)
			return
		}
		c.audit(u.Name, "triage", id, strings.Join(changed, ","))
	}
	http.Redirect(w, r, dest, http.StatusSeeOther)
}

// allow turns a false-positive verdict into allow-list entries: the
// infrastructure values of the incident the analyst ticked, after an
// explicit confirmation, through dwell allow add.
func (c *Console) allow(w http.ResponseWriter, r *http.Request, u *user) {
	id := r.PathValue("id")
	dest := "/incidents/" + url.PathEscape(id)
	var doc incidentDoc
	if err := c.run(r.Context(), &doc, "incident", "--format", "json", "--as", u.Name, u.external(), "--", id); err != nil {
		c.fail(w, r, u, http.StatusNotFound, err.Error())
		return
	}
	back := func(msg string) { http.Redirect(w, r, dest+"?error="+url.QueryEscape(msg), http.StatusSeeOther) }
	if doc.Triage.Status != "false_positive" {
		back("only an incident closed as a false positive gives allow-list entries")
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		back("nothing allow-listed: tick the confirmation")
		return
	}
	_ = r.ParseForm()
	var values []string
	for _, v := range r.PostForm["value"] {
		if slices.ContainsFunc(doc.Incident.Infrastructure, func(i correlate.Infra) bool { return i.Value == v }) {
			values = append(values, v)
		}
	}
	if len(values) == 0 {
		back("nothing allow-listed: tick the infrastructure to allow")
		return
	}
	args := append([]string{"allow", "add", "--by", u.Name, "--incident", doc.Incident.ID, "--reason",
		clip("false positive: "+doc.Triage.Reason, 500), "--"}, values...)
	if err := c.run(r.Context(), nil, args...); err != nil {
		back(err.Error())
		return
	}
	c.audit(u.Name, "allow", doc.Incident.ID, strings.Join(values, ","))
	http.Redirect(w, r, dest, http.StatusSeeOther)
}

func (c *Console) sql(w http.ResponseWriter, r *http.Request, u *user) {
	if u.Org != "" {
		// The tables hold what TLP:AMBER+STRICT keeps in the organisation.
		c.fail(w, r, u, http.StatusForbidden, "the SQL console is for the organisation's own admins")
		return
	}
	q := strings.TrimSpace(r.PostFormValue("q"))
	data := map[string]any{"User": u, "Query": q}
	if r.Method == http.MethodPost && q != "" {
		c.audit(u.Name, "query", "", clip(q, 2000))
		if r.PostFormValue("format") == "csv" {
			var out, errs bytes.Buffer
			if code := c.o.Runner.Run(r.Context(), []string{"query", "--format", "csv", "--", q}, &out, &errs); code != 0 {
				data["Error"] = strings.TrimSpace(errs.String())
				c.render(w, http.StatusBadRequest, "sql", data)
				return
			}
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", `attachment; filename="dwell-query.csv"`)
			_, _ = out.WriteTo(w)
			return
		}
		cols, cells, n, err := c.table(r.Context(), q, 1000)
		if err != nil {
			data["Error"] = err.Error()
		} else {
			data["Columns"], data["Cells"], data["Rows"] = cols, cells, n
		}
	}
	c.render(w, http.StatusOK, "sql", data)
}

// table runs a query and returns its columns, up to limit rows as text
// and the number of rows (CSV keeps the statement's column order).
func (c *Console) table(ctx context.Context, q string, limit int) ([]string, [][]string, int, error) {
	var out, errs bytes.Buffer
	if code := c.o.Runner.Run(ctx, []string{"query", "--format", "csv", "--", q}, &out, &errs); code != 0 {
		msg := strings.TrimSpace(errs.String())
		if i := strings.Index(msg, ": "); strings.HasPrefix(msg, "dwell ") && i > 0 {
			msg = msg[i+2:]
		}
		return nil, nil, 0, errors.New(msg)
	}
	rd := csv.NewReader(&out)
	rd.FieldsPerRecord = -1
	recs, err := rd.ReadAll()
	if err != nil || len(recs) == 0 {
		return nil, nil, 0, err
	}
	rows := recs[1:]
	for _, r := range rows[:min(len(rows), limit)] {
		for i := range r {
			r[i] = clip(r[i], 500)
		}
	}
	return recs[0], rows[:min(len(rows), limit)], len(rows), nil
}

func cellText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return clip(x, 500)
	default:
		b, _ := json.Marshal(x)
		return clip(string(b), 500)
	}
}

// evidenceText formats a finding's evidence for the page.
func evidenceText(ev map[string]any) []string {
	keys := make([]string, 0, len(ev))
	for k := range ev {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+": "+cellText(ev[k]))
	}
	return out
}
