package app

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

// TestMain lets the test binary stand in for the dwell command: with
// DWELL_TEST_MAIN=1 it runs the arguments after "--" and exits.
func TestMain(m *testing.M) {
	if os.Getenv("DWELL_TEST_MAIN") == "1" {
		args := os.Args[1:]
		for i, a := range args {
			if a == "--" {
				args = args[i+1:]
				break
			}
		}
		// As cmd/dwell does: SIGINT and SIGTERM end the command cleanly.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := Main(ctx, args, os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(withClickHouse(m))
}

// TestSIGKILLResume kills ingest processes at random points and checks
// that the ingest that finally completes has stored every row exactly once.
func TestSIGKILLResume(t *testing.T) {
	if testing.Short() {
		t.Skip("kills real processes; skipped with -short")
	}
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	const files, perFile = 6, 40000
	for i := range files {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		fmt.Fprint(zw, strings.ReplaceAll(connFixture(perFile), "\tC0", fmt.Sprintf("\tC%d", i)))
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(logs, fmt.Sprintf("2024-04-%02d", 19+i/3), fmt.Sprintf("conn.%02d:00:00-%02d:00:00.log.gz", i, i+1))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	plain := filepath.Join(logs, "current", "conn.log")
	if err := os.MkdirAll(filepath.Dir(plain), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plain, []byte(strings.ReplaceAll(connFixture(20000), "\tC0", "\tCp")), 0o644); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour)
	_ = os.Chtimes(plain, past, past)
	want := files*perFile + 20000

	cfg := filepath.Join(dir, "dwell.yaml")
	db := filepath.Join(dir, "dwell.db")
	if err := os.WriteFile(cfg, []byte("store: "+db+"\ningest:\n  batch_rows: 3000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("kill delays seeded with %d", seed)
	dwell := func() *exec.Cmd {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$", "--", "ingest", "-q", "--config", cfg, logs)
		cmd.Env = append(os.Environ(), "DWELL_TEST_MAIN=1")
		return cmd
	}
	kills := 0
	for range 6 {
		cmd := dwell()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(150+rng.IntN(900)) * time.Millisecond
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("ingest failed before it could be killed: %v\n%s", err, stderr.String())
			}
		case <-time.After(delay):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
			kills++
		}
	}
	cmd := dwell()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("final ingest: %v\n%s", err, out)
	}
	code, out, errOut := runDwell(t, "query", "--db", db, "--format", "csv",
		"SELECT count(*), count(DISTINCT source_file || ':' || source_line), count(DISTINCT uid) FROM conn")
	if code != 0 {
		t.Fatal(errOut)
	}
	got := strings.Split(strings.TrimSpace(out), "\n")[1]
	if exp := fmt.Sprintf("%d,%d,%d", want, want, want); got != exp {
		t.Errorf("after %d kills: rows, distinct lines, distinct uids = %s; want %s", kills, got, exp)
	}
	t.Logf("%d kills, then %s", kills, got)
}

// TestStoreHeldByAnother: a dwell query left open (its output not read,
// as in a pager) holds the store; an ingest then says who holds it, and
// with --wait it waits until the query ends.
func TestStoreHeldByAnother(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a second process; skipped with -short")
	}
	db := filepath.Join(t.TempDir(), "d.db")
	log := filepath.Join(t.TempDir(), "conn.log")
	if err := os.WriteFile(log, []byte(connFixture(10)), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runDwell(t, "ingest", "--complete", "--db", db, log); code != ExitOK {
		t.Fatalf("%s%s", out, errOut)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), self, "--", "query", "--db", db, "--format", "csv", "SELECT * FROM range(10000000)")
	cmd.Env = append(os.Environ(), "DWELL_TEST_MAIN=1")
	out, err := cmd.StdoutPipe() // never read: the query blocks, holding the store
	if err != nil {
		t.Fatal(err)
	}
	var qerr bytes.Buffer
	cmd.Stderr = &qerr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	// Once its first rows come out it holds the store, and blocks.
	if _, err := out.Read(make([]byte, 1)); err != nil {
		t.Fatalf("the query wrote nothing: %v; %s", err, qerr.String())
	}
	code, _, errOut := runDwell(t, "ingest", "--complete", "--db", db, log)
	if code != ExitFail {
		t.Errorf("an ingest while the store is held: exit %d", code)
	}
	want := fmt.Sprintf("in use by `%s -- query --db %s", filepath.Base(self), db)
	if !strings.Contains(errOut, want) || !strings.Contains(errOut, fmt.Sprintf("(pid %d, since ", cmd.Process.Pid)) ||
		!strings.Contains(errOut, "--wait") || strings.Contains(errOut, "readonly") {
		t.Errorf("the refusal does not name the holder:\n%s\nwant %q\n(the query: %s)", errOut, want, qerr.String())
	}
	// With --wait, the ingest waits for the query to end.
	go func() {
		time.Sleep(time.Second)
		_ = out.Close()
		_ = cmd.Process.Kill()
	}()
	var stdout string
	code, stdout, errOut = runDwell(t, "ingest", "--complete", "--wait", "30s", "--db", db, log)
	if code != ExitOK || !strings.Contains(errOut, "waiting up to 30s") {
		t.Errorf("--wait: exit %d\n%s%s", code, stdout, errOut)
	}
}
