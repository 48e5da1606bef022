package console

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// provider is a small OpenID Connect provider for tests: discovery, keys,
// an authorization endpoint that logs in as email at once, and a token
// endpoint that checks the code, the client and the PKCE verifier.
type provider struct {
	*httptest.Server
	key   *rsa.PrivateKey
	email string
	// forge, when set, changes the ID token's claims before it is signed.
	forge func(map[string]any)

	mu    sync.Mutex
	codes map[string]map[string]string // code → nonce, challenge, redirect
}

func newProvider(t *testing.T, email string) *provider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &provider{key: key, email: email, codes: map[string]map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": p.URL, "authorization_endpoint": p.URL + "/authorize",
			"token_endpoint": p.URL + "/token", "jwks_uri": p.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"}})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != "dwell" || q.Get("code_challenge_method") != "S256" || q.Get("response_type") != "code" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		code := randomToken()
		p.mu.Lock()
		p.codes[code] = map[string]string{"nonce": q.Get("nonce"), "challenge": q.Get("code_challenge"), "redirect": q.Get("redirect_uri")}
		p.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
		}
		p.mu.Lock()
		c := p.codes[r.PostFormValue("code")]
		delete(p.codes, r.PostFormValue("code"))
		p.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		if id != "dwell" || secret != "s3cret" || c == nil || base64.RawURLEncoding.EncodeToString(sum[:]) != c["challenge"] ||
			r.PostFormValue("redirect_uri") != c["redirect"] {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error": "invalid_grant"}`))
			return
		}
		claims := map[string]any{"iss": p.URL, "sub": "u-1", "aud": "dwell", "exp": time.Now().Add(time.Hour).Unix(),
			"iat": time.Now().Unix(), "nonce": c["nonce"], "email": p.email, "email_verified": true}
		if p.forge != nil {
			p.forge(claims)
		}
		payload, _ := json.Marshal(claims)
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		jws, err := signer.Sign(payload)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		raw, _ := jws.CompactSerialize()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 3600, "id_token": raw})
	})
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Close)
	return p
}

// get fetches a URL with cl (nil: a new client), within the test.
func get(t *testing.T, cl *http.Client, u string) (*answer, string) {
	t.Helper()
	if cl == nil {
		cl = &http.Client{}
	}
	req, err := http.NewRequestWithContext(t.Context(), "GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return read(t, resp)
}

// TestOIDCLogin logs in through a provider the test starts: the account
// the e-mail names is logged in with its role; an e-mail without an
// account, a forged nonce, a token for another client and a replayed
// state are refused.
func TestOIDCLogin(t *testing.T) {
	p := newProvider(t, "alice@ministry.example")
	dir := t.TempDir()
	users := OpenUsers(filepath.Join(dir, "users.json"))
	if err := users.Set("alice@ministry.example", RoleAnalyst, "a password nobody uses", time.Now()); err != nil {
		t.Fatal(err)
	}
	audit, err := OpenAudit(filepath.Join(dir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	c, err := New(Options{Runner: &fakeDwell{}, Users: users, Audit: audit,
		OIDC: &OIDC{Issuer: p.URL, ClientID: "dwell", ClientSecret: "s3cret", RedirectURL: "http://" + srv.Listener.Addr().String() + "/oidc/callback", Label: "Ministry SSO"}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = c
	srv.Start()
	defer srv.Close()
	login := func() (*http.Client, *answer, string) {
		t.Helper()
		jar, _ := cookiejar.New(nil)
		cl := &http.Client{Jar: jar}
		a, body := get(t, cl, srv.URL+"/oidc/login?next=/incidents")
		return cl, a, body
	}
	if _, page := get(t, nil, srv.URL+"/login"); !strings.Contains(page, "Log in with Ministry SSO") {
		t.Errorf("no SSO link on the login page")
	}
	cl, resp, body := login()
	if resp.StatusCode != 200 || !strings.Contains(body, `id="continue"`) {
		t.Fatalf("after the provider: %s %s", resp.Status, body)
	}
	a2, page := get(t, cl, srv.URL+"/incidents")
	if a2.StatusCode != 200 || !strings.Contains(page, "alice@ministry.example (analyst)") {
		t.Errorf("logged in through the provider: %s %s", a2.Status, page[:min(400, len(page))])
	}
	for name, forge := range map[string]func(map[string]any){
		"no account":     func(c map[string]any) { c["email"] = "mallory@ministry.example" },
		"other nonce":    func(c map[string]any) { c["nonce"] = "n0nce" },
		"other client":   func(c map[string]any) { c["aud"] = "someone-else" },
		"unverified":     func(c map[string]any) { c["email_verified"] = false },
		"expired":        func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() },
		"another issuer": func(c map[string]any) { c["iss"] = "https://evil.example" },
	} {
		p.forge = forge
		cl, resp, body := login()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: %s %s", name, resp.Status, body[:min(300, len(body))])
		}
		if _, page := get(t, cl, srv.URL+"/incidents"); strings.Contains(page, `id="incidents"`) {
			t.Errorf("%s: logged in", name)
		}
	}
	p.forge = nil
	// A state is good once: a callback replayed is refused.
	if a, _ := get(t, nil, srv.URL+"/oidc/callback?state=replayed&code=x"); a.StatusCode != http.StatusUnauthorized {
		t.Errorf("an unknown state: %s", a.Status)
	}
}
