// Package postgres is the `postgres` source kind: one SQL query against a
// PostgreSQL database, with the caller's number or customer ID as named
// parameters (:phone, :customer_id, ...), its rows handed to the aggregator
// as records (column name -> value).
//
// IT connects a new database by writing a query in the configuration; no Go
// is written. See README.md for every option.
package postgres

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/screenpop/screenpop/adapters"
	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/configs"
)

// Sample is a commented example configuration of this kind, printed by
// `screenpopd sample postgres`.
//
//go:embed sample.yaml
var Sample []byte

// DefaultMaxRows is how many rows a query may return before the rest are
// ignored. The card shows a handful; this is a safety net against a query
// that forgot its WHERE clause, not a page size.
const DefaultMaxRows = 1000

// Options are the kind-specific keys of a postgres source.
type Options struct {
	// DSNEnv names the environment variable holding the connection string.
	DSNEnv string `yaml:"dsn_env"`
	// DSNFile names a file holding the connection string (a mounted secret,
	// a systemd credential). It is read again at every reload.
	DSNFile string `yaml:"dsn_file"`
	// DSN is the connection string itself, allowed only without a password
	// (peer, trust or certificate authentication, or a .pgpass file).
	DSN string `yaml:"dsn"`
	// Query is one SELECT with named parameters (:phone, :customer_id, ...).
	Query string `yaml:"query"`
	// MaxRows caps the rows read per lookup; default DefaultMaxRows.
	MaxRows int `yaml:"max_rows"`
	// MaxConns caps the pool's connections to this database (shared by all
	// sources with the same DSN: the largest value wins); 0 keeps pgx's
	// default of max(4, number of CPUs).
	MaxConns int32 `yaml:"max_conns"`
	// Search makes a directory searchable by agents (search.go).
	Search *SearchOptions `yaml:"search"`
}

// Source runs one query per lookup. It is safe for concurrent use.
type Source struct {
	name    string
	pools   *Pools
	entry   *poolEntry
	query   namedQuery
	search  *namedQuery // nil: no search configured
	maxRows int
	logger  *slog.Logger
}

var _ aggregator.Source = (*Source)(nil)

// NewFactory returns the constructor of postgres sources, sharing pools
// between them.
func NewFactory(pools *Pools) adapters.Factory {
	return func(spec adapters.Spec) (aggregator.Source, error) {
		return New(pools, spec)
	}
}

// New builds a postgres source from its options. It validates the DSN and
// the query and rewrites the parameters, but does not connect.
func New(pools *Pools, spec adapters.Spec) (*Source, error) {
	if pools == nil {
		return nil, fmt.Errorf("postgres: no pools (wiring error: use NewFactory(NewPools(logger)))")
	}
	var opts Options
	if err := configs.DecodeStrict(spec.Options, &opts); err != nil {
		return nil, err
	}
	at := func(key string, format string, args ...any) error {
		return configs.KeyError(spec.Options, key, format, args...)
	}

	var dsn string
	switch {
	case opts.DSNEnv != "" && opts.DSN != "":
		return nil, at("dsn", "set dsn_env or dsn, not both")
	case opts.DSNFile != "" && (opts.DSNEnv != "" || opts.DSN != ""):
		return nil, at("dsn_file", "set one of dsn_env, dsn_file or dsn, not several")
	case opts.DSNFile != "":
		var err error
		if dsn, err = adapters.ReadSecretFile(spec.Files, opts.DSNFile); err != nil {
			return nil, at("dsn_file", "%s (the connection string, e.g. postgres://screenpop:secret@db.example.com/erp)", err)
		}
	case opts.DSNEnv != "":
		if spec.Env == nil {
			return nil, at("dsn_env", "environment variable %s is not set (no environment given)", opts.DSNEnv)
		}
		dsn = spec.Env(opts.DSNEnv)
		if strings.TrimSpace(dsn) == "" {
			return nil, at("dsn_env", "environment variable %s is not set or empty: export it with the connection string, e.g. %s=postgres://screenpop@db.example.com/erp", opts.DSNEnv, opts.DSNEnv)
		}
	case opts.DSN != "":
		if hasPassword(opts.DSN) {
			return nil, at("dsn", "dsn contains a password: configuration files are read by many people and end up in version control; put the connection string in an environment variable and name it with dsn_env, or in a file named with dsn_file")
		}
		dsn = opts.DSN
	default:
		return nil, at("dsn_env", "dsn_env is required: name the environment variable holding the connection string, e.g. dsn_env: ACCOUNTING_DSN (or dsn_file: a file holding it)")
	}

	if strings.TrimSpace(opts.Query) == "" {
		return nil, at("query", "query is required: one SELECT with named parameters, e.g. SELECT balance FROM balances WHERE customer_id = :customer_id")
	}
	q, err := parseNamed(opts.Query)
	if err != nil {
		return nil, at("query", "%s", err)
	}
	search, err := parseSearch(spec.Options, opts.Search)
	if err != nil {
		return nil, err
	}
	if opts.MaxRows < 0 {
		return nil, at("max_rows", "max_rows must not be negative (0 means the default, %d)", DefaultMaxRows)
	}
	if opts.MaxRows == 0 {
		opts.MaxRows = DefaultMaxRows
	}
	if opts.MaxConns < 0 || opts.MaxConns > 1000 {
		return nil, at("max_conns", "max_conns %d is outside 0..1000 (0 means the default)", opts.MaxConns)
	}

	entry, err := pools.register(dsn, opts.MaxConns)
	if err != nil {
		key := "dsn"
		switch {
		case opts.DSNEnv != "":
			err = fmt.Errorf("environment variable %s: %w", opts.DSNEnv, err)
			key = "dsn_env"
		case opts.DSNFile != "":
			err = fmt.Errorf("file %s: %w", opts.DSNFile, err)
			key = "dsn_file"
		}
		return nil, at(key, "%s", err)
	}

	logger := spec.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Source{
		name:    spec.Name,
		pools:   pools,
		entry:   entry,
		query:   q,
		search:  search,
		maxRows: opts.MaxRows,
		logger:  logger.With("kind", "postgres"), // source=<name> is on spec.Logger
	}, nil
}

// Params lists the lookup parameters the query uses, in $1..$n order. Each
// one must be known for a lookup to run.
func (s *Source) Params() []string { return append([]string(nil), s.query.params...) }

// Fetch runs the query with the key's values. When the key lacks a value the
// query needs (no customer_id before the caller is resolved), it returns
// (nil, nil) without asking the database: there is nothing to look up.
//
// It returns as soon as ctx ends, even while the database is still busy:
// the query is then cancelled in PostgreSQL behind the caller's back, and its
// connection returns to the pool (or is dropped) on its own.
func (s *Source) Fetch(ctx context.Context, key aggregator.Key) ([]aggregator.Record, error) {
	args := make([]any, len(s.query.params))
	for i, name := range s.query.params {
		v, ok := key.Param(name)
		if !ok {
			return nil, nil
		}
		args[i] = v
	}
	if err := ctx.Err(); err != nil {
		return nil, s.fetchError(ctx, nil, args)
	}
	pool, err := s.pools.pool(s.entry)
	if err != nil {
		return nil, adapters.NewFetchError(kind, s.name, err.Error(), err)
	}

	type result struct {
		records []aggregator.Record
		err     error
	}
	done := make(chan result, 1)
	go func() {
		records, err := s.run(ctx, pool, args)
		done <- result{records, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, s.fetchError(ctx, r.err, args)
		}
		return r.records, nil
	case <-ctx.Done():
		// Both may be ready at once; rows that made it are worth more
		// than a timeout.
		select {
		case r := <-done:
			if r.err == nil {
				return r.records, nil
			}
		default:
		}
		return nil, s.fetchError(ctx, nil, args)
	}
}

// run executes the query and reads at most maxRows rows.
func (s *Source) run(ctx context.Context, pool *pgxpool.Pool, args []any) ([]aggregator.Record, error) {
	return s.runSQL(ctx, pool, s.query.sql, args, s.maxRows)
}

// runSQL executes sql and reads at most maxRows rows.
func (s *Source) runSQL(ctx context.Context, pool *pgxpool.Pool, sql string, args []any, maxRows int) ([]aggregator.Record, error) {
	rows, err := pool.Query(ctx, sql, args...)
	if err != nil {
		s.forgetDeadConnections(ctx, pool, err)
		return nil, err
	}
	defer rows.Close()
	fields := rows.FieldDescriptions()
	var records []aggregator.Record
	for rows.Next() {
		if len(records) == maxRows {
			// Closing reads and discards the rest on this connection,
			// which stays usable; cancelling instead would cost it.
			s.logger.Debug("rows beyond max_rows ignored", "max_rows", maxRows)
			break
		}
		values, err := rows.Values()
		if err != nil {
			return nil, err
		}
		rec := make(aggregator.Record, len(fields))
		for i, f := range fields {
			rec[f.Name] = convertValue(values[i])
		}
		records = append(records, rec)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		s.forgetDeadConnections(ctx, pool, err)
		return nil, err
	}
	return records, nil
}

// forgetDeadConnections empties the pool when err says the server went
// away: after a database restart every idle connection is dead, and without
// this the next few lookups would each find one.
func (s *Source) forgetDeadConnections(ctx context.Context, pool *pgxpool.Pool, err error) {
	if ctx.Err() == nil && lostConnection(err) {
		pool.Reset()
	}
}

var passwordKeyRE = regexp.MustCompile(`(?i)(^|\s)password\s*=`)

// hasPassword reports whether a DSN, URL or key=value form, holds a password.
func hasPassword(dsn string) bool {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			// Unparseable, perhaps because of a password with odd
			// characters: look for user:password@ by hand.
			rest := dsn[strings.Index(dsn, "://")+3:]
			if at := strings.LastIndex(rest, "@"); at >= 0 && strings.Contains(rest[:at], ":") {
				return true
			}
			return strings.Contains(strings.ToLower(dsn), "password=")
		}
		if _, ok := u.User.Password(); ok {
			return true
		}
		return u.Query().Has("password")
	}
	return passwordKeyRE.MatchString(dsn)
}
