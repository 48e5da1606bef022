package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/store"
)

// DuckDB lets one process write a store, or several read it, at a time.
// Until dwell serve owns the store for everyone, a command that finds it
// held says by whom (the command line, process id and start of the
// holder) and, with --wait, waits for it.

// openWaiting opens the store as openStore does, trying again every half
// second while another process holds it, for up to wait; it tells on w
// once that it waits, and for whom.
func openWaiting(ctx context.Context, cfg *config.Config, readOnly bool, wait time.Duration, w func(string)) (store.Store, error) {
	deadline := time.Now().Add(wait)
	told := false
	for {
		st, err := openStore(ctx, cfg, readOnly, w)
		var inUse *store.InUseError
		if !errors.As(err, &inUse) {
			return st, err
		}
		if wait <= 0 || time.Now().After(deadline) {
			advice := "wait for it to end, or add --wait 10m to wait here"
			if wait > 0 {
				advice = fmt.Sprintf("waited %s", wait)
			}
			return nil, fmt.Errorf("store %s is in use by %s: DuckDB lets one process write a store at a time; %s",
				inUse.Path, describeProcess(inUse.PID), advice)
		}
		if !told && w != nil {
			w(fmt.Sprintf("store %s is in use by %s: waiting up to %s", inUse.Path, describeProcess(inUse.PID), wait))
			told = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// describeProcess names a process from /proc: its command line, id and
// start ("`dwell ingest /nsm/zeek` (pid 1234, since 09:12:03)"), or what
// is known of it.
func describeProcess(pid int) string {
	if pid <= 0 {
		return "another process"
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(cmdline) == 0 {
		return fmt.Sprintf("process %d", pid)
	}
	args := strings.Split(string(bytes.TrimRight(cmdline, "\x00")), "\x00")
	if i := strings.LastIndexByte(args[0], '/'); i >= 0 {
		args[0] = args[0][i+1:]
	}
	cmd := sanitize(strings.Join(args, " "), 120)
	if since := processStart(pid); !since.IsZero() {
		return fmt.Sprintf("`%s` (pid %d, since %s)", cmd, pid, since.Local().Format(time.DateTime))
	}
	return fmt.Sprintf("`%s` (pid %d)", cmd, pid)
}

// processStart reads when a process started: its start in clock ticks
// after boot (/proc/PID/stat, field 22; 100 ticks a second on Linux) and
// the boot time (/proc/stat, btime). Zero when unknown.
func processStart(pid int) time.Time {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return time.Time{}
	}
	// The command name (field 2) may hold spaces: count from its end.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return time.Time{}
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 20 {
		return time.Time{}
	}
	ticks, err := strconv.ParseInt(fields[19], 10, 64) // field 22: the third is field 1 after ")"
	if err != nil {
		return time.Time{}
	}
	sys, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}
	}
	for _, line := range strings.Split(string(sys), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			boot, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}
			}
			return time.Unix(boot, 0).Add(time.Duration(ticks) * 10 * time.Millisecond)
		}
	}
	return time.Time{}
}
