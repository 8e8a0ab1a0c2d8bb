package main

// The history store's wiring and its sub-commands:
//
//	screenpopd db migrate [-status]
//	screenpopd access-log (-customer ID | -agent ID | -phone E164) [-since 720h] [-limit N] [-each] [-json]
//	screenpopd erase (-customer ID | -phone E164) -by WHO -yes
//
// Each command function takes the PostgreSQL connection string already
// resolved (historyDSN) and its own flags.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/adapters"
	adpostgres "github.com/screenpop/screenpop/adapters/postgres"
	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/configs"
	"github.com/screenpop/screenpop/history"
	"github.com/screenpop/screenpop/history/postgres"
	"github.com/screenpop/screenpop/pop"
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

// newHistory opens the configured history store for the daemon (memory,
// or PostgreSQL migrated by its Run), named after the daemon in the calls
// it records and the access log.
func (m *Main) newHistory(cfg *configs.Config) error {
	store, err := openHistory(cfg.History, m.opts.Env, cfg.Files, history.Options{
		Daemon:     daemonName(m.opts.Daemon, cfg.Listen),
		Logger:     m.logger.With("component", "history"),
		Registerer: m.reg,
	})
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.File, err)
	}
	m.history = store
	return nil
}

// historyProblems is what config check finds in the history block beyond
// configs' own checks: a connection string the daemon could not read.
func historyProblems(cfg *configs.Config, env func(string) string) configs.Errors {
	if cfg.History.Type != history.TypePostgres {
		return nil
	}
	_, err := historyDSN(cfg.History, env, cfg.Files)
	if err == nil {
		return nil
	}
	key := "history.dsn_env"
	if cfg.History.DSNFile != "" {
		key = "history.dsn_file"
	}
	return configs.Errors{cfg.ErrorAt(key, strings.TrimPrefix(err.Error(), key+": "), "")}
}

// daemonName is how this daemon signs the history: the name given, else
// the host's name and the port it listens on.
func daemonName(given, listen string) string {
	if given != "" {
		return given
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "screenpopd"
	}
	if _, port, err := net.SplitHostPort(listen); err == nil && port != "" && port != "0" {
		return host + ":" + port
	}
	return host
}

// wrapUpSettings is the wrap-up the pages are told (history.dispositions,
// wrapup_required, wrapup_time).
func wrapUpSettings(h history.Config) pop.WrapUpSettings {
	return pop.WrapUpSettings{Dispositions: h.Dispositions, Required: h.WrapUpRequired, Time: h.WrapUpTime}
}

// logAccess records a card sent to an agent, page open or not (the
// dispatcher's OnShown): who, whose card (customer, the number's hash),
// which call, the sections sent, and "history" when the card listed
// earlier calls. It runs under the dispatcher's lock: LogAccess only
// queues, and a refusal (a full buffer while PostgreSQL is away) is
// counted and logged by the store.
func (m *Main) logAccess(agentID, callID string, card screenpop.Card, sections []string) {
	e := history.AccessEntry{Agent: agentID, Phone: card.Phone, CallID: callID, Sections: sections}
	if card.Customer != nil {
		e.CustomerID = card.Customer.ID
	}
	if len(card.History) > 0 {
		e.Sections = append(slices.Clip(sections), "history")
	}
	if err := m.history.LogAccess(context.Background(), e); err != nil {
		m.logger.Debug("card delivery not logged", "agent", agentID, "call", callID, "err", err)
	}
}

// runHistory runs the history store's background work (migrations, the
// write buffer) and the hourly purge under g. The store runs until stop is
// called, after the dispatcher's last write, so that a clean shutdown
// writes the calls that ended just before it.
func (m *Main) runHistory(ctx context.Context, g *errgroup.Group) (stop func()) {
	hctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	g.Go(func() error { return m.history.Run(hctx) })
	g.Go(func() error {
		// The first purge waits for the schema: a purge of tables Run has
		// not made yet is only a warning in the log.
		for !m.history.Status().Migrated {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
		return history.RunPurges(ctx, m.history, history.DefaultPurgeInterval, time.Now, m.logger.With("component", "history"))
	})
	return stop
}

// historyReadiness is the history's line of /readyz: reported, never
// failing readiness, since pops do not need the history (every daemon
// shares it, and writes wait in the buffer while PostgreSQL is away).
func (m *Main) historyReadiness() string {
	st := m.history.Status()
	if err := st.Err(); err != nil {
		return fmt.Sprintf("history (%s): DOWN: %v (pops still flow; writes wait, %d of %d buffered)\n", st.Backend, err, st.Queued, st.Capacity)
	}
	if st.Backend == history.TypeMemory {
		return "history (memory): ok (kept in this process only)\n"
	}
	return fmt.Sprintf("history (%s): ok (%d write(s) queued)\n", st.Backend, st.Queued)
}

// historyCommand is a history sub-command given the daemon's
// configuration and its history's connection string.
type historyCommand func(ctx context.Context, cfg *configs.Config, env func(string) string, dsn string, args []string, stdout, stderr io.Writer) error

// withDSN makes a command that needs only the connection string a
// historyCommand.
func withDSN(f func(ctx context.Context, dsn string, args []string, stdout, stderr io.Writer) error) historyCommand {
	return func(ctx context.Context, _ *configs.Config, _ func(string) string, dsn string, args []string, stdout, stderr io.Writer) error {
		return f(ctx, dsn, args, stdout, stderr)
	}
}

// historyTool runs a history sub-command on the history of the daemon's
// configuration (-config FILE, anywhere among args; the embedded demo's
// without it), whose dsn_env or dsn_file it resolves as the daemon does.
func historyTool(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) string, cmd historyCommand) error {
	path, rest, err := cutConfigFlag(args)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errReported
	}
	var dsn string
	if cfg.History.Type == history.TypePostgres {
		if dsn, err = historyDSN(cfg.History, env, cfg.Files); err != nil {
			return fmt.Errorf("%s: %w", cfg.File, err)
		}
	}
	return cmd(ctx, cfg, env, dsn, rest, stdout, stderr)
}

// cutConfigFlag takes -config FILE (or -config=FILE, --config) out of
// args, leaving the command's own flags.
func cutConfigFlag(args []string) (path string, rest []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "config" {
			rest = append(rest, a)
			continue
		}
		if !hasValue {
			if i+1 == len(args) {
				return "", nil, errors.New("-config needs a file")
			}
			i++
			value = args[i]
		}
		path = value
	}
	return path, rest, nil
}

// eraseAndEvict is `screenpopd erase`: the erasure in PostgreSQL, then the
// eviction of the person's cached source answers through an aggregator on
// the daemon's cache. With a redis block that is the cache every daemon
// uses; without one, each daemon caches in its own process, which only the
// daemon can evict: erase asks it to, at its /api/v1/evict, with a token of
// api.evict_tokens_env.
func eraseAndEvict(ctx context.Context, cfg *configs.Config, env func(string) string, dsn string, args []string, stdout, stderr io.Writer) error {
	evict := func(ctx context.Context, customerID, phone string) (string, error) {
		logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		if cfg.Redis != nil {
			m := &Main{cfg: cfg, opts: Options{Env: env}, logger: logger, reg: prometheus.NewRegistry()}
			cache, err := m.openRedis(cfg.Redis)
			if err != nil {
				return "", err
			}
			defer m.redis.Close()
			pools := adpostgres.NewPools(logger.With("component", "postgres"))
			defer pools.Close()
			ac, err := aggregatorConfig(cfg, pools, env, logger)
			if err != nil {
				return "", err
			}
			agg, err := aggregator.New(ac, aggregator.Options{Cache: cache, Logger: logger, Registerer: prometheus.NewRegistry()})
			if err != nil {
				return "", err
			}
			defer agg.Close()
			return evictedLine, agg.Evict(ctx, customerID, phone)
		}
		return evictInDaemon(ctx, cfg, env, customerID, phone)
	}
	return eraseCmd(ctx, dsn, args, stdout, stderr, evict)
}

// evictedLine is what erase says once the cached answers are evicted.
const evictedLine = "cached source answers evicted"

// evictInDaemon asks the running daemon to evict a person's answers from
// its in-process cache, through its eviction API. It says what was done:
// nothing, when the configuration gives erase no way to reach the cache.
func evictInDaemon(ctx context.Context, cfg *configs.Config, env func(string) string, customerID, phone string) (string, error) {
	tokens, err := evictTokens(cfg, env)
	if err != nil {
		return "", err
	}
	if tokens == nil {
		longest := time.Duration(0)
		for _, s := range cfg.Sources {
			longest = max(longest, s.CacheTTL)
		}
		if cfg.Directory != nil {
			longest = max(longest, cfg.Directory.CacheTTL)
		}
		return fmt.Sprintf("cached source answers NOT evicted: with no redis block and no api.evict_tokens_env, the daemon's in-process cache keeps this person's source answers until their cache_ttl (at most %s); set api.evict_tokens_env for erase to evict them at once", longest), nil
	}
	base := strings.TrimRight(cfg.PublicURL, "/")
	if base == "" {
		base = "http://" + cfg.Listen
	}
	body, _ := json.Marshal(map[string]string{"customer_id": customerID, "phone": phone})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/evict", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+splitTokens(env(cfg.API.EvictTokensEnv))[0])
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", fmt.Errorf("the daemon at %s did not answer: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return "", fmt.Errorf("the daemon at %s answered %s to the eviction", base, resp.Status)
	}
	return evictedLine, nil
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

// parseToolFlags parses a command's flags, wherever they stand; it
// takes no other arguments.
func parseToolFlags(fs *flag.FlagSet, args []string, usage string) error {
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	return noArgs(rest, usage)
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
	asJSON := fs.Bool("json", false, "print JSON instead of a table (every entry)")
	each := fs.Bool("each", false, "a table row per entry, rather than one per agent and card")
	const usage = "usage: screenpopd access-log (-customer ID | -agent ID | -phone E164) [-since 720h] [-limit N] [-each] [-json]"
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
	rows := accessRows(entries, *each)
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "AT (UTC)\tACTION\tAGENT\tCUSTOMER\tNUMBER HASH\tCALL\tSECTIONS\tSENT\tDAEMON")
	for _, r := range rows {
		e := r.AccessEntry
		hash := e.PhoneHash
		if len(hash) > 12 {
			hash = hash[:12]
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", e.At.UTC().Format("2006-01-02 15:04:05"), e.Action, e.Agent,
			orDash(e.CustomerID), orDash(hash), orDash(e.CallID), orDash(strings.Join(e.Sections, ",")), r.sent, e.Daemon)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	more := ""
	if len(entries) == q.Limit {
		more = " (the limit: there may be more, see -limit)"
	}
	grouped := ""
	if len(rows) != len(entries) {
		grouped = fmt.Sprintf(" in %d row(s), one per agent and card (-each: one per entry)", len(rows))
	}
	fmt.Fprintf(stdout, "%d entr%s%s since %s%s\n", len(entries), plural(len(entries), "y", "ies"), grouped, q.Since.UTC().Format(time.RFC3339), more)
	return nil
}

// accessRow is a row of the access-log table: an entry, or the entries
// of one card sent to one agent taken together (sent of them).
type accessRow struct {
	history.AccessEntry
	sent int
}

// accessRows makes the table's rows of entries (newest first). A card
// reaches an agent in several messages (the pop while sections load, each
// section, the complete card, the earlier calls), each an entry; a person
// asking who saw whose data reads one row per agent and card: the first
// time it was sent, every section it showed (sorted: messages of one
// moment come in no set order), and how many messages. Erasures and links
// stay one row each, as does every entry with each.
func accessRows(entries []history.AccessEntry, each bool) []accessRow {
	type key struct{ action, agent, customer, hash, call, daemon string }
	rows := make([]accessRow, 0, len(entries))
	at := map[key]int{}
	for i := len(entries) - 1; i >= 0; i-- { // oldest first: a row's time is its first entry's
		e := entries[i]
		k := key{e.Action, e.Agent, e.CustomerID, e.PhoneHash, e.CallID, e.Daemon}
		j, seen := at[k]
		if each || e.Action != history.ActionCard || e.CallID == "" || !seen {
			at[k] = len(rows)
			e.Sections = slices.Clone(e.Sections)
			rows = append(rows, accessRow{AccessEntry: e, sent: 1})
			continue
		}
		r := &rows[j]
		r.sent++
		for _, s := range e.Sections {
			if !slices.Contains(r.Sections, s) {
				r.Sections = append(r.Sections, s)
			}
		}
	}
	if !each {
		for _, r := range rows {
			slices.Sort(r.Sections)
		}
	}
	slices.Reverse(rows) // newest first, by the first time each card was sent
	return rows
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
func eraseCmd(ctx context.Context, dsn string, args []string, stdout, stderr io.Writer, evict func(ctx context.Context, customerID, phone string) (said string, err error)) error {
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
		said, err := evict(ctx, subj.CustomerID, subj.Phone)
		if err != nil {
			return fmt.Errorf("the history is erased, but the cached answers could not be evicted (run the command again): %w", err)
		}
		fmt.Fprintln(stdout, said)
	}
	return nil
}
