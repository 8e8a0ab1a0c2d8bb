package main

// The history store's wiring and its sub-commands:
//
//	screenpopd db migrate [-status]
//	screenpopd access-log (-customer ID | -agent ID | -phone E164) [-since 720h] [-limit N] [-json]
//	screenpopd erase (-customer ID | -phone E164) -by WHO -yes
//
// Each command function takes the PostgreSQL connection string already
// resolved (historyDSN) and its own flags.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/screenpop/screenpop/adapters"
	"github.com/screenpop/screenpop/history"
	"github.com/screenpop/screenpop/history/postgres"
)

// historyStores builds a history store of each type; dsn is empty for
// memory.
var historyStores = map[string]func(cfg history.Config, dsn string, opts history.Options) (history.Store, error){
	history.TypeMemory: func(cfg history.Config, _ string, opts history.Options) (history.Store, error) {
		return history.NewMemory(cfg, opts)
	},
	history.TypePostgres: func(cfg history.Config, dsn string, opts history.Options) (history.Store, error) {
		return postgres.New(cfg, dsn, opts)
	},
}

// openHistory builds the configured history store without connecting: the
// daemon then runs its Run under the errgroup (migrations and the write
// buffer), history.RunPurges beside it, and closes it last.
func openHistory(cfg history.Config, env func(string) string, files fs.FS, opts history.Options) (history.Store, error) {
	cfg.ApplyDefaults()
	newStore, ok := historyStores[cfg.Type]
	if !ok {
		return nil, fmt.Errorf("history: unknown type %q (memory or postgres)", cfg.Type)
	}
	var dsn string
	if cfg.Type == history.TypePostgres {
		var err error
		if dsn, err = historyDSN(cfg, env, files); err != nil {
			return nil, err
		}
	}
	return newStore(cfg, dsn, opts)
}

// historyDSN resolves the connection string of a postgres history from
// dsn_env or dsn_file; the error names the option.
func historyDSN(cfg history.Config, env func(string) string, files fs.FS) (string, error) {
	switch {
	case cfg.DSNFile != "":
		dsn, err := adapters.ReadSecretFile(files, cfg.DSNFile)
		if err != nil {
			return "", fmt.Errorf("history.dsn_file: %w", err)
		}
		return dsn, nil
	case cfg.DSNEnv != "":
		if env == nil || strings.TrimSpace(env(cfg.DSNEnv)) == "" {
			return "", fmt.Errorf("history.dsn_env: environment variable %s is not set or empty: export it with the connection string, e.g. %s=postgres://screenpop@db.example.com/screenpop", cfg.DSNEnv, cfg.DSNEnv)
		}
		return env(cfg.DSNEnv), nil
	}
	return "", errors.New("history: type postgres needs dsn_env or dsn_file")
}

// cliDaemon names the command line in the access log's daemon column.
const cliDaemon = "screenpopd-cli"

// openHistoryTool opens the PostgreSQL history for a command; the caller
// closes it.
func openHistoryTool(dsn string) (*postgres.Store, error) {
	if strings.TrimSpace(dsn) == "" {
		return nil, errors.New("the history is not in PostgreSQL (history.type is not postgres, or its connection string is empty): there is nothing to read or erase outside the daemon")
	}
	return postgres.New(history.Config{Type: history.TypePostgres}, dsn, history.Options{Daemon: cliDaemon})
}

// dbMigrate applies the history schema's migrations (the daemon also does
// at start), or with -status prints the versions.
func dbMigrate(ctx context.Context, dsn string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("db migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	status := fs.Bool("status", false, "print the schema version instead of migrating")
	if err := parseToolFlags(fs, args, "usage: screenpopd db migrate [-status]"); err != nil {
		return err
	}
	s, err := openHistoryTool(dsn)
	if err != nil {
		return err
	}
	defer s.Close()
	if *status {
		current, target, err := s.SchemaVersion(ctx)
		if err != nil {
			return err
		}
		state := "up to date"
		if current < target {
			state = fmt.Sprintf("%d migration(s) pending: run screenpopd db migrate", target-current)
		}
		fmt.Fprintf(stdout, "history schema: version %d of %d, %s\n", current, target, state)
		return nil
	}
	lines, err := s.Migrate(ctx)
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	if err != nil {
		return err
	}
	if len(lines) == 0 {
		fmt.Fprintln(stdout, "history schema: up to date, nothing to do")
	}
	return nil
}

// parseToolFlags parses a command's flags; it takes no other arguments.
func parseToolFlags(fs *flag.FlagSet, args []string, usage string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s (unexpected %q)", usage, fs.Arg(0))
	}
	return nil
}

var e164RE = regexp.MustCompile(`^\+[1-9][0-9]{5,14}$`)

func checkE164(flagName, v string) error {
	if v != "" && !e164RE.MatchString(v) {
		return fmt.Errorf("-%s %q: give the number in E.164, e.g. +4930901820", flagName, v)
	}
	return nil
}

// accessLogCmd prints who saw a customer's (or number's) card, or what an
// agent saw, newest first, as a table or JSON.
func accessLogCmd(ctx context.Context, dsn string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("access-log", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var q history.AccessQuery
	fs.StringVar(&q.CustomerID, "customer", "", "customer id: who saw this customer's card")
	fs.StringVar(&q.Agent, "agent", "", "agent id: whose cards this agent saw")
	fs.StringVar(&q.Phone, "phone", "", "caller number in E.164: who saw this number's card (matched by its hash)")
	since := fs.Duration("since", 720*time.Hour, "how far back (720h: 30 days)")
	fs.IntVar(&q.Limit, "limit", history.DefaultAccessLimit, "most entries printed")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	const usage = "usage: screenpopd access-log (-customer ID | -agent ID | -phone E164) [-since 720h] [-limit N] [-json]"
	if err := parseToolFlags(fs, args, usage); err != nil {
		return err
	}
	switch {
	case q.CustomerID == "" && q.Agent == "" && q.Phone == "":
		return errors.New(usage)
	case *since <= 0:
		return fmt.Errorf("-since %s: give a positive duration, e.g. -since 720h", *since)
	case q.Limit <= 0:
		return fmt.Errorf("-limit %d: give a positive number", q.Limit)
	}
	if err := checkE164("phone", q.Phone); err != nil {
		return err
	}
	q.Since = time.Now().Add(-*since)
	s, err := openHistoryTool(dsn)
	if err != nil {
		return err
	}
	defer s.Close()
	entries, err := s.AccessLog(ctx, q)
	if err != nil {
		return err
	}
	if *asJSON {
		if entries == nil {
			entries = []history.AccessEntry{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(entries)
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "AT (UTC)\tACTION\tAGENT\tCUSTOMER\tNUMBER HASH\tCALL\tSECTIONS\tDAEMON")
	for _, e := range entries {
		hash := e.PhoneHash
		if len(hash) > 12 {
			hash = hash[:12]
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.At.UTC().Format("2006-01-02 15:04:05"), e.Action, e.Agent,
			orDash(e.CustomerID), orDash(hash), orDash(e.CallID), orDash(strings.Join(e.Sections, ",")), e.Daemon)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	more := ""
	if len(entries) == q.Limit {
		more = " (the limit: there may be more, see -limit)"
	}
	fmt.Fprintf(stdout, "%d entr%s since %s%s\n", len(entries), plural(len(entries), "y", "ies"), q.Since.UTC().Format(time.RFC3339), more)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// eraseCmd erases a customer's or a number's history and notes, writes
// the one access-log line that says it was done, then calls evict (when
// not nil) to drop the person's cached source answers (Redis and the
// in-process cache).
func eraseCmd(ctx context.Context, dsn string, args []string, stdout, stderr io.Writer, evict func(ctx context.Context, customerID, phone string) error) error {
	fs := flag.NewFlagSet("erase", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var subj history.Subject
	fs.StringVar(&subj.CustomerID, "customer", "", "customer id whose calls and notes to erase")
	fs.StringVar(&subj.Phone, "phone", "", "caller number in E.164 whose calls and notes to erase")
	fs.StringVar(&subj.By, "by", "", "who orders the erasure (a name or a ticket), for the access log")
	yes := fs.Bool("yes", false, "erase: it cannot be undone")
	const usage = "usage: screenpopd erase (-customer ID | -phone E164) -by WHO -yes"
	if err := parseToolFlags(fs, args, usage); err != nil {
		return err
	}
	switch {
	case subj.CustomerID == "" && subj.Phone == "":
		return errors.New(usage)
	case subj.By == "":
		return fmt.Errorf("-by is required: the access log says who ordered the erasure (%s)", usage)
	case !*yes:
		return fmt.Errorf("erasure cannot be undone: add -yes to erase (%s)", usage)
	}
	if err := checkE164("phone", subj.Phone); err != nil {
		return err
	}
	s, err := openHistoryTool(dsn)
	if err != nil {
		return err
	}
	defer s.Close()
	gone, err := s.Erase(ctx, subj)
	if err != nil {
		return err
	}
	var whose []string
	if subj.CustomerID != "" {
		whose = append(whose, "customer "+subj.CustomerID)
	}
	if subj.Phone != "" {
		whose = append(whose, "number "+subj.Phone)
	}
	fmt.Fprintf(stdout, "erased %d call(s) and %d note(s) of %s; the access log records the erasure\n", gone.Calls, gone.Notes, strings.Join(whose, " and "))
	if evict != nil {
		if err := evict(ctx, subj.CustomerID, subj.Phone); err != nil {
			return fmt.Errorf("the history is erased, but the cached answers could not be evicted (run the command again): %w", err)
		}
		fmt.Fprintln(stdout, "cached source answers evicted")
	}
	return nil
}
