package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/history"
)

// Reads go to PostgreSQL directly, under the caller's context: writes
// still in the buffer are not seen.

const (
	// Each of the two index scans (by number, by customer) is limited
	// before the union, so a busy number costs no more than the card shows.
	lookupCalls = `
WITH ids AS (
    (SELECT call_id FROM history_calls WHERE phone = $1 ORDER BY ring_at DESC LIMIT $3)
    UNION
    (SELECT call_id FROM history_calls WHERE customer_id = $2 ORDER BY ring_at DESC LIMIT $3)
)
SELECT c.call_id, coalesce(c.phone, ''), coalesce(c.customer_id, ''), coalesce(c.did, ''),
       coalesce(c.agent, ''), coalesce(c.agent_name, ''), c.outcome, c.ring_at, c.end_at,
       coalesce(w.code, ''), coalesce(w.label, '')
  FROM ids JOIN history_calls c USING (call_id) LEFT JOIN history_wrapups w USING (call_id)
 ORDER BY c.ring_at DESC, c.call_id COLLATE "C" DESC
 LIMIT $3`

	countCalls = `
SELECT count(*) FROM history_calls
 WHERE (phone = $1 OR customer_id = $2) AND ring_at >= $3`

	// The latest version's text, and who wrote it when it is not the
	// original (whose version_id is the note's).
	notesOf = `
SELECT n.call_id, n.note_id::text, n.agent, coalesce(n.agent_name, ''), n.created_at,
       v.text, v.version_id <> n.note_id, v.agent, v.at
  FROM history_notes n
 CROSS JOIN LATERAL (SELECT version_id, text, agent, at FROM history_note_versions
                      WHERE note_id = n.note_id ORDER BY seq DESC LIMIT 1) v
 WHERE n.call_id = ANY($1)
 ORDER BY n.created_at, n.note_id`

	versionsOf = `
SELECT v.agent, coalesce(v.agent_name, ''), v.at, v.text
  FROM history_note_versions v
 WHERE v.note_id = $1
 ORDER BY v.seq`

	lastHandled = `
SELECT c.call_id, c.end_at, w.call_id IS NOT NULL
  FROM history_calls c LEFT JOIN history_wrapups w USING (call_id)
 WHERE c.agent = $1 AND c.outcome = 'answered' AND c.end_at IS NOT NULL
 ORDER BY c.end_at DESC, c.call_id COLLATE "C" DESC
 LIMIT 1`
)

// Call implements history.Store.
func (s *Store) Call(ctx context.Context, callID string) (history.Call, error) {
	var c history.Call
	var transfers []byte
	var pop, answer, end *time.Time
	err := s.pool.QueryRow(ctx, `
SELECT call_id, coalesce(phone, ''), withheld, coalesce(customer_id, ''), coalesce(did, ''), rung,
       coalesce(answered_by, ''), coalesce(agent, ''), coalesce(agent_name, ''), transfers, outcome,
       ring_at, pop_at, answer_at, end_at, coalesce(source, ''), daemons
  FROM history_calls WHERE call_id = $1`, callID).Scan(
		&c.ID, &c.Phone, &c.Withheld, &c.CustomerID, &c.DID, &c.Rung,
		&c.AnsweredBy, &c.Agent, &c.AgentName, &transfers, &c.Outcome,
		&c.RingAt, &pop, &answer, &end, &c.Source, &c.Daemons)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return history.Call{}, fmt.Errorf("%w: %s", history.ErrCallNotFound, callID)
	case err != nil:
		return history.Call{}, dbErr("read call", err)
	}
	if err := json.Unmarshal(transfers, &c.Transfers); err != nil {
		return history.Call{}, fmt.Errorf("history: call %s: transfers: %w", callID, err)
	}
	for i := range c.Transfers {
		c.Transfers[i].At = history.Time(c.Transfers[i].At)
	}
	c.RingAt, c.PopAt, c.AnswerAt, c.EndAt = history.Time(c.RingAt), timeOf(pop), timeOf(answer), timeOf(end)
	if len(c.Rung) == 0 {
		c.Rung = nil
	}
	if len(c.Transfers) == 0 {
		c.Transfers = nil
	}
	return c, nil
}

func timeOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return history.Time(*t)
}

// Lookup implements history.Store.
func (s *Store) Lookup(ctx context.Context, q history.Query) (history.Result, error) {
	var r history.Result
	if q.Phone == "" && q.CustomerID == "" {
		return r, nil
	}
	phone, customer := null(q.Phone), null(q.CustomerID)
	since := s.opts.Now().Add(-history.Window)
	if err := s.pool.QueryRow(ctx, countCalls, phone, customer, since).Scan(&r.Last30Days); err != nil {
		return r, dbErr("read history", err)
	}
	if q.Limit <= 0 {
		return r, nil
	}
	rows, err := s.pool.Query(ctx, lookupCalls, phone, customer, q.Limit)
	if err != nil {
		return r, dbErr("read history", err)
	}
	var ids []string
	r.Calls, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (screenpop.PastCall, error) {
		var c history.Call
		var end *time.Time
		var w history.WrapUp
		err := row.Scan(&c.ID, &c.Phone, &c.CustomerID, &c.DID, &c.Agent, &c.AgentName, &c.Outcome, &c.RingAt, &end, &w.Code, &w.Label)
		c.RingAt, c.EndAt = history.Time(c.RingAt), timeOf(end)
		ids = append(ids, c.ID)
		wp := &w
		if w.Code == "" {
			wp = nil
		}
		return history.PastCall(c, nil, wp), err
	})
	if err != nil {
		return history.Result{}, dbErr("read history", err)
	}
	notes, err := s.notes(ctx, ids)
	if err != nil {
		return history.Result{}, err
	}
	for i := range r.Calls {
		r.Calls[i].Notes = notes[r.Calls[i].CallID]
	}
	return r, nil
}

// notes returns the notes of the calls, by call id, oldest first.
func (s *Store) notes(ctx context.Context, callIDs []string) (map[string][]screenpop.Note, error) {
	if len(callIDs) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, notesOf, callIDs)
	if err != nil {
		return nil, dbErr("read notes", err)
	}
	out := make(map[string][]screenpop.Note)
	var callID string
	_, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (struct{}, error) {
		var n screenpop.Note
		var edited bool
		var editedBy string
		var editedAt time.Time
		if err := row.Scan(&callID, &n.ID, &n.Agent, &n.AgentName, &n.At, &n.Text, &edited, &editedBy, &editedAt); err != nil {
			return struct{}{}, err
		}
		n.At = history.Time(n.At)
		if edited {
			n.EditedAt, n.EditedBy = history.Time(editedAt), editedBy
		}
		out[callID] = append(out[callID], n)
		return struct{}{}, nil
	})
	if err != nil {
		return nil, dbErr("read notes", err)
	}
	return out, nil
}

// Notes implements history.Store.
func (s *Store) Notes(ctx context.Context, callID string) ([]screenpop.Note, error) {
	notes, err := s.notes(ctx, []string{callID})
	return notes[callID], err
}

// NoteVersions implements history.Store.
func (s *Store) NoteVersions(ctx context.Context, noteID string) ([]history.NoteVersion, error) {
	if !history.ValidID(noteID) {
		return nil, fmt.Errorf("%w: %q is no note ID", history.ErrNoteNotFound, noteID)
	}
	rows, err := s.pool.Query(ctx, versionsOf, noteID)
	if err != nil {
		return nil, dbErr("read note", err)
	}
	versions, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (history.NoteVersion, error) {
		var v history.NoteVersion
		err := row.Scan(&v.Agent, &v.AgentName, &v.At, &v.Text)
		v.At = history.Time(v.At)
		return v, err
	})
	switch {
	case err != nil:
		return nil, dbErr("read note", err)
	case len(versions) == 0:
		return nil, fmt.Errorf("%w: %s", history.ErrNoteNotFound, noteID)
	}
	return versions, nil
}

// AgentState implements history.Store.
func (s *Store) AgentState(ctx context.Context, agent string, now time.Time) (history.AgentState, error) {
	var last history.LastHandled
	err := s.pool.QueryRow(ctx, lastHandled, agent).Scan(&last.CallID, &last.EndAt, &last.Wrapped)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return s.cfg.AgentState(nil, now), nil
	case err != nil:
		return history.AgentState{}, dbErr("read wrap-up state", err)
	}
	last.EndAt = history.Time(last.EndAt)
	return s.cfg.AgentState(&last, now), nil
}

// AccessLog implements history.Store.
func (s *Store) AccessLog(ctx context.Context, q history.AccessQuery) ([]history.AccessEntry, error) {
	if q.Limit <= 0 {
		q.Limit = history.DefaultAccessLimit
	}
	// Only the filters given, so that each query can use its index.
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if q.CustomerID != "" {
		add("customer_id = $%d", q.CustomerID)
	}
	if q.Agent != "" {
		add("agent = $%d", q.Agent)
	}
	if q.Phone != "" {
		add("phone_hash = $%d", history.HashPhone(q.Phone))
	}
	if !q.Since.IsZero() {
		add("at >= $%d", q.Since)
	}
	sql := `SELECT entry_id::text, at, action, agent, coalesce(customer_id, ''), coalesce(phone_hash, ''),
       coalesce(call_id, ''), sections, daemon FROM history_access_log`
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, q.Limit)
	sql += fmt.Sprintf(" ORDER BY at DESC, seq DESC LIMIT $%d", len(args))
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, dbErr("read access log", err)
	}
	entries, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (history.AccessEntry, error) {
		var e history.AccessEntry
		err := row.Scan(&e.ID, &e.At, &e.Action, &e.Agent, &e.CustomerID, &e.PhoneHash, &e.CallID, &e.Sections, &e.Daemon)
		e.At = history.Time(e.At)
		if len(e.Sections) == 0 {
			e.Sections = nil
		}
		return e, err
	})
	return entries, dbErr("read access log", err)
}

// Erase implements history.Store, in one transaction: the calls of the
// customer or number, their notes and wrap-ups, the notes written under
// the number to calls never recorded, the links of the number or to the
// customer, and the access entry saying so.
func (s *Store) Erase(ctx context.Context, subj history.Subject) (history.Erased, error) {
	if err := history.CheckSubject(subj); err != nil {
		return history.Erased{}, err
	}
	entry := history.ErasureEntry(subj, s.opts.Daemon, s.opts.Now())
	var gone history.Erased
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `DELETE FROM history_calls WHERE customer_id = $1 OR phone = $2 RETURNING call_id`,
			null(subj.CustomerID), null(subj.Phone))
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		gone.Calls = int64(len(ids))
		if gone.Notes, err = rowsAffected(ctx, tx, `DELETE FROM history_notes WHERE call_id = ANY($1) OR phone = $2`, ids, null(subj.Phone)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM history_wrapups WHERE call_id = ANY($1)`, ids); err != nil {
			return err
		}
		if gone.Links, err = rowsAffected(ctx, tx, `DELETE FROM history_links WHERE customer_id = $1 OR phone = $2`,
			null(subj.CustomerID), null(subj.Phone)); err != nil {
			return err
		}
		b := &pgx.Batch{}
		(&op{kind: opAccess, access: entry}).queue(b, s.opts.Daemon, false)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return history.Erased{}, dbErr("erase", err)
	}
	return gone, nil
}

// Purge implements history.Store: calls that rang before the retention,
// then the notes and wrap-ups older than it whose call is gone (a note
// written after an old call goes when it is old itself), then old access
// entries. Each table is deleted from in chunks, so that no statement
// holds its locks for long.
func (s *Store) Purge(ctx context.Context, now time.Time) (history.Purged, error) {
	cutoff, accessCutoff := now.Add(-s.cfg.Retention), now.Add(-s.cfg.AccessRetention)
	var p history.Purged
	steps := []struct {
		table string
		n     *int64
		sql   string
		arg   time.Time
	}{
		{"calls", &p.Calls, `DELETE FROM history_calls WHERE call_id IN
            (SELECT call_id FROM history_calls WHERE ring_at < $1 LIMIT $2)`, cutoff},
		{"notes", &p.Notes, `DELETE FROM history_notes WHERE note_id IN
            (SELECT n.note_id FROM history_notes n WHERE n.created_at < $1
                AND NOT EXISTS (SELECT 1 FROM history_calls c WHERE c.call_id = n.call_id) LIMIT $2)`, cutoff},
		{"wrapups", &p.WrapUps, `DELETE FROM history_wrapups WHERE call_id IN
            (SELECT w.call_id FROM history_wrapups w WHERE w.at < $1
                AND NOT EXISTS (SELECT 1 FROM history_calls c WHERE c.call_id = w.call_id) LIMIT $2)`, cutoff},
		{"access", &p.Access, `DELETE FROM history_access_log WHERE entry_id IN
            (SELECT entry_id FROM history_access_log WHERE at < $1 LIMIT $2)`, accessCutoff},
	}
	for _, st := range steps {
		for {
			n, err := rowsAffected(ctx, s.pool, st.sql, st.arg, s.purgeChunk)
			*st.n += n
			s.metrics.purged.WithLabelValues(st.table).Add(float64(n))
			if err != nil {
				return p, dbErr("purge "+st.table, err)
			}
			if n < int64(s.purgeChunk) {
				break
			}
		}
	}
	return p, nil
}
