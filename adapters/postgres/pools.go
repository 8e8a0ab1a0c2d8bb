package postgres

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/screenpop/screenpop/aggregator"
)

// Pools shares one connection pool per distinct DSN between the sources of a
// configuration: accounting-balance and accounting-invoices read the same
// database, and two pools would double the connections the DBA sees for no
// gain.
//
// A pool is opened on the first Fetch that needs it, never while the
// configuration is built, so the daemon starts and `config check` passes
// while a database is down; the first card then shows that section as
// failed, and the next one works as soon as the database is back.
type Pools struct {
	logger *slog.Logger

	mu      sync.Mutex
	entries map[string]*poolEntry
	closed  bool
}

// poolEntry is one DSN's pool, registered when a source is built and opened
// on first use.
type poolEntry struct {
	config   *pgxpool.Config
	maxConns int32 // the largest max_conns any source sharing it asked for
	pool     *pgxpool.Pool
	// secrets are strings that must never appear in an error: the DSN
	// itself and the password pgx resolved (from the DSN, PGPASSWORD or a
	// .pgpass file).
	secrets []string
	// pruned is set when a reload left no source using this DSN: a card
	// still being built by the replaced sources must not reopen its pool.
	pruned bool
}

// errPoolsClosed is returned by Fetch after Close, while the daemon shuts down.
var errPoolsClosed = errors.New("the daemon is shutting down (connection pools closed)")

// errPoolPruned is returned by a source a reload replaced, for a lookup that
// started before the reload and asked after it.
var errPoolPruned = errors.New("the source was removed by a configuration reload (its connection pool is closed)")

// NewPools returns an empty set of pools. Close it when the daemon stops (or
// when a reloaded configuration has replaced every source using it).
func NewPools(logger *slog.Logger) *Pools {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// The caller names the component (component=postgres) on the logger
	// it hands in: adding it here again would write it twice a line.
	return &Pools{logger: logger, entries: map[string]*poolEntry{}}
}

// cancelGrace is how long a query whose context ended may take to stop once
// PostgreSQL has been asked to cancel it, before its connection is dropped.
// Fetch itself returns at once; this only bounds the clean-up behind it.
const cancelGrace = 2 * time.Second

// register parses dsn (no I/O) and returns its entry, creating it on first
// sight. maxConns of 0 keeps the pool's default.
func (p *Pools) register(dsn string, maxConns int32) (*poolEntry, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.entries[dsn]; ok {
		if maxConns > e.maxConns {
			if e.pool != nil {
				p.logger.Warn("max_conns raised for a pool that is already open: takes effect at the next restart",
					"database", e.config.ConnConfig.Database, "max_conns", e.maxConns, "wanted", maxConns)
			} else {
				e.maxConns = maxConns
			}
		}
		return e, nil
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New(parseReason(err, dsn))
	}
	// Ask the server to cancel a query whose context ended, rather than
	// only dropping the connection: a query stuck on a lock or a slow plan
	// would otherwise keep running in the database long after the card was
	// pushed, and the next calls would pile more of them on top.
	cfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: cancelGrace}
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		// What the DBA sees in pg_stat_activity.
		cfg.ConnConfig.RuntimeParams["application_name"] = "screenpop"
	}
	e := &poolEntry{config: cfg, maxConns: maxConns, secrets: []string{dsn}}
	if pw := cfg.ConnConfig.Password; pw != "" {
		e.secrets = append(e.secrets, pw)
	}
	p.entries[dsn] = e
	return e, nil
}

// parseReason is pgx's reason for refusing a DSN without the DSN: its
// ParseConfigError quotes the connection string (password masked on a
// best-effort basis, host and user shown) and net/url's errors quote it
// whole. The configuration error already says which option or variable
// held it.
func parseReason(err error, dsn string) string {
	const prefix = "not a valid PostgreSQL connection string"
	var pe *pgconn.ParseConfigError
	if !errors.As(err, &pe) {
		return prefix
	}
	inner := errors.Unwrap(pe)
	var ue *url.Error
	if errors.As(inner, &ue) {
		inner = ue.Err
	}
	if inner == nil {
		return prefix
	}
	reason := inner.Error()
	if dsn != "" && strings.Contains(reason, dsn) {
		return prefix
	}
	return prefix + ": " + reason
}

// pool returns e's pool, opening it on first use. Opening does not connect:
// connections are dialled by the queries, under their context.
func (p *Pools) pool(e *poolEntry) (*pgxpool.Pool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errPoolsClosed
	}
	if e.pruned {
		return nil, errPoolPruned
	}
	if e.pool != nil {
		return e.pool, nil
	}
	cfg := e.config.Copy()
	if e.maxConns > 0 {
		cfg.MaxConns = e.maxConns
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	p.logger.Info("postgres pool opened",
		"host", cfg.ConnConfig.Host, "database", cfg.ConnConfig.Database,
		"user", cfg.ConnConfig.User, "max_conns", cfg.MaxConns)
	e.pool = pool
	return pool, nil
}

// Prune closes the pools that none of inUse (the sources of the
// configuration now running) uses, and forgets their DSNs, so that a DSN
// removed or changed by a reload does not keep its connections open in the
// database. Sources of other kinds, or of other Pools, are ignored. It
// returns how many DSNs were dropped, and waits for queries in flight on
// their pools to give their connections back (bounded by their deadlines).
func (p *Pools) Prune(inUse []aggregator.Source) int {
	keep := map[*poolEntry]bool{}
	for _, src := range inUse {
		if s, ok := src.(*Source); ok && s.pools == p {
			keep[s.entry] = true
		}
	}
	p.mu.Lock()
	var drop []*poolEntry
	for dsn, e := range p.entries {
		if !keep[e] {
			e.pruned = true
			drop = append(drop, e)
			delete(p.entries, dsn)
		}
	}
	p.mu.Unlock()
	for _, e := range drop {
		if e.pool != nil {
			p.logger.Info("postgres pool closed: no source uses it after the reload",
				"host", e.config.ConnConfig.Host, "database", e.config.ConnConfig.Database)
			e.pool.Close()
		}
	}
	return len(drop)
}

// Close closes every pool, waiting for queries in flight to give their
// connections back. Fetch fails afterwards. Closing twice is harmless.
func (p *Pools) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	var open []*pgxpool.Pool
	for _, e := range p.entries {
		if e.pool != nil {
			open = append(open, e.pool)
		}
	}
	p.mu.Unlock()
	for _, pool := range open {
		pool.Close()
	}
}
