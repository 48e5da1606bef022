// Package chtest starts ClickHouse servers for tests: two servers on
// loopback, with their configuration and data under a temporary
// directory, which are one node each and together a cluster of two
// shards. Tests that need them skip, saying why, where ClickHouse is not
// installed (Debian: apt-get install clickhouse-server).
package chtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Cluster is the name of the two-shard cluster in the servers' config.
const Cluster = "dwell2"

// Servers are running ClickHouse servers.
type Servers struct {
	dir   string
	procs []*exec.Cmd
	http  []string // host:port of each server's HTTP interface
	n     atomic.Int64
}

// Binary returns the command that runs a ClickHouse server, or an error
// saying that there is none.
func Binary() ([]string, error) {
	for _, c := range [][]string{{"clickhouse-server"}, {"/usr/sbin/clickhouse-server"}, {"clickhouse", "server"}} {
		if p, err := exec.LookPath(c[0]); err == nil {
			return append([]string{p}, c[1:]...), nil
		}
	}
	return nil, errors.New("ClickHouse is not installed (apt-get install clickhouse-server); the ClickHouse tests are skipped")
}

// Start starts two servers under dir and waits until both answer.
func Start(ctx context.Context, dir string) (*Servers, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(ctx, 6)
	if err != nil {
		return nil, err
	}
	s := &Servers{dir: dir}
	for i := range 2 {
		home := filepath.Join(dir, fmt.Sprintf("node%d", i+1))
		if err := os.MkdirAll(home, 0o755); err != nil {
			return nil, err
		}
		httpPort, tcpPort, interPort := ports[3*i], ports[3*i+1], ports[3*i+2]
		cfg := fmt.Sprintf(configXML, home, home, httpPort, tcpPort, interPort, home, home, home, home, Cluster, ports[1], ports[4])
		if err := os.WriteFile(filepath.Join(home, "config.xml"), []byte(cfg), 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(home, "users.xml"), []byte(usersXML), 0o644); err != nil {
			return nil, err
		}
		out, err := os.Create(filepath.Join(home, "stdout.log"))
		if err != nil {
			return nil, err
		}
		// The servers outlive ctx, which bounds their start only.
		cmd := exec.CommandContext(context.WithoutCancel(ctx), bin[0], append(bin[1:], "--config-file="+filepath.Join(home, "config.xml"))...) //nolint:gosec // G204: the installed server
		cmd.Dir, cmd.Stdout, cmd.Stderr = home, out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			_ = out.Close()
			s.Stop()
			return nil, fmt.Errorf("starting ClickHouse: %w", err)
		}
		_ = out.Close()
		s.procs = append(s.procs, cmd)
		s.http = append(s.http, fmt.Sprintf("127.0.0.1:%d", httpPort))
	}
	deadline := time.Now().Add(60 * time.Second)
	for i, addr := range s.http {
		for {
			err := ping(ctx, addr)
			if err == nil {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				log, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("node%d", i+1), "error.log"))
				s.Stop()
				return nil, fmt.Errorf("ClickHouse on %s did not start: %w\n%s", addr, err, tail(string(log)))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return s, nil
}

// ping asks the server at addr for SELECT 1.
func ping(ctx context.Context, addr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/?query=SELECT%201", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP status %s", resp.Status)
	}
	return nil
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

// Stop stops the servers and waits for them to exit.
func (s *Servers) Stop() {
	for _, c := range s.procs {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
	}
	for _, c := range s.procs {
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	s.procs = nil
}

// SingleURL returns the URL of a new, empty database on the first server.
func (s *Servers) SingleURL() string {
	return fmt.Sprintf("clickhouse://%s/dwell_test_%d", s.http[0], s.n.Add(1))
}

// ClusterURL returns the URL of a new, empty database on the two-shard
// cluster.
func (s *Servers) ClusterURL() string {
	return fmt.Sprintf("clickhouse://%s/dwell_test_%d?cluster=%s&nodes=%s", s.http[0], s.n.Add(1), Cluster, strings.Join(s.http, ","))
}

// HTTP returns the servers' HTTP addresses.
func (s *Servers) HTTP() []string { return s.http }

func freePorts(ctx context.Context, n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	var out []int
	for range n {
		l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// configXML is a server's configuration: loopback only, everything under
// its directory, and the two-shard cluster.
const configXML = `<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>%s/server.log</log><errorlog>%s/error.log</errorlog><console>0</console></logger>
  <http_port>%d</http_port>
  <tcp_port>%d</tcp_port>
  <interserver_http_port>%d</interserver_http_port>
  <listen_host>127.0.0.1</listen_host>
  <path>%s/data/</path>
  <tmp_path>%s/tmp/</tmp_path>
  <user_files_path>%s/user_files/</user_files_path>
  <format_schema_path>%s/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <remote_servers>
    <%[10]s>
      <shard><replica><host>127.0.0.1</host><port>%[11]d</port></replica></shard>
      <shard><replica><host>127.0.0.1</host><port>%[12]d</port></replica></shard>
    </%[10]s>
  </remote_servers>
</yandex>
`

const usersXML = `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`
