package console

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Audit is the console's audit trail: an append-only file of JSON lines,
// each entry holding the hash of the one before it, so that an entry
// edited, removed or moved breaks the chain at that place (Verify). The
// file is the server owner's; the chain makes tampering visible, it does
// not prevent it (ship the log to a write-once store for that).
type Audit struct {
	path string
	mu   sync.Mutex
	last string // hash of the last entry
	seq  int64
}

// Entry is one audited action.
type Entry struct {
	Seq    int64     `json:"seq"`
	At     time.Time `json:"at"`
	User   string    `json:"user"`
	Action string    `json:"action"` // login, login_failed, logout, view_red, triage, query, export
	Object string    `json:"object,omitempty"`
	Detail string    `json:"detail,omitempty"`
	Prev   string    `json:"prev"`
	Hash   string    `json:"hash"`
}

// genesis is the hash before the first entry.
const genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// OpenAudit opens (or creates) the audit file at path and finds the end
// of its chain; a chain already broken is reported.
func OpenAudit(path string) (*Audit, error) {
	a := &Audit{path: path, last: genesis}
	n, last, err := VerifyFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	a.seq, a.last = n, last
	if a.last == "" {
		a.last = genesis
	}
	return a, nil
}

// hashEntry is the hash of an entry's fields (its Hash left empty).
func hashEntry(e Entry) string {
	e.Hash = ""
	b, _ := json.Marshal(e)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Log appends an entry.
func (a *Audit) Log(at time.Time, user, action, object, detail string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := Entry{Seq: a.seq + 1, At: at.UTC(), User: user, Action: action, Object: object, Detail: detail, Prev: a.last}
	e.Hash = hashEntry(e)
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(a.path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(a.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	a.seq, a.last = e.Seq, e.Hash
	return nil
}

// VerifyFile checks the whole chain of an audit file and returns its
// length and last hash; the error names the first entry (by line) that
// was edited, removed, inserted or moved.
func VerifyFile(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	prev, line, n := genesis, 0, int64(0)
	for sc.Scan() {
		line++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			return n, prev, fmt.Errorf("%s line %d: empty line in the audit trail", path, line)
		}
		var e Entry
		if err := json.Unmarshal(raw, &e); err != nil {
			return n, prev, fmt.Errorf("%s line %d: not an audit entry: %w", path, line, err)
		}
		switch {
		case e.Prev != prev:
			return n, prev, fmt.Errorf("%s line %d (entry %d): does not follow the entry before it: an entry was removed, inserted or moved", path, line, e.Seq)
		case e.Hash != hashEntry(e):
			return n, prev, fmt.Errorf("%s line %d (entry %d): its content does not match its hash: the entry was edited", path, line, e.Seq)
		case e.Seq != n+1:
			return n, prev, fmt.Errorf("%s line %d: entry %d where %d was expected", path, line, e.Seq, n+1)
		}
		prev, n = e.Hash, e.Seq
	}
	return n, prev, sc.Err()
}
