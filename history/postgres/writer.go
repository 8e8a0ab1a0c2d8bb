package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/screenpop/screenpop/history"
)

type opKind uint8

const (
	opCall opKind = iota
	opNote
	opVersion
	opWrapUp
	opAccess
)

// opKindNames are the kind label values of screenpop_history_writes_total.
var opKindNames = [...]string{opCall: "call", opNote: "note", opVersion: "note_version", opWrapUp: "wrapup", opAccess: "access"}

// op is one queued write. Every write is idempotent (an upsert, or an
// insert keyed by an ID made before it was queued), so an attempt whose
// commit succeeded but whose answer was lost can be made again.
type op struct {
	kind    opKind
	seq     uint64
	call    history.Call
	note    history.NewNote // opNote
	edit    history.NoteEdit
	id      string // note ID (opNote), version ID (opVersion)
	wrapup  history.WrapUp
	access  history.AccessEntry
	pending *pending // notes and edits: their caller waits
	sending sending  // what the last attempt did with it
}

const (
	upsertCall = `
INSERT INTO history_calls AS c (call_id, phone, withheld, customer_id, did, rung, answered_by, agent, agent_name,
                                transfers, outcome, ring_at, pop_at, answer_at, end_at, source, daemons)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
ON CONFLICT (call_id) DO UPDATE SET
    phone       = COALESCE(c.phone, EXCLUDED.phone),
    withheld    = c.withheld OR EXCLUDED.withheld,
    customer_id = COALESCE(c.customer_id, EXCLUDED.customer_id),
    did         = COALESCE(c.did, EXCLUDED.did),
    rung        = ARRAY(SELECT DISTINCT a COLLATE "C" FROM unnest(c.rung || EXCLUDED.rung) a ORDER BY 1),
    answered_by = COALESCE(c.answered_by, EXCLUDED.answered_by),
    agent       = COALESCE(c.agent, EXCLUDED.agent),
    agent_name  = COALESCE(c.agent_name, EXCLUDED.agent_name),
    transfers   = CASE WHEN jsonb_array_length(EXCLUDED.transfers) > jsonb_array_length(c.transfers)
                       THEN EXCLUDED.transfers ELSE c.transfers END,
    outcome     = CASE WHEN EXCLUDED.outcome = 'answered' OR c.outcome = '' THEN EXCLUDED.outcome ELSE c.outcome END,
    ring_at     = LEAST(c.ring_at, EXCLUDED.ring_at),
    pop_at      = LEAST(c.pop_at, EXCLUDED.pop_at),
    answer_at   = LEAST(c.answer_at, EXCLUDED.answer_at),
    end_at      = GREATEST(c.end_at, EXCLUDED.end_at),
    source      = COALESCE(c.source, EXCLUDED.source),
    daemons     = ARRAY(SELECT DISTINCT d COLLATE "C" FROM unnest(c.daemons || EXCLUDED.daemons) d ORDER BY 1)`

	insertNote = `
INSERT INTO history_notes (note_id, call_id, phone, agent, agent_name, created_at, daemon)
VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (note_id) DO NOTHING`

	// The original text is the version whose id is the note's.
	insertVersion = `
INSERT INTO history_note_versions (version_id, note_id, agent, agent_name, at, text)
VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (version_id) DO NOTHING`

	upsertWrapUp = `
INSERT INTO history_wrapups AS w (call_id, agent, code, label, at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (call_id) DO UPDATE SET agent = EXCLUDED.agent, code = EXCLUDED.code, label = EXCLUDED.label, at = EXCLUDED.at
WHERE EXCLUDED.at >= w.at`

	insertAccess = `
INSERT INTO history_access_log (entry_id, at, action, agent, customer_id, phone_hash, call_id, sections, daemon)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (entry_id) DO NOTHING`

	undoNote    = `DELETE FROM history_notes WHERE note_id = $1`
	undoVersion = `DELETE FROM history_note_versions WHERE version_id = $1`
)

// queue adds o's statements to b; undo queues the statement that takes
// back a note or an edit whose caller gave up after an attempt that may have
// committed it.
func (o *op) queue(b *pgx.Batch, daemon string, undo bool) {
	switch o.kind {
	case opCall:
		c := o.call
		transfers, _ := json.Marshal(c.Transfers) // plain strings and times: cannot fail
		if len(c.Transfers) == 0 {
			transfers = []byte("[]")
		}
		b.Queue(upsertCall, c.ID, null(c.Phone), c.Withheld, null(c.CustomerID), null(c.DID), nonNil(c.Rung),
			null(c.AnsweredBy), null(c.Agent), null(c.AgentName), string(transfers), string(c.Outcome),
			c.RingAt, nullTime(c.PopAt), nullTime(c.AnswerAt), nullTime(c.EndAt), null(c.Source), []string{daemon})
	case opNote:
		if undo {
			b.Queue(undoNote, o.id)
			return
		}
		n := o.note
		b.Queue(insertNote, o.id, n.CallID, null(n.Phone), n.Agent, null(n.AgentName), n.At, daemon)
		b.Queue(insertVersion, o.id, o.id, n.Agent, null(n.AgentName), n.At, n.Text)
	case opVersion:
		if undo {
			b.Queue(undoVersion, o.id)
			return
		}
		e := o.edit
		b.Queue(insertVersion, o.id, e.NoteID, e.Agent, null(e.AgentName), e.At, e.Text)
	case opWrapUp:
		w := o.wrapup
		b.Queue(upsertWrapUp, w.CallID, w.Agent, w.Code, w.Label, w.At)
	case opAccess:
		e := o.access
		b.Queue(insertAccess, e.ID, e.At, e.Action, e.Agent, null(e.CustomerID), null(e.PhoneHash), null(e.CallID), nonNil(e.Sections), e.Daemon)
	}
}

// null is s, or SQL NULL when s is empty.
func null(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// pending is the state of a note or an edit whose caller waits for its
// commit. The caller may give up (its context ends); the note must then
// never appear, even if an attempt that failed in the caller's eyes did
// commit it:
//
//   - queued (never sent): the writer skips it;
//   - sending: the caller waits for the attempt's end (write_timeout at
//     most), then decides again;
//   - unsure (an attempt failed, perhaps after committing): the writer
//     takes it back (DELETE) in its next successful attempt.
type pending struct {
	mu        sync.Mutex
	state     pendingState
	cancelled bool
	err       error
	settled   chan struct{} // closed when state becomes settled
	attempted chan struct{} // one wake-up: an attempt ended unsettled
}

type pendingState uint8

const (
	stateQueued pendingState = iota
	stateSending
	stateUnsure
	stateSettled
)

func newPending() *pending {
	return &pending{settled: make(chan struct{}), attempted: make(chan struct{}, 1)}
}

// wait returns nil once the write is committed, its error if PostgreSQL
// refused it, or history.ErrNotSaved when ctx ends first: the write is then
// given up for good.
func (p *pending) wait(ctx context.Context) error {
	select {
	case <-p.settled:
		return p.err
	case <-ctx.Done():
	}
	for {
		p.mu.Lock()
		switch p.state {
		case stateSettled:
			p.mu.Unlock()
			return p.err
		case stateQueued, stateUnsure:
			p.cancelled = true
			p.mu.Unlock()
			return fmt.Errorf("%w: PostgreSQL did not commit it in time: %w", history.ErrNotSaved, context.Cause(ctx))
		}
		p.mu.Unlock()
		select {
		case <-p.settled:
		case <-p.attempted:
		}
	}
}

// sending is what an attempt does with a write.
type sending uint8

const (
	sendWrite sending = iota // send it
	sendUndo                 // send its undo: its caller gave up after an unsure attempt
	sendSkip                 // skip it: its caller gave up before it was ever sent
	sendNone                 // skip it: settled already
)

// send marks the write as being sent and says how. A write given up before
// it was ever sent is settled and skipped.
func (p *pending) send() sending {
	if p == nil {
		return sendWrite
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.state == stateSettled:
		return sendNone
	case p.cancelled && p.state == stateQueued:
		p.settle(nil)
		return sendSkip
	case p.cancelled:
		p.state = stateSending
		return sendUndo
	}
	p.state = stateSending
	return sendWrite
}

// failed records an attempt that failed and will be made again.
func (p *pending) failed() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.state = stateUnsure
	p.mu.Unlock()
	select {
	case p.attempted <- struct{}{}:
	default:
	}
}

// done settles the write: err is nil when committed.
func (p *pending) done(err error) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.settle(err)
}

func (p *pending) settle(err error) {
	if p.state == stateSettled {
		return
	}
	p.state, p.err = stateSettled, err
	close(p.settled)
}

// writeLoop writes the outbox's head in batches until ctx ends, or, with
// drain, until the outbox is empty too. A batch that fails for want of
// PostgreSQL is tried again after a backoff; one that PostgreSQL refuses is
// written one write at a time, and the write it refuses is dropped.
func (s *Store) writeLoop(ctx context.Context, drain bool) {
	backoff := s.retryMin
	ping := time.NewTicker(s.pingInterval)
	defer ping.Stop()
	retrying := false
	for ctx.Err() == nil {
		batch := s.out.head(s.batchMax)
		if len(batch) == 0 {
			if drain {
				return
			}
			select {
			case <-s.out.ready:
			case <-ping.C:
				s.ping(ctx)
			case <-ctx.Done():
			}
			continue
		}
		if retrying {
			s.metrics.retries.Inc()
		}
		n, err := s.writeBatch(ctx, batch)
		s.out.drop(n)
		if err == nil {
			backoff, retrying = s.retryMin, false
			s.health.reached(nil)
			continue
		}
		retrying = true
		s.health.reached(err)
		// Full jitter: daemons that lost the same database do not all
		// come back at the same instant.
		wait := time.Duration(rand.Int64N(int64(backoff)) + 1)
		backoff = min(backoff*2, s.retryMax)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
}

// writeBatch writes batch in one transaction and returns how many writes
// from its head are done (written, or dropped as refused), and the error
// that stopped it, when PostgreSQL is unavailable.
func (s *Store) writeBatch(ctx context.Context, batch []*op) (int, error) {
	err := s.attempt(ctx, batch)
	if err == nil {
		for _, o := range batch {
			s.written(o)
		}
		return len(batch), nil
	}
	if !s.rejected(ctx, err) {
		s.metrics.errors.WithLabelValues(reasonUnavailable).Inc()
		return 0, err
	}
	s.metrics.errors.WithLabelValues(reasonRejected).Inc()
	// One of the writes is refused for good; find it rather than lose the
	// batch.
	for i, o := range batch {
		if err := s.writeOne(ctx, o); err != nil {
			s.metrics.errors.WithLabelValues(reasonUnavailable).Inc()
			return i, err
		}
	}
	return len(batch), nil
}

// writeOne writes o alone and settles it, written or refused for good; it
// returns the error that says PostgreSQL is unavailable instead. A failure
// that is not PostgreSQL's own word is tried thrice before o is dropped.
func (s *Store) writeOne(ctx context.Context, o *op) error {
	var pgErr *pgconn.PgError
	for try := 1; ; try++ {
		err := s.attempt(ctx, []*op{o})
		switch {
		case err == nil:
			s.written(o)
			return nil
		case !s.rejected(ctx, err):
			return err
		case errors.As(err, &pgErr) || try == 3:
			s.reject(o, err)
			return nil
		}
	}
}

// attempt sends the writes in one transaction, under write_timeout.
func (s *Store) attempt(ctx context.Context, ops []*op) error {
	b := &pgx.Batch{}
	var sent []*op
	for _, o := range ops {
		o.sending = o.pending.send()
		switch o.sending {
		case sendSkip:
			s.metrics.writes.WithLabelValues(opKindNames[o.kind], resultCancelled).Inc()
			continue
		case sendNone:
			continue
		}
		o.queue(b, s.opts.Daemon, o.sending == sendUndo)
		sent = append(sent, o)
	}
	if len(sent) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeoutCause(ctx, s.cfg.WriteTimeout, writeTimeout(s.cfg.WriteTimeout))
	defer cancel()
	start := time.Now()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, b).Close()
	})
	s.metrics.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		for _, o := range sent {
			o.pending.failed()
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", context.Cause(ctx), err)
		}
	}
	return err
}

// writeTimeout is the cause of an attempt that ran out of write_timeout.
type writeTimeout time.Duration

func (d writeTimeout) Error() string {
	return fmt.Sprintf("no answer from PostgreSQL within write_timeout %s", time.Duration(d))
}

// written settles a write whose attempt committed.
func (s *Store) written(o *op) {
	o.pending.done(nil)
	switch o.sending {
	case sendWrite:
		s.metrics.writes.WithLabelValues(opKindNames[o.kind], resultWritten).Inc()
	case sendUndo:
		s.metrics.writes.WithLabelValues(opKindNames[o.kind], resultCancelled).Inc()
	}
}

// reject drops a write PostgreSQL refuses for good, telling its caller if
// one waits, and logging it otherwise.
func (s *Store) reject(o *op, err error) {
	s.metrics.writes.WithLabelValues(opKindNames[o.kind], resultRejected).Inc()
	var pgErr *pgconn.PgError
	if o.kind == opVersion && errors.As(err, &pgErr) && pgErr.Code == "23503" {
		o.pending.done(fmt.Errorf("%w: %s", history.ErrNoteNotFound, o.edit.NoteID))
		return
	}
	if o.pending != nil {
		o.pending.done(fmt.Errorf("history: PostgreSQL refused the %s: %s", opKindNames[o.kind], describe(err)))
		return
	}
	s.logger.Error("history write refused by PostgreSQL and dropped", "kind", opKindNames[o.kind], "err", describe(err))
}

// rejected reports whether a write failed for what it holds, so that
// trying it again would fail again: PostgreSQL said so (class 22, data
// exception; class 23, integrity constraint), or the failure is neither
// PostgreSQL's word nor a timeout (a lost connection, or a value the driver
// cannot encode) and the database answers a ping, so it was not the
// connection. Every other PostgreSQL error (a server shutting down, a
// missing table before the migration, a missing GRANT) is worth retrying:
// fixing it must not have cost the writes.
func (s *Store) rejected(ctx context.Context, err error) bool {
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr):
		return strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), ctx.Err() != nil:
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	return s.pool.Ping(ctx) == nil
}
