// Package cli is the `parley` command: it parses subcommands and their flags, and calls into
// app (to serve) or admin (to configure). It prints results for people, or JSON with --json.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/store/sqlite"
)

// Env is what a command runs with: its output streams and environment.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// command is one subcommand. Commands with subcommands of their own dispatch again.
type command struct {
	usage string
	run   func(ctx context.Context, env *Env, args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"serve":       {"run the server", serve},
		"migrate":     {"bring the database schema up to date", migrate},
		"integration": {"create, list, update integrations and add API keys", integration},
		"deliveries":  {"list webhook deliveries and replay failed ones", deliveries},
		"agent":       {"create and list console agents, add API tokens", agent},
		"dialog":      {"check a dialog file, print the demo dialog", dialogCmd},
		"demo":        {"run a demo server that prints the webhooks it sends", demo},
		"version":     {"print the version", version},
	}
}

// errUsage marks an error whose usage text was already printed.
var errUsage = errors.New("usage")

// Run runs the command line args (without the program name) and returns the exit status.
func Run(ctx context.Context, args []string, env *Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.Stdout, cmds)
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "parley: unknown command %q\n\n", args[0])
		usage(env.Stderr, cmds)
		return 2
	}
	if err := cmd.run(ctx, env, args[1:]); err != nil {
		if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
			return 2
		}
		fmt.Fprintf(env.Stderr, "parley %s: %s\n", args[0], message(err))
		return 1
	}
	return 0
}

// message is what a person should read of err.
func message(err error) string {
	if e, ok := errors.AsType[*parley.Error](err); ok {
		return e.Message
	}
	return err.Error()
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: parley <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, cmds[n].usage)
	}
	fmt.Fprintln(w, "\nEvery command takes the settings of `parley serve -h` (flags or PARLEY_* variables).")
}

// flags returns a FlagSet bound to a fresh Config, for a command named name.
func flags(env *Env, name string) (*flag.FlagSet, *config.Config) {
	fs := flag.NewFlagSet("parley "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	cfg := config.Default()
	cfg.Bind(fs)
	return fs, &cfg
}

// parse loads the config and flags, validates them and returns the remaining arguments.
func parse(env *Env, fs *flag.FlagSet, cfg *config.Config, args []string) ([]string, error) {
	rest, err := config.Load(fs, args, env.Getenv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errUsage
		}
		return nil, err
	}
	return rest, cfg.Validate()
}

// openDB opens the configured database for a one-shot command, logging to stderr.
func openDB(ctx context.Context, env *Env, cfg *config.Config) (app.Database, error) {
	return app.OpenDatabase(ctx, cfg.DatabaseURL, cfg.DatabaseMaxConns, cfg.AutoMigrate, cfg.Logger(env.Stderr))
}

// withAdmin opens the configured database and runs fn with the operator's operations on it.
func withAdmin(ctx context.Context, env *Env, cfg *config.Config, fn func(*admin.Service) error) error {
	db, err := openDB(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(admin.New(db, nil))
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func serve(ctx context.Context, env *Env, args []string) error {
	fs, cfg := flags(env, "serve")
	if _, err := parse(env, fs, cfg, args); err != nil {
		return err
	}
	m := &app.Main{Config: *cfg, Log: cfg.Logger(env.Stderr)}
	_, onSQLite := sqlite.PathFromURL(cfg.DatabaseURL)
	tuneRuntime(onSQLite, m.Log)
	if err := m.Run(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	m.Log.Info("shutting down")
	if err := m.Close(); err != nil {
		return err
	}
	m.Log.Info("stopped")
	return nil
}

func migrate(ctx context.Context, env *Env, args []string) error {
	fs, cfg := flags(env, "migrate")
	if _, err := parse(env, fs, cfg, args); err != nil {
		return err
	}
	db, err := app.OpenDatabase(ctx, cfg.DatabaseURL, cfg.DatabaseMaxConns, true, cfg.Logger(env.Stderr))
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, "database schema is up to date")
	return db.Close()
}

// Version is set at build time with -ldflags "-X github.com/parleyhq/parley/internal/cli.Version=...".
var Version = "dev"

func version(ctx context.Context, env *Env, args []string) error {
	fmt.Fprintln(env.Stdout, "parley", Version)
	return nil
}

// sub dispatches to a subcommand of name.
func sub(ctx context.Context, env *Env, name string, args []string, subs map[string]command) error {
	if len(args) == 0 || subs[args[0]].run == nil {
		fmt.Fprintf(env.Stderr, "usage: parley %s <%s> [flags]\n", name, strings.Join(sortedKeys(subs), "|"))
		for _, k := range sortedKeys(subs) {
			fmt.Fprintf(env.Stderr, "  %-8s %s\n", k, subs[k].usage)
		}
		return errUsage
	}
	return subs[args[0]].run(ctx, env, args[1:])
}

func sortedKeys(m map[string]command) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
