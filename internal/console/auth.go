package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
)

// Roles, least to most.
const (
	RoleViewer  = "viewer"  // reads what TLP lets them
	RoleAnalyst = "analyst" // triages: status, assignee, notes, TLP
	RoleAdmin   = "admin"   // the SQL console too
)

// Roles returns the roles, least to most.
func Roles() []string { return []string{RoleViewer, RoleAnalyst, RoleAdmin} }

// User is a local account.
type User struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// Hash is the password's argon2id hash in the PHC string format.
	Hash    string    `json:"hash"`
	Created time.Time `json:"created"`
	// Org names another organisation the user belongs to (a partner CERT);
	// empty for the organisation that runs dwell. TLP:AMBER+STRICT is for
	// the latter only.
	Org string `json:"org,omitempty"`
	// LastLogin is when the user last logged in (the console marks what
	// changed since the login before the current one).
	LastLogin time.Time `json:"last_login,omitzero"`
	// Tokens are the account's API tokens for scripts, kept as SHA-256.
	Tokens []APIToken `json:"tokens,omitempty"`
}

// APIToken is one API token of an account.
type APIToken struct {
	Label   string    `json:"label"`
	Hash    string    `json:"sha256"`
	Created time.Time `json:"created"`
}

// tokenPrefix marks dwell's account tokens (and tells them from the
// server's own token).
const tokenPrefix = "dwl_"

func tokenHash(t string) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}

// AddToken makes an API token for an account and returns it; only its
// hash is kept.
func (u *Users) AddToken(name, label string, now time.Time) (string, error) {
	t := tokenPrefix + randomToken()
	err := u.update(name, func(x *User) {
		x.Tokens = append(x.Tokens, APIToken{Label: label, Hash: tokenHash(t), Created: now.UTC()})
	})
	return t, err
}

// ByToken returns the account an API token belongs to.
func (u *Users) ByToken(token string) (*User, bool) {
	if !strings.HasPrefix(token, tokenPrefix) {
		return nil, false
	}
	h := []byte(tokenHash(token))
	u.mu.Lock()
	defer u.mu.Unlock()
	list, err := u.load()
	if err != nil {
		return nil, false
	}
	var found *User
	for i := range list {
		for _, t := range list[i].Tokens {
			if subtle.ConstantTimeCompare(h, []byte(t.Hash)) == 1 && found == nil {
				found = &list[i]
			}
		}
	}
	return found, found != nil
}

// Can reports whether the user's role reaches role.
func (u *User) Can(role string) bool {
	return slices.Index(Roles(), u.Role) >= slices.Index(Roles(), role) && slices.Contains(Roles(), role)
}

// Users are the accounts, kept in a JSON file readable by the server's
// owner only.
type Users struct {
	path string
	mu   sync.Mutex
}

// OpenUsers returns the accounts kept in path (created when first written).
func OpenUsers(path string) *Users { return &Users{path: path} }

func (u *Users) load() ([]User, error) {
	b, err := os.ReadFile(u.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var list []User
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("%s: %w", u.path, err)
	}
	return list, nil
}

func (u *Users) save(list []User) error {
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(u.path), 0o700); err != nil {
		return err
	}
	tmp := u.path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, u.path)
}

// List returns the accounts, without their hashes.
func (u *Users) List() ([]User, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	list, err := u.load()
	for i := range list {
		list[i].Hash = ""
		for j := range list[i].Tokens {
			list[i].Tokens[j].Hash = ""
		}
	}
	return list, err
}

// Get returns one account.
func (u *Users) Get(name string) (*User, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	list, err := u.load()
	if err != nil {
		return nil, err
	}
	for i := range list {
		if list[i].Name == name {
			return &list[i], nil
		}
	}
	return nil, nil
}

// ValidName reports whether a user name is acceptable: 1 to 64 letters,
// digits, dots, dashes, underscores or @.
func ValidName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, r := range name {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		digit := r >= '0' && r <= '9'
		if !letter && !digit && !strings.ContainsRune("._-@", r) {
			return false
		}
	}
	return true
}

// SetOrg sets the organisation of an account ("" for the one that runs
// dwell).
func (u *Users) SetOrg(name, org string) error {
	return u.update(name, func(x *User) { x.Org = org })
}

// Visited records a login at now and returns the one before it.
func (u *Users) Visited(name string, now time.Time) (time.Time, error) {
	var prev time.Time
	err := u.update(name, func(x *User) { prev, x.LastLogin = x.LastLogin, now.UTC() })
	return prev, err
}

// modify loads the accounts, lets fn change the list, and saves it, all
// under the lock.
func (u *Users) modify(fn func([]User) ([]User, error)) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	list, err := u.load()
	if err != nil {
		return err
	}
	if list, err = fn(list); err != nil {
		return err
	}
	return u.save(list)
}

func (u *Users) update(name string, fn func(*User)) error {
	return u.modify(func(list []User) ([]User, error) {
		for i := range list {
			if list[i].Name == name {
				fn(&list[i])
				return list, nil
			}
		}
		return nil, fmt.Errorf("no user %q", name)
	})
}

// Set adds an account or changes its role and password.
func (u *Users) Set(name, role, password string, now time.Time) error {
	if !ValidName(name) {
		return fmt.Errorf("%q is not a user name (letters, digits, . _ - @; at most 64)", name)
	}
	if !slices.Contains(Roles(), role) {
		return fmt.Errorf("%q is not a role (%s)", role, strings.Join(Roles(), ", "))
	}
	if len(password) < 12 {
		return errors.New("a password has at least 12 characters")
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	return u.modify(func(list []User) ([]User, error) {
		for i := range list {
			if list[i].Name == name {
				list[i].Role, list[i].Hash = role, hash
				return list, nil
			}
		}
		return append(list, User{Name: name, Role: role, Hash: hash, Created: now.UTC()}), nil
	})
}

// Remove deletes an account.
func (u *Users) Remove(name string) error {
	return u.modify(func(list []User) ([]User, error) {
		n := len(list)
		list = slices.DeleteFunc(list, func(x User) bool { return x.Name == name })
		if len(list) == n {
			return nil, fmt.Errorf("no user %q", name)
		}
		return list, nil
	})
}

// argon2id parameters: RFC 9106's second recommended option (64 MiB,
// three passes), one lane per core we may take.
const (
	argonTime    = 3
	argonMemory  = 64 * 1024
	argonThreads = 2
	argonKeyLen  = 32
)

// HashPassword returns password's argon2id hash as a PHC string.
func HashPassword(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// CheckPassword reports whether password matches a PHC argon2id hash.
func CheckPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m > 1<<20 || t > 16 || p == 0 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want))) //nolint:gosec // G115: a key length read back from our own hash
	return subtle.ConstantTimeCompare(got, want) == 1
}

// limiter counts failed logins per user name and per client address: five
// failures lock either out for a quarter of an hour.
type limiter struct {
	mu    sync.Mutex
	fails map[string][]time.Time
}

const (
	maxFails = 5
	lockout  = 15 * time.Minute
)

// locked reports whether key is locked out at now, and until when.
func (l *limiter) locked(key string, now time.Time) (bool, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.recent(key, now)
	if len(f) >= maxFails {
		return true, f[len(f)-maxFails].Add(lockout)
	}
	return false, time.Time{}
}

func (l *limiter) recent(key string, now time.Time) []time.Time {
	f := slices.DeleteFunc(l.fails[key], func(t time.Time) bool { return now.Sub(t) > lockout })
	if len(f) == 0 {
		delete(l.fails, key)
		return nil
	}
	l.fails[key] = f
	return f
}

func (l *limiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fails == nil {
		l.fails = map[string][]time.Time{}
	}
	l.fails[key] = append(l.recent(key, now), now)
}

func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, key)
}

// session is a logged-in user's session.
type session struct {
	user    string
	csrf    string
	expires time.Time
	since   time.Time // the user's login before this one
}

// sessions are kept in memory: a restart logs everyone out.
type sessions struct {
	mu sync.Mutex
	m  map[string]*session
}

const sessionLife = 8 * time.Hour

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// start makes a new session for user (a new id whatever the client sent:
// no fixation).
func (s *sessions) start(user string, now time.Time) (string, *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*session{}
	}
	for id, x := range s.m {
		if now.After(x.expires) {
			delete(s.m, id)
		}
	}
	id := randomToken()
	x := &session{user: user, csrf: randomToken(), expires: now.Add(sessionLife)}
	s.m[id] = x
	return id, x
}

func (s *sessions) get(id string, now time.Time) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.m[id]
	if x == nil || now.After(x.expires) {
		delete(s.m, id)
		return nil
	}
	return x
}

func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}
