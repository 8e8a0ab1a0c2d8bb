// Package postgres is the PostgreSQL history.Store: calls, notes, wrap-ups
// and the access log of every daemon in one database, surviving restarts.
//
// Writes go through a bounded buffer and one writer goroutine that sends
// them in batches, one transaction each, and retries with backoff while
// PostgreSQL is away; every write is idempotent, so a batch whose commit was
// lost on the wire can be sent again. Notes and note edits return only once
// committed. Reads, erasure and purges go to PostgreSQL directly. The schema
// is migrated by goose from migrations embedded in the binary, at Run and by
// `screenpopd db migrate`.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/adapters"
	"github.com/screenpop/screenpop/history"
)

// Store is the PostgreSQL history.Store.
type Store struct {
	cfg     history.Config
	opts    history.Options
	logger  *slog.Logger
	pool    *pgxpool.Pool
	out     *outbox
	metrics *metrics
	health  *health

	// Tuning, fixed at New; tests shorten them.
	retryMin, retryMax time.Duration // backoff between failed write attempts
	pingInterval       time.Duration // how often an idle writer checks the database
	drainTimeout       time.Duration // how long Run writes the queue after its context ends
	batchMax           int           // writes per transaction
	purgeChunk         int           // rows per DELETE of a purge

	closeOnce sync.Once
}

var _ history.Store = (*Store)(nil)

// New returns a store on the database of dsn. It validates cfg and the
// DSN but does not connect: Run migrates the schema and writes, and until
// PostgreSQL answers, writes wait in the buffer.
func New(cfg history.Config, dsn string, opts history.Options) (*Store, error) {
	cfg.ApplyDefaults()
	if cfg.Type != history.TypePostgres {
		return nil, fmt.Errorf("history: postgres.New given type %q", cfg.Type)
	}
	// The DSN is given: where the daemon found it (dsn_env, dsn_file, a
	// command line) is its own business.
	checked := cfg
	if checked.DSNEnv == "" && checked.DSNFile == "" {
		checked.DSNEnv = "given"
	}
	if err := checked.Validate(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx quotes the DSN in some parse errors; say where it came from instead.
		return nil, errors.New("history: the connection string is not valid (see https://pkg.go.dev/github.com/jackc/pgx/v5/pgconn#ParseConfig)")
	}
	pc.MaxConns = cfg.MaxConns
	if _, ok := pc.ConnConfig.RuntimeParams["application_name"]; !ok {
		pc.ConnConfig.RuntimeParams["application_name"] = "screenpop-history"
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("history: %s", describe(err))
	}
	opts = opts.WithDefaults()
	s := &Store{
		cfg:          cfg,
		opts:         opts,
		logger:       opts.Logger.With("backend", history.TypePostgres), // the wiring names the component
		pool:         pool,
		out:          newOutbox(cfg.BufferSize),
		health:       &health{},
		retryMin:     100 * time.Millisecond,
		retryMax:     10 * time.Second,
		pingInterval: 10 * time.Second,
		drainTimeout: cfg.WriteTimeout,
		batchMax:     500,
		purgeChunk:   5000,
	}
	s.health.logger = s.logger
	s.health.queued = s.out.len
	if s.metrics, err = newMetrics(opts.Registerer, s); err != nil {
		pool.Close()
		return nil, fmt.Errorf("history: metrics: %w", err)
	}
	return s, nil
}

// Run migrates the schema (retrying until PostgreSQL answers) and writes
// the buffer until ctx ends; then it goes on writing for up to
// write_timeout, so that a clean shutdown loses nothing while PostgreSQL is
// up. It returns nil.
func (s *Store) Run(ctx context.Context) error {
	backoff := s.retryMin
	for ctx.Err() == nil && !s.health.isMigrated() {
		if _, err := s.Migrate(ctx); err != nil {
			s.health.reached(err)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			backoff = min(backoff*2, s.retryMax)
		}
	}
	if s.health.isMigrated() {
		s.writeLoop(ctx, false)
		drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.drainTimeout)
		defer cancel()
		s.writeLoop(drain, true)
	}
	return nil
}

// Close refuses further writes and closes the pool. Writes still queued
// (PostgreSQL was away until the end) are lost, and logged as such.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if n := s.out.close(); n > 0 {
			s.logger.Error("history closed with writes PostgreSQL never took; they are lost", "writes", n)
		}
		s.pool.Close()
	})
	return nil
}

// Record implements history.Store.
func (s *Store) Record(ctx context.Context, p screenpop.PastCall) error {
	if err := s.RecordCall(ctx, history.CallFromPast(p)); err != nil {
		return err
	}
	for _, n := range p.Notes {
		nn, err := history.NormalizeNote(history.NewNote{CallID: p.CallID, Phone: p.Phone, Agent: n.Agent, AgentName: n.AgentName, At: n.At, Text: n.Text}, s.opts.Now())
		if err != nil {
			return err
		}
		if err := s.push(&op{kind: opNote, note: nn, id: history.PastNoteID(p.CallID, n)}); err != nil {
			return err
		}
	}
	return nil
}

// AddNote implements history.Store.
func (s *Store) AddNote(ctx context.Context, phone, callID string, n screenpop.Note) error {
	_, err := s.SaveNote(ctx, history.NewNote{CallID: callID, Phone: phone, Agent: n.Agent, AgentName: n.AgentName, At: n.At, Text: n.Text})
	return err
}

// Recent implements history.Store.
func (s *Store) Recent(ctx context.Context, phone string, limit int) ([]screenpop.PastCall, error) {
	if phone == "" {
		return nil, nil
	}
	r, err := s.Lookup(ctx, history.Query{Phone: phone, Limit: limit})
	return r.Calls, err
}

// RecordCall implements history.Store: the call is queued.
func (s *Store) RecordCall(_ context.Context, c history.Call) error {
	c, err := history.NormalizeCall(c)
	if err != nil {
		return err
	}
	return s.push(&op{kind: opCall, call: c})
}

// SaveNote implements history.Store: it waits for the commit until ctx
// ends; see pending for what happens to a note given up.
func (s *Store) SaveNote(ctx context.Context, n history.NewNote) (screenpop.Note, error) {
	n, err := history.NormalizeNote(n, s.opts.Now())
	if err != nil {
		return screenpop.Note{}, err
	}
	o := &op{kind: opNote, note: n, id: history.NewID(), pending: newPending()}
	if err := s.push(o); err != nil {
		return screenpop.Note{}, err
	}
	if err := o.pending.wait(ctx); err != nil {
		return screenpop.Note{}, err
	}
	return screenpop.Note{ID: o.id, Agent: n.Agent, AgentName: n.AgentName, At: n.At, Text: n.Text}, nil
}

// EditNote implements history.Store, waiting like SaveNote.
func (s *Store) EditNote(ctx context.Context, e history.NoteEdit) error {
	e, err := history.NormalizeEdit(e, s.opts.Now())
	if err != nil {
		return err
	}
	o := &op{kind: opVersion, edit: e, id: history.NewID(), pending: newPending()}
	if err := s.push(o); err != nil {
		return err
	}
	return o.pending.wait(ctx)
}

// WrapUp implements history.Store: the wrap-up is queued.
func (s *Store) WrapUp(_ context.Context, w history.WrapUp) error {
	w, err := s.cfg.NormalizeWrapUp(w, s.opts.Now())
	if err != nil {
		return err
	}
	return s.push(&op{kind: opWrapUp, wrapup: w})
}

// LogAccess implements history.Store: the entry is queued.
func (s *Store) LogAccess(_ context.Context, e history.AccessEntry) error {
	e, err := history.NormalizeAccess(e, s.opts.Daemon, s.opts.Now())
	if err != nil {
		return err
	}
	return s.push(&op{kind: opAccess, access: e})
}

func (s *Store) push(o *op) error {
	err := s.out.push(o)
	if errors.Is(err, history.ErrBufferFull) {
		s.metrics.writes.WithLabelValues(opKindNames[o.kind], resultRefused).Inc()
		s.health.refuse()
	}
	return err
}

// Flush implements history.Store.
func (s *Store) Flush(ctx context.Context) error { return s.out.wait(ctx) }

// Status implements history.Store.
func (s *Store) Status() history.Status {
	st := s.health.status()
	st.Queued, st.Capacity = s.out.len(), s.cfg.BufferSize
	return st
}

// Healthy implements history.Store.
func (s *Store) Healthy() error { return s.Status().Err() }

func (s *Store) ping(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	s.health.reached(s.pool.Ping(ctx))
}

// health is what Status reports: whether PostgreSQL answered the last
// attempt, since when it has not, and why.
type health struct {
	logger *slog.Logger
	queued func() int

	mu        sync.Mutex
	up        bool
	migrated  bool
	lastErr   string
	downSince time.Time
	refused   uint64
	refusedAt time.Time // last refusal logged
}

// reached records the outcome of a write, ping or migration (err nil: it
// went through) and logs the changes.
func (h *health) reached(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		if !h.up && !h.downSince.IsZero() {
			h.logger.Info("history database reachable again", "down_seconds", time.Since(h.downSince).Seconds(), "queued", h.queued())
		}
		h.up, h.downSince = true, time.Time{}
		return
	}
	h.lastErr = describe(err)
	if h.up || h.downSince.IsZero() {
		h.downSince = time.Now()
		h.logger.Warn("history database unreachable; writes wait in the buffer and are retried", "err", h.lastErr, "queued", h.queued())
	}
	h.up = false
}

func (h *health) setMigrated() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.migrated = true
}

func (h *health) isMigrated() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.migrated
}

// refuse counts a write refused for a full buffer, logging at most once a
// minute.
func (h *health) refuse() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refused++
	if time.Since(h.refusedAt) >= time.Minute {
		h.refusedAt = time.Now()
		h.logger.Error("history write buffer full: writes are refused until PostgreSQL takes the backlog", "refused", h.refused, "queued", h.queued())
	}
}

func (h *health) status() history.Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	return history.Status{
		Backend: history.TypePostgres, Up: h.up, Migrated: h.migrated, Refused: h.refused,
		LastError: h.lastErr, DownSince: h.downSince,
	}
}

// dbError is a PostgreSQL failure described without the host, user or
// data the driver's text may hold; the driver's error stays reachable with
// errors.As.
type dbError struct {
	what string
	err  error
}

func (e *dbError) Error() string { return "history: " + e.what + ": " + describe(e.err) }
func (e *dbError) Unwrap() error { return e.err }

func dbErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return &dbError{what: what, err: err}
}

// describe says what went wrong in one line, from the error's type rather
// than its text: pgx's connection errors start with "user=... database=..."
// and network errors carry addresses. A PostgreSQL error's Detail is left
// out: it quotes the data.
func describe(err error) string {
	var pgErr *pgconn.PgError
	var timeout writeTimeout
	switch {
	case errors.As(err, &pgErr):
		return fmt.Sprintf("%s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
	case errors.As(err, &timeout):
		return timeout.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	if reason, ok := adapters.NetworkReason(err); ok {
		return reason
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return "cannot connect to the database"
	}
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return msg
}

// rowsAffected runs one statement and returns how many rows it touched.
func rowsAffected(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, sql string, args ...any) (int64, error) {
	tag, err := q.Exec(ctx, sql, args...)
	return tag.RowsAffected(), err
}
