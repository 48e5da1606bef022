// Package app is dwell's composition root: it parses the command line,
// loads the configuration, builds the store, the input formats and the other
// plug-ins, and runs the command the user asked for. It is the only package
// that imports concrete backends and plug-ins.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/clickhouse"
	"github.com/dwell-nsm/dwell/internal/store/duckdb"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitFail  = 1
	ExitUsage = 2
)

// App holds what every command needs: its streams, a logger and a clock.
type App struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Interactive is true when Stderr is a terminal: progress is shown.
	Interactive bool
	Logger      *slog.Logger
	Now         func() time.Time
	// served is set in the commands dwell serve runs: they use its store
	// and configuration.
	served *served
}

// command is one dwell subcommand.
type command struct {
	name    string
	summary string
	usage   string // synopsis, options are appended by the flag set
	example string
	run     func(ctx context.Context, a *App, args []string) error
}

func commands() []command {
	return []command{
		ingestCommand(),
		queryCommand(),
		huntCommand(),
		scenarioCommand(),
		demoCommand(),
		intelCommand(),
		exportCommand(),
		incidentsCommand(),
		incidentCommand(),
		evalCommand(),
		statusCommand(),
		deleteCommand(),
		rulesCommand(),
		serveCommand(),
		replayCommand(),
		triageCommand(),
		usersCommand(),
		allowCommand(),
		auditCommand(),
		versionCommand(),
	}
}

// usageError is a command-line mistake: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// Main runs dwell with args (without the program name) and returns the exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &App{
		Stdin: stdin, Stdout: stdout, Stderr: stderr,
		Interactive: isTerminal(stderr),
		Logger:      slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Now:         time.Now,
	}
	return a.Main(ctx, args)
}

// Main runs one command line.
func (a *App) Main(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			return a.Main(ctx, []string{args[1], "--help"})
		}
		a.help(a.Stdout)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	switch args[0] {
	case "--version", "-version", "-v", "-V":
		args = append([]string{"version"}, args[1:]...)
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		remote, rargs, err := a.remoteFor(c.name, args[1:])
		if err != nil {
			fmt.Fprintf(a.Stderr, "dwell %s: %v\n", c.name, err)
			return ExitFail
		}
		if remote != nil {
			return remote.run(ctx, a, append([]string{c.name}, rargs...))
		}
		err = c.run(ctx, a, args[1:])
		var ue *usageError
		switch {
		case err == nil:
			return ExitOK
		case errors.Is(err, flag.ErrHelp):
			return ExitOK
		case errors.As(err, &ue):
			fmt.Fprintf(a.Stderr, "dwell %s: %v\nRun 'dwell %s --help' for usage.\n", c.name, err, c.name)
			return ExitUsage
		case errors.Is(err, errQuiet):
			return ExitFail
		default:
			fmt.Fprintf(a.Stderr, "dwell %s: %s\n", c.name, userMessage(err))
			return ExitFail
		}
	}
	fmt.Fprintf(a.Stderr, "dwell: unknown command %q\n\n", args[0])
	a.help(a.Stderr)
	return ExitUsage
}

// userMessage is err's text for dwell's user. DuckDB ends some errors
// with advice for its own shell ("Possible solutions: ... SET threads=X");
// dwell's user sets these in dwell's configuration, not in SQL.
func userMessage(err error) string {
	msg := err.Error()
	i := strings.Index(msg, "Possible solutions:")
	if i < 0 {
		return msg
	}
	msg = strings.TrimRight(msg[:i], " \n")
	if strings.Contains(msg, "Out of Memory") {
		msg += "\n(the store ran out of its memory_limit: raise memory_limit in dwell's configuration, docs/config.md, " +
			"or narrow the work with --since or --detectors)"
	}
	return msg
}

// errQuiet is returned by commands that already reported why they failed.
var errQuiet = errors.New("failed")

func (a *App) help(w io.Writer) {
	fmt.Fprint(w, `dwell finds what an intruder does over months in network telemetry:
slow beacons, tunnels, exfiltration, lateral movement; it keeps years of
Zeek logs in an embedded store and answers from all of them.

Usage: dwell <command> [options] [arguments]

Commands:
`)
	cmds := commands()
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun 'dwell <command> --help' for a command's options and examples.\n")
}

// common are the options every store command takes.
type common struct {
	config string
	db     string
	sensor string
	wait   time.Duration // --wait: how long to wait for a process holding the store
	tell   func(string)  // says on standard error that it waits
	served *served       // inside dwell serve: its store and configuration
}

// newFlags returns a flag set for c with the common options bound to co
// (nil for commands that do not touch the store).
func (a *App) newFlags(c command, co *common) *flag.FlagSet {
	fs := flag.NewFlagSet("dwell "+c.name, flag.ContinueOnError)
	fs.SetOutput(a.Stderr)
	if co != nil {
		fs.StringVar(&co.config, "config", "", "configuration `file` (YAML); see docs/config.md")
		fs.StringVar(&co.db, "db", "", "store: a DuckDB `file` (default ./dwell.db) or a clickhouse:// URL")
		fs.DurationVar(&co.wait, "wait", 0, "wait up to this `duration` (10m) for another dwell process holding the store")
		co.tell = func(s string) { fmt.Fprintln(a.Stderr, "dwell: "+s) }
		co.served = a.served
	}
	fs.Usage = func() {
		fmt.Fprintf(a.Stdout, "%s\n\nUsage: dwell %s\n\nOptions:\n", c.summary, c.usage)
		printFlags(a.Stdout, fs)
		if c.example != "" {
			fmt.Fprintf(a.Stdout, "\nExamples:\n%s", c.example)
		}
	}
	return fs
}

// printFlags lists a command's options as the README writes them, with two
// dashes (the flag package accepts one or two; its own listing shows one).
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		if len(line) <= 5 { // a short one fits before its text
			line += "\t"
		} else {
			line += "\n    \t"
		}
		line += strings.ReplaceAll(usage, "\n", "\n    \t")
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "-1" {
			line += fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintln(w, line)
	})
}

// parse parses flags and positional arguments in any order
// ("dwell ingest logs/ --db x.db" works as well as the reverse).
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	// An argument with a blank in it is never a flag, unless it is the
	// value of the flag before it: a query that starts with an SQL
	// comment ("-- why\nSELECT ...") is a positional argument.
	for i, a := range args {
		if strings.HasPrefix(a, "-") && strings.ContainsAny(a, " \t\r\n") && !takesValue(fs, args[:i]) {
			before, err := parse(fs, args[:i])
			if err != nil {
				return nil, err
			}
			after, err := parse(fs, args[i+1:])
			if err != nil {
				return nil, err
			}
			return append(append(before, a), after...), nil
		}
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// takesValue reports whether the last of before is a flag that takes the
// next argument as its value ("--sensor" before "my site").
func takesValue(fs *flag.FlagSet, before []string) bool {
	if len(before) == 0 {
		return false
	}
	last := before[len(before)-1]
	name, ok := strings.CutPrefix(strings.TrimPrefix(last, "-"), "-")
	if !ok {
		name = strings.TrimPrefix(last, "-")
	}
	if !strings.HasPrefix(last, "-") || strings.Contains(name, "=") {
		return false
	}
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, isBool := f.Value.(interface{ IsBoolFlag() bool })
	return !isBool || !b.IsBoolFlag()
}

// loadConfig reads the configuration and applies the command-line options.
func (co *common) loadConfig() (*config.Config, error) {
	if co.served != nil {
		// The server's configuration and store, whatever the command
		// line that came through it says.
		c := *co.served.cfg.Load()
		if co.sensor != "" {
			c.Sensor = co.sensor
		}
		return &c, c.Validate()
	}
	cfg, err := config.Load(co.config)
	if err != nil {
		return nil, err
	}
	if co.db != "" {
		cfg.Store = co.db
	}
	if co.sensor != "" {
		cfg.Sensor = co.sensor
	}
	cfg.ServeDefaults()
	return cfg, errors.Join(cfg.Validate(), cfg.ValidateServe())
}

// open loads the configuration and opens its store.
func (co *common) open(ctx context.Context, readOnly bool) (*config.Config, store.Store, error) {
	cfg, err := co.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	st, err := co.openStore(ctx, cfg, readOnly)
	return cfg, st, err
}

// openStore opens cfg's store, waiting for its holder as --wait says.
func (co *common) openStore(ctx context.Context, cfg *config.Config, readOnly bool) (store.Store, error) {
	if co.served != nil {
		return co.served.store(), nil
	}
	return openWaiting(ctx, cfg, readOnly, co.wait, co.tell)
}

// subcommand handles what a command with subcommands gets before its
// subcommand's name: its help, or a usage error saying what it wants.
// It returns the subcommand's name, "" when there is nothing more to do.
func subcommand(a *App, c command, args []string, want string) (string, error) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], nil
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		c.usageTo(a)
		return "", nil
	}
	return "", usagef("%s needs %s", c.name, want)
}

// openStore opens the configured backend.
// tell, when set, is told of long work the opening does (a migration).
func openStore(ctx context.Context, cfg *config.Config, readOnly bool, tell func(string)) (store.Store, error) {
	if clickhouse.IsURL(cfg.Store) {
		return clickhouse.Open(ctx, cfg.Store, clickhouse.Options{ReadOnly: readOnly})
	}
	return duckdb.Open(ctx, cfg.Store, duckdb.Options{ReadOnly: readOnly, MemoryLimit: cfg.MemoryLimit, Threads: cfg.Threads, Notice: tell})
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	if err != nil {
		return false
	}
	return st.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}
