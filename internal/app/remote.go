package app

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/server"
)

// A command that uses the store runs through dwell serve when one holds
// that store: the command line is sent to the server (POST /api/v1/run)
// and what the command prints there is printed here, so the output and
// the exit code are the same as when it runs here. The server is found
// through its state directory (serve.state_dir, by default beside the
// DuckDB file), or named with --server URL (its token then from
// --token-file, DWELL_TOKEN or that directory).

// remoteTarget is a server to run a command through.
type remoteTarget struct {
	url    string
	token  string
	client *http.Client
}

// remoteFor returns the server that should run args, nil when the
// command runs here. It reads only the options that find the server and
// takes --server and --token-file out of args.
func (a *App) remoteFor(name string, args []string) (*remoteTarget, []string, error) {
	if a.served != nil || !slices.Contains(remoteCommands, name) || name == "version" {
		return nil, args, nil
	}
	var cfgPath, db, url, tokenFile string
	rest := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		if arg == "-h" || arg == "--help" || arg == "-help" {
			return nil, args, nil
		}
		key, val, hasVal := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if !strings.HasPrefix(arg, "-") {
			rest = append(rest, arg)
			continue
		}
		var dst *string
		switch key {
		case "server":
			dst = &url
		case "token-file":
			dst = &tokenFile
		case "config":
			dst = &cfgPath
		case "db":
			dst = &db
		default:
			rest = append(rest, arg)
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, args, nil // the command reports it
			}
			i++
			val = args[i]
		}
		*dst = val
		if key == "config" || key == "db" {
			rest = append(rest, "--"+key, val)
		}
	}
	var certFile, stateDir string
	found := url == ""
	if url == "" {
		cfg, err := config.Load(cfgPath)
		if err != nil {
			return nil, args, nil // the command reports it
		}
		if db != "" {
			cfg.Store = db
		}
		cfg.ServeDefaults()
		f, err := findServer(cfg)
		if err != nil {
			return nil, args, nil
		}
		url, certFile, stateDir = f.URL, f.Cert, cfg.Serve.StateDir
	} else if cfgPath != "" || db != "" {
		if cfg, err := config.Load(cfgPath); err == nil {
			if db != "" {
				cfg.Store = db
			}
			cfg.ServeDefaults()
			stateDir = cfg.Serve.StateDir
		}
	}
	if certFile == "" && stateDir != "" {
		// The certificate a server of this store generated, if any.
		if c := filepath.Join(stateDir, "cert.pem"); fileExists(c) {
			certFile = c
		}
	}
	token, err := readToken(tokenFile, stateDir)
	if err != nil {
		return nil, nil, err
	}
	client, err := httpClient(certFile)
	if err != nil {
		return nil, nil, err
	}
	r := &remoteTarget{url: strings.TrimRight(url, "/"), token: token, client: client}
	if found && !r.alive(context.Background()) {
		return nil, args, nil // a server file left behind: the store is free
	}
	return r, absolutePaths(rest), nil
}

// findServer returns the server file of cfg's state directory when its
// process is alive.
func findServer(cfg *config.Config) (*serverFile, error) {
	data, err := os.ReadFile(filepath.Join(cfg.Serve.StateDir, serverFileName))
	if err != nil {
		return nil, err
	}
	var f serverFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	if f.PID <= 0 {
		return nil, errors.New("no server process")
	}
	if err := syscall.Kill(f.PID, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return nil, fmt.Errorf("server %d is gone", f.PID)
	}
	return &f, nil
}

// readToken reads the API token: from file, DWELL_TOKEN or the state
// directory, in that order.
func readToken(file, stateDir string) (string, error) {
	if file == "" {
		if t := os.Getenv("DWELL_TOKEN"); t != "" {
			return t, nil
		}
		if stateDir == "" {
			return "", errors.New("--server needs a token: --token-file FILE, DWELL_TOKEN, or --config/--db naming the server's store")
		}
		file = filepath.Join(stateDir, tokenFileName)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("the server's token: %w (it is readable by the server's user only)", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// httpClient trusts the system's roots and, when given, the server's
// generated certificate.
func httpClient(certFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if certFile != "" {
		pem, err := os.ReadFile(certFile)
		if err != nil {
			return nil, fmt.Errorf("the server's certificate: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the server's certificate %s holds no certificate", certFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr}, nil
}

// absolutePaths makes the arguments that name local files absolute (the
// server does not share the client's working directory), and the values
// of --out, --keep and --markdown (files to be made).
func absolutePaths(args []string) []string {
	out := slices.Clone(args)
	for i, arg := range out {
		if arg == "-" || arg == "" {
			continue
		}
		if key, val, ok := strings.Cut(arg, "="); ok && strings.HasPrefix(key, "-") {
			if slices.Contains([]string{"--out", "-out", "--keep", "-keep", "--markdown", "-markdown"}, key) && val != "-" {
				if abs, err := filepath.Abs(val); err == nil {
					out[i] = key + "=" + abs
				}
			}
			continue
		}
		if strings.HasPrefix(arg, "-") {
			continue
		}
		prev := ""
		if i > 0 {
			prev = strings.TrimLeft(out[i-1], "-")
		}
		_, err := os.Stat(arg) //nolint:gosec // G703: the user's own argument, tested for being a local file

		if err == nil || prev == "out" || prev == "keep" || prev == "markdown" {
			if abs, err := filepath.Abs(arg); err == nil {
				out[i] = abs
			}
		}
	}
	return out
}

// run sends a command line to the server and prints what it prints.
func (r *remoteTarget) run(ctx context.Context, a *App, args []string) int {
	body, err := json.Marshal(server.RunRequest{Args: args})
	if err != nil {
		fmt.Fprintf(a.Stderr, "dwell: %v\n", err)
		return ExitFail
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url+"/api/v1/run", bytes.NewReader(body)) //nolint:gosec // G704: the server the user named or that holds the user's store
	if err != nil {
		fmt.Fprintf(a.Stderr, "dwell: %v\n", err)
		return ExitFail
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req) //nolint:gosec // G704: as above
	if err != nil {
		fmt.Fprintf(a.Stderr, "dwell: the server at %s: %v\n", r.url, err)
		return ExitFail
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e)
		fmt.Fprintf(a.Stderr, "dwell: the server at %s answered %s: %s\n", r.url, resp.Status, e.Error)
		return ExitFail
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		var f server.Frame
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			fmt.Fprintf(a.Stderr, "dwell: the server's answer: %v\n", err)
			return ExitFail
		}
		switch {
		case f.Exit != nil:
			return *f.Exit
		case f.Err != "":
			_, _ = io.WriteString(a.Stderr, f.Err)
		default:
			_, _ = io.WriteString(a.Stdout, f.Out)
		}
	}
	fmt.Fprintf(a.Stderr, "dwell: the server at %s ended the command without its exit code (%v): it may have stopped\n", r.url, sc.Err())
	return ExitFail
}

// alive reports whether the server answers at all (a server file left by
// a server killed with -9 names a dead address).
func (r *remoteTarget) alive(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
