package console

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// OIDC configures login through an OpenID Connect provider (Keycloak,
// Entra ID, a ministry's SSO): the authorization code flow with PKCE,
// the ID token checked by go-oidc (issuer, audience, expiry, signature,
// nonce). The provider says who the user is; dwell's accounts say what
// they may do: the claim must name an existing account, whose role and
// organisation apply.
type OIDC struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is the console's /oidc/callback as the browser reaches
	// it.
	RedirectURL string
	// Claim names the account: "email" (default) or another string claim
	// such as "preferred_username".
	Claim string
	// Label is the provider's name on the login page.
	Label string
}

// oidcLogin is the console's side of the flow.
type oidcLogin struct {
	cfg OIDC

	mu       sync.Mutex
	provider *oidc.Provider // found at the first login, then kept
	pending  map[string]oidcPending
}

// oidcPending is a login on its way through the provider, by its state.
type oidcPending struct {
	nonce, verifier, next string
	expires               time.Time
}

const oidcPendingLife = 10 * time.Minute

// setup discovers the provider once and returns the flow's settings.
func (o *oidcLogin) setup(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider == nil {
		p, err := oidc.NewProvider(ctx, o.cfg.Issuer)
		if err != nil {
			return nil, nil, fmt.Errorf("the identity provider %s: %w", o.cfg.Issuer, err)
		}
		o.provider = p
	}
	oc := &oauth2.Config{ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret, RedirectURL: o.cfg.RedirectURL,
		Endpoint: o.provider.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "email", "profile"}}
	return oc, o.provider.Verifier(&oidc.Config{ClientID: o.cfg.ClientID}), nil
}

func (o *oidcLogin) remember(state string, p oidcPending, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pending == nil {
		o.pending = map[string]oidcPending{}
	}
	for k, v := range o.pending {
		if now.After(v.expires) {
			delete(o.pending, k)
		}
	}
	o.pending[state] = p
}

// take returns and forgets a pending login: a state is good once.
func (o *oidcLogin) take(state string, now time.Time) (oidcPending, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p, ok := o.pending[state]
	delete(o.pending, state)
	return p, ok && now.Before(p.expires)
}

// oidcStart sends the browser to the provider.
func (c *Console) oidcStart(w http.ResponseWriter, r *http.Request) {
	oc, _, err := c.oidc.setup(r.Context())
	if err != nil {
		c.fail(w, r, nil, http.StatusBadGateway, err.Error())
		return
	}
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	c.oidc.remember(state, oidcPending{nonce: nonce, verifier: verifier, next: safeNext(r.URL.Query().Get("next")),
		expires: c.o.Now().Add(oidcPendingLife)}, c.o.Now())
	http.Redirect(w, r, oc.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// oidcCallback takes the provider's answer: the state must be one this
// console sent, the code is exchanged with the PKCE verifier, the ID
// token verified and its nonce checked, and the claim must name an
// account.
func (c *Console) oidcCallback(w http.ResponseWriter, r *http.Request) {
	now := c.o.Now()
	refuse := func(why string) {
		c.audit("", "login_failed", "oidc", why)
		c.render(w, http.StatusUnauthorized, "login", map[string]any{"Next": "/incidents", "Error": why, "OIDC": c.oidcLabel()})
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		refuse("the identity provider refused: " + clip(e+" "+q.Get("error_description"), 200))
		return
	}
	p, ok := c.oidc.take(q.Get("state"), now)
	if !ok {
		refuse("this login was not started here, or took too long: start again")
		return
	}
	oc, verifier, err := c.oidc.setup(r.Context())
	if err != nil {
		refuse(err.Error())
		return
	}
	tok, err := oc.Exchange(r.Context(), q.Get("code"), oauth2.VerifierOption(p.verifier))
	if err != nil {
		refuse("the identity provider did not accept the login: " + clip(err.Error(), 200))
		return
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		refuse("the identity provider sent no ID token")
		return
	}
	idt, err := verifier.Verify(r.Context(), raw)
	if err != nil {
		refuse("the ID token does not verify: " + clip(err.Error(), 200))
		return
	}
	if idt.Nonce != p.nonce {
		refuse("the ID token is not for this login (nonce)")
		return
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		refuse(err.Error())
		return
	}
	claim := c.oidc.cfg.Claim
	if claim == "" {
		claim = "email"
	}
	name, _ := claims[claim].(string)
	if claim == "email" {
		if v, ok := claims["email_verified"].(bool); ok && !v {
			refuse("the identity provider has not verified this e-mail address")
			return
		}
	}
	acct, err := c.o.Users.Get(name)
	if err != nil || acct == nil || name == "" {
		refuse(fmt.Sprintf("%q has no account here: an admin adds it (dwell users add)", clip(name, 80)))
		return
	}
	c.startSession(w, r, acct, now, "oidc")
	// The browser came here from the provider: a SameSite=Strict cookie
	// goes with the next request only if this site starts it, so the page
	// moves on by itself (no script: a refresh).
	next := template.HTMLEscapeString(p.next)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=%s">`+
		`<title>dwell</title></head><body><p>Logged in. <a href="%s" id="continue">Continue</a></p></body></html>`, next, next)
}

func (c *Console) oidcLabel() string {
	if c.oidc == nil {
		return ""
	}
	if c.oidc.cfg.Label != "" {
		return c.oidc.cfg.Label
	}
	if u, err := url.Parse(c.oidc.cfg.Issuer); err == nil {
		return u.Host
	}
	return "single sign-on"
}
