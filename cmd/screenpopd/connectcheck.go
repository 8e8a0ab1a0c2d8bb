package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/screenpop/screenpop/adapters"
	"github.com/screenpop/screenpop/adapters/file"
	httpsource "github.com/screenpop/screenpop/adapters/http"
	"github.com/screenpop/screenpop/adapters/postgres"
	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/aggregator/rediscache"
	"github.com/screenpop/screenpop/configs"
	"github.com/screenpop/screenpop/history"
)

// defaultCheckPhone is the number `config check -connect` puts in URLs: a
// Berlin number in E.164 that reads as a test (and is nobody in the demo
// data set, so an HTTP source answers its not_found status).
const defaultCheckPhone = "+4930123456"

// defaultCheckCustomer is the customer id it puts in URLs and bodies.
const defaultCheckCustomer = "screenpop-test"

// connectCheck is `config check -connect`: once the configuration passes
// the static checks, it asks every data source (and the directory) whether
// it would work, one line per source, in configuration order: a postgres
// source connects and has its query prepared, an http source sends one
// request for a test number. Then what the daemon needs beside them: the
// identity provider, the history's PostgreSQL, the shared Redis. Exit
// status 1 when a line says FAIL.
type connectCheck struct {
	enabled  *bool
	phone    *string
	customer *string
	timeout  *time.Duration
}

// connectFlags adds -connect and its options to `config check`'s flags.
func connectFlags(fs *flag.FlagSet) *connectCheck {
	return &connectCheck{
		enabled:  fs.Bool("connect", false, "also connect: prepare every postgres query, send every http source one request, reach the identity provider, the history's PostgreSQL and Redis (exit 1 on FAIL)"),
		phone:    fs.String("phone", defaultCheckPhone, "with -connect: the test caller number put in http sources' URLs and bodies"),
		customer: fs.String("customer", defaultCheckCustomer, "with -connect: the test customer id put in http sources' URLs and bodies"),
		timeout:  fs.Duration("timeout", 5*time.Second, "with -connect: how long each source may take to connect and answer"),
	}
}

// checkStatus is a line's verdict, as pbx check writes them.
type checkStatus string

const (
	checkOK   checkStatus = "ok"
	checkWarn checkStatus = "WARN"
	checkFail checkStatus = "FAIL"
)

// connectLine is the report on one source.
type connectLine struct {
	at     configs.Pos
	path   string
	status checkStatus
	msg    string
}

// connectTarget is one configured source and what the wiring built of it.
type connectTarget struct {
	path      string // its label: "sources[2] (crm)"
	key       string // its path in the file: "sources[2]", "directory"
	file      *configs.Config
	cfg       *configs.Source
	source    aggregator.Source
	directory bool
}

// run checks every source at once (each under its own -timeout) and
// prints the lines in configuration order, then a summary.
func (c *connectCheck) run(ctx context.Context, cfg *configs.Config, stdout io.Writer, env func(string) string) error {
	if *c.timeout <= 0 {
		return fmt.Errorf("-timeout must be positive, got %s", *c.timeout)
	}
	logger := slog.New(slog.DiscardHandler)
	pools := postgres.NewPools(logger)
	defer pools.Close()
	ac, err := aggregatorConfig(cfg, pools, env, logger)
	if err != nil {
		return err // the static checks passed: not reached
	}
	agg, err := aggregator.New(ac, aggregator.Options{Logger: logger, Registerer: prometheus.NewRegistry()})
	if err != nil {
		return err
	}
	n, err := agg.Normalize(*c.phone)
	if err != nil {
		return fmt.Errorf("-phone %q is not a number the daemon can use: %w", *c.phone, err)
	}
	key := aggregator.Key{Phone: n.E164, National: n.National, Region: n.Region, CustomerID: *c.customer}

	// ac.Sources[i] was built from cfg.Sources[i].
	var targets []connectTarget
	if cfg.Directory != nil {
		targets = append(targets, connectTarget{path: aggregator.Label("directory", cfg.Directory.Name), key: "directory", file: cfg, cfg: cfg.Directory, source: ac.Directory.Source, directory: true})
	}
	for i := range cfg.Sources {
		s := &cfg.Sources[i]
		key := fmt.Sprintf("sources[%d]", i)
		targets = append(targets, connectTarget{path: aggregator.Label(key, s.Name), key: key, file: cfg, cfg: s, source: ac.Sources[i].Source})
	}
	defer func() {
		for _, t := range targets {
			if closer, ok := t.source.(interface{ Close() error }); ok {
				closer.Close()
			}
		}
	}()

	lines := make([]connectLine, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			cause := fmt.Errorf("config check -connect waited %s", *c.timeout)
			tctx, cancel := context.WithTimeoutCause(ctx, *c.timeout, cause)
			defer cancel()
			lines[i] = checkConnect(tctx, t, key)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return fmt.Errorf("config check -connect interrupted: %w", context.Cause(ctx))
	}

	count := map[checkStatus]int{}
	for _, l := range lines {
		count[l.status]++
		fmt.Fprintln(stdout, configs.Error{File: cfg.File, Line: l.at.Line, Column: l.at.Column, Path: l.path, Msg: string(l.status) + ": " + l.msg})
	}
	fmt.Fprintf(stdout, "%s: connect: %d source(s) checked: %d ok, %d WARN, %d FAIL\n", cfg.File, len(lines), count[checkOK], count[checkWarn], count[checkFail])
	failed := count[checkFail] > 0
	// What the daemon needs beside the sources, each on a line of its own
	// at its block: the identity provider, the history's PostgreSQL, the
	// shared Redis.
	for _, check := range []func(context.Context, *configs.Config, func(string) string, time.Duration) (*configs.Error, checkStatus){
		checkSignInReachable, checkHistoryReachable, checkRedisReachable,
	} {
		line, status := check(ctx, cfg, env, *c.timeout)
		if line != nil {
			fmt.Fprintln(stdout, *line)
		}
		failed = failed || status == checkFail
	}
	if failed {
		return errReported
	}
	return nil
}

// lineAt makes the -connect lines of a block of the file (auth.oidc,
// history, redis): the verdict and what was found, at the block's key.
func lineAt(cfg *configs.Config, at string) func(checkStatus, string) (*configs.Error, checkStatus) {
	return func(status checkStatus, msg string) (*configs.Error, checkStatus) {
		e := cfg.ErrorAt(at, string(status)+": "+msg, "")
		return &e, status
	}
}

// checkHistoryReachable connects to the history's PostgreSQL (history:
// type postgres) and reads its schema version, as `db migrate -status`
// does. A schema behind is fine (the daemon migrates at start); one ahead
// was migrated by a newer screenpopd.
func checkHistoryReachable(ctx context.Context, cfg *configs.Config, env func(string) string, timeout time.Duration) (*configs.Error, checkStatus) {
	if cfg.History.Type != history.TypePostgres {
		return nil, ""
	}
	line := lineAt(cfg, "history")
	dsn, err := historyDSN(cfg.History, env, cfg.Files)
	if err != nil {
		return line(checkFail, err.Error())
	}
	s, err := openHistoryTool(dsn)
	if err != nil {
		return line(checkFail, err.Error())
	}
	defer s.Close()
	hctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("config check -connect waited %s for PostgreSQL", timeout))
	defer cancel()
	current, target, err := s.SchemaVersion(hctx)
	switch {
	case err != nil:
		return line(checkFail, fmt.Sprintf("PostgreSQL not reachable: %v (pops would flow, the history's writes wait in memory)", err))
	case current > target:
		return line(checkWarn, fmt.Sprintf("PostgreSQL reachable; schema version %d is newer than this screenpopd's %d: a newer screenpopd migrated it", current, target))
	case current < target:
		return line(checkOK, fmt.Sprintf("PostgreSQL reachable; schema version %d of %d: the daemon applies the %d pending migration(s) at start (or screenpopd db migrate)", current, target, target-current))
	}
	return line(checkOK, fmt.Sprintf("PostgreSQL reachable; schema version %d of %d, up to date", current, target))
}

// checkRedisReachable sends PING through the client the daemon makes of
// the redis block (with Sentinel: the primary the sentinels name), and
// asks a single Redis its role: the daemon writes, and a replica refuses
// writes.
func checkRedisReachable(ctx context.Context, cfg *configs.Config, env func(string) string, timeout time.Duration) (*configs.Error, checkStatus) {
	rc := cfg.Redis
	if rc == nil {
		return nil, ""
	}
	line := lineAt(cfg, "redis")
	// go-redis logs each failed dial on its own; the line below says it.
	redis.SetLogger(redisLog{slog.New(slog.DiscardHandler)})
	ccfg := redisClientConfig(rc, env)
	ccfg.DialTimeout, ccfg.ReadTimeout = timeout, timeout
	client, err := rediscache.NewClient(ccfg)
	if err != nil {
		return line(checkFail, err.Error())
	}
	defer client.Close()
	rctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("config check -connect waited %s for Redis", timeout))
	defer cancel()
	what := "Redis"
	switch {
	case len(rc.ClusterAddresses) > 0:
		what = "the Redis Cluster"
	case rc.MasterName != "":
		what = "the primary the sentinels name " + rc.MasterName
	}
	if err := client.Ping(rctx).Err(); err != nil {
		return line(checkFail, fmt.Sprintf("%s did not answer PING: %v (the daemon would start not ready: cards built without the shared cache, pops for agents on other daemons held until Redis answers)", what, err))
	}
	if len(rc.ClusterAddresses) == 0 {
		role, err := client.Do(rctx, "ROLE").Slice()
		if err == nil && len(role) > 0 && role[0] == "slave" {
			return line(checkFail, what+" is a replica, which refuses the daemon's writes: name the primary, or use master_name with sentinel_addresses")
		}
	}
	return line(checkOK, what+" answered PING")
}

// checkConnect checks one source in the way of its kind.
func checkConnect(ctx context.Context, t connectTarget, key aggregator.Key) connectLine {
	l := connectLine{at: t.cfg.Pos, path: t.path}
	switch src := t.source.(type) {
	case *postgres.Source:
		checkPostgres(ctx, t, src, &l)
	case *httpsource.Source:
		checkHTTP(ctx, t, src, key, &l)
	case *file.Source:
		l.status, l.msg = checkOK, "file read by the static check (nothing to connect to)"
	default:
		l.status, l.msg = checkWarn, fmt.Sprintf("not checked: type %s has no connection check", t.cfg.Type)
	}
	return l
}

// directoryColumns are the columns a directory query returns (README of
// adapters/postgres); id, or customer_id, is the one it cannot do without.
var directoryColumns = []string{"name", "kind", "contact", "role", "email", "city", "country", "tags"}

func checkPostgres(ctx context.Context, t connectTarget, src *postgres.Source, l *connectLine) {
	res, err := src.Check(ctx)
	if err != nil {
		l.status = checkFail
		var ce *postgres.CheckError
		if errors.As(err, &ce) && (ce.Option == "query" || ce.Option == "search.query") {
			l.at = t.file.TextPos(t.cfg, ce.Option, ce.QueryLine, ce.QueryColumn)
			l.msg = err.Error()
			return
		}
		l.at = t.cfg.OptionPos("dsn_env", "dsn_file", "dsn")
		l.msg = err.Error() + " (" + res.Database + ")"
		return
	}
	l.status = checkOK
	l.msg = fmt.Sprintf("query prepared on %s: %d column(s)", res.Database, len(res.Columns))
	if len(res.Params) > 0 {
		l.msg += ", " + strings.Join(res.Params, ", ")
	}
	// The mapping names columns by name: one the query does not return
	// stays empty on every card, with no error anywhere.
	var absent []string
	for _, f := range t.cfg.Mapping.Fields {
		if !slices.Contains(res.Columns, f.From) && !slices.Contains(absent, f.From) {
			absent = append(absent, f.From)
		}
	}
	columns := "it returns: " + strings.Join(res.Columns, ", ")
	switch {
	case len(absent) > 0:
		l.status = checkFail
		l.msg += fmt.Sprintf("; mapping names column(s) the query does not return: %s (%s)", strings.Join(absent, ", "), columns)
	case t.directory && !slices.Contains(res.Columns, "id") && !slices.Contains(res.Columns, "customer_id"):
		l.status = checkFail
		l.msg += "; a directory query must return the customer's id as a column named id (" + columns + ")"
	case t.directory:
		var missing []string
		for _, c := range directoryColumns {
			if !slices.Contains(res.Columns, c) {
				missing = append(missing, c)
			}
		}
		if len(missing) > 0 {
			l.status = checkWarn
			l.msg += "; the card's customer header stays empty without column(s): " + strings.Join(missing, ", ")
		}
	}
	if len(res.SearchColumns) == 0 {
		return
	}
	// An agent searching for an unknown caller is the first to run the
	// search query: what it returns is checked as the directory's is.
	l.msg += fmt.Sprintf("; search query prepared: %d column(s)", len(res.SearchColumns))
	if len(res.SearchParams) > 0 {
		l.msg += ", " + strings.Join(res.SearchParams, ", ")
	}
	if !slices.Contains(res.SearchColumns, "id") && !slices.Contains(res.SearchColumns, "customer_id") {
		l.status = checkFail
		l.at = t.cfg.OptionPos("search.query", "search")
		l.msg += "; the search query must return the customer's id as a column named id (it returns: " + strings.Join(res.SearchColumns, ", ") + ")"
	}
}

func checkHTTP(ctx context.Context, t connectTarget, src *httpsource.Source, key aggregator.Key, l *connectLine) {
	var with []string
	for _, p := range src.Params() {
		v, _ := key.Param(p)
		with = append(with, p+" "+v)
	}
	res, err := src.Check(ctx, key)
	if err != nil {
		l.status, l.at = checkFail, t.cfg.OptionPos("url")
		var fe *adapters.FetchError
		if errors.As(err, &fe) {
			l.msg = fe.Msg
		} else {
			l.msg = err.Error()
		}
		return
	}
	l.status = checkOK
	l.msg = fmt.Sprintf("reachable, answered %d", res.Status)
	if len(with) > 0 {
		l.msg += " for " + strings.Join(with, ", ")
	}
	switch {
	case res.NotFound:
		l.msg += " (nothing known of it: fields not checked; -phone or -customer of a known caller checks them)"
	case res.Records == 0:
		l.msg += ", no records (fields not checked; -phone or -customer of a known caller checks them)"
	case len(res.Missing) > 0:
		l.status, l.at = checkWarn, t.cfg.OptionPos("fields")
		var paths []string
		for _, f := range res.Missing {
			paths = append(paths, f+" ("+src.FieldPath(f)+")")
		}
		l.msg += fmt.Sprintf(", %d record(s); found: %s; nothing at: %s", res.Records, orNone(res.Found), strings.Join(paths, ", "))
	default:
		l.msg += fmt.Sprintf(", %d record(s); found: %s", res.Records, orNone(res.Found))
	}
	if res.NotFound || res.Records == 0 {
		return
	}
	// The mapping names fields by name, as postgres's names columns: one
	// the answer does not have stays empty on every card, with no error
	// anywhere. One answer may lack what another has, so a WARN.
	var absent []string
	for _, f := range t.cfg.Mapping.Fields {
		if !slices.Contains(res.Found, f.From) && !slices.Contains(res.Missing, f.From) && !slices.Contains(absent, f.From) {
			absent = append(absent, f.From)
		}
	}
	if len(absent) > 0 {
		if l.status != checkWarn { // else the line stays at the fields found empty
			at := t.file.ErrorAt(t.key+".mapping", "", "")
			l.status, l.at = checkWarn, configs.Pos{Line: at.Line, Column: at.Column}
		}
		l.msg += "; mapping names field(s) this answer does not have: " + strings.Join(absent, ", ")
	}
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
