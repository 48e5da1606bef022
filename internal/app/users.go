package app

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/console"
)

// The web console's accounts and audit trail live in the server's state
// directory, beside its token: these commands work on the files there
// (as the server's user), with or without a running server.

func usersCommand() command {
	return command{
		name:    "users",
		summary: "manage the web console's accounts: add (or change), list, remove, and their API tokens",
		usage:   "users add|list|remove|token [--config FILE] [--db FILE] [--role viewer|analyst|admin] [--org ORG] [--label L] [NAME]",
		example: `  dwell users add --role analyst alice          # prints a generated password
  echo 'a long passphrase here' | dwell users add --role admin --password-stdin bob
  dwell users add --role viewer --org cert.partner.example pierre   # a partner: no TLP:AMBER+STRICT
  dwell users list
  dwell users remove alice
  dwell users token --label nightly-report alice   # an API token for a script, shown once

Roles: viewer (reads what TLP lets them), analyst (triages: status,
assignee, TLP, notes), admin (the SQL console too). Passwords are kept
as argon2id hashes in the server's state directory (docs/console.md).
`,
		run: runUsers,
	}
}

func runUsers(ctx context.Context, a *App, args []string) error {
	c := usersCommand()
	sub, err := subcommand(a, c, args, "add, list, remove or token")
	if err != nil || sub == "" {
		return err
	}
	var co common
	fs := a.newFlags(c, &co)
	role := fs.String("role", console.RoleViewer, "the account's `role`: viewer, analyst or admin")
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input instead of generating one")
	label := fs.String("label", "", "what an API token is for (`text`)")
	org := fs.String("org", "", "the `organisation` of a partner's account (TLP:AMBER+STRICT is not shown to it); none for your own")
	rest, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	cfg, err := co.loadConfig()
	if err != nil {
		return err
	}
	users := console.OpenUsers(filepath.Join(cfg.Serve.StateDir, usersFileName))
	switch sub {
	case "list":
		list, err := users.List()
		if err != nil {
			return err
		}
		if len(list) == 0 {
			fmt.Fprintln(a.Stdout, "no accounts: dwell users add --role admin NAME makes the first")
		}
		for _, u := range list {
			org := ""
			if u.Org != "" {
				org = "  of " + u.Org
			}
			fmt.Fprintf(a.Stdout, "%-24s %-8s since %s%s, %d API token(s)\n", u.Name, u.Role, u.Created.Format(time.DateOnly), sanitize(org, 80), len(u.Tokens))
		}
		return nil
	case "add", "remove", "token":
		if len(rest) != 1 {
			return usagef("name one account: dwell users %s NAME", sub)
		}
	default:
		return usagef("unknown subcommand %q: add, list, remove or token", sub)
	}
	name := rest[0]
	if sub == "token" {
		t, err := users.AddToken(name, *label, a.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(a.Stdout, "an API token for %s (Authorization: Bearer ...; shown once, kept only as a hash):\n%s\n", name, t)
		return nil
	}
	if sub == "remove" {
		if err := users.Remove(name); err != nil {
			return err
		}
		fmt.Fprintf(a.Stdout, "removed %s (a session it has ends at its next request)\n", name)
		return nil
	}
	password, generated := "", false
	if *fromStdin {
		line, err := bufio.NewReader(a.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("reading the password: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	} else {
		b := make([]byte, 18)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		password, generated = base64.RawURLEncoding.EncodeToString(b), true
	}
	if err := users.Set(name, *role, password, a.Now()); err != nil {
		return usagef("%v", err)
	}
	if err := users.SetOrg(name, *org); err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "%s is a %s", name, *role)
	if generated {
		fmt.Fprintf(a.Stdout, "; password: %s", password)
	}
	fmt.Fprintln(a.Stdout)
	return nil
}

func auditCommand() command {
	return command{
		name:    "audit",
		summary: "check the web console's audit trail: every entry in place, none edited, removed or moved",
		usage:   "audit verify [--config FILE] [--db FILE]",
		example: `  dwell audit verify
  dwell audit verify --config /etc/dwell/dwell.yaml
`,
		run: runAudit,
	}
}

func runAudit(ctx context.Context, a *App, args []string) error {
	c := auditCommand()
	sub, err := subcommand(a, c, args, "verify")
	if err != nil || sub == "" {
		return err
	}
	if sub != "verify" {
		return usagef("unknown subcommand %q: verify", sub)
	}
	var co common
	fs := a.newFlags(c, &co)
	if rest, err := parse(fs, args[1:]); err != nil {
		return err
	} else if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	cfg, err := co.loadConfig()
	if err != nil {
		return err
	}
	path := filepath.Join(cfg.Serve.StateDir, auditFileName)
	n, last, err := console.VerifyFile(path)
	if err != nil {
		return fmt.Errorf("the audit trail is broken after %d good entries: %w", n, err)
	}
	fmt.Fprintf(a.Stdout, "%s: %d entries, chain intact (last hash %s)\n", path, n, last[:16])
	return nil
}
