package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/screenpop/screenpop/history"
)

const (
	upsertLink = `
INSERT INTO history_links (phone, customer_id, agent, agent_name, call_id, linked_at, daemon)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (phone) DO UPDATE SET customer_id = EXCLUDED.customer_id, agent = EXCLUDED.agent,
    agent_name = EXCLUDED.agent_name, call_id = EXCLUDED.call_id, linked_at = EXCLUDED.linked_at,
    daemon = EXCLUDED.daemon`

	linkOf = `
SELECT customer_id, agent, coalesce(agent_name, ''), coalesce(call_id, ''), linked_at, daemon
  FROM history_links WHERE phone = $1`
)

// Link implements history.Store: the link and its access entry in one
// transaction, written directly (not queued), so that the card built
// right after it finds the link, and an agent is told "linked" only
// when it is.
func (s *Store) Link(ctx context.Context, l history.Link) error {
	l, err := history.NormalizeLink(l, s.opts.Daemon, s.opts.Now())
	if err != nil {
		return err
	}
	entry := history.LinkEntry(l, s.opts.Now())
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(upsertLink, l.Phone, l.CustomerID, l.Agent, null(l.AgentName), null(l.CallID), l.At, l.Daemon)
		(&op{kind: opAccess, access: entry}).queue(b, s.opts.Daemon, false)
		return tx.SendBatch(ctx, b).Close()
	})
	return dbErr("link", err)
}

// LinkOf implements history.Store.
func (s *Store) LinkOf(ctx context.Context, phone string) (history.Link, error) {
	if phone == "" {
		return history.Link{}, history.ErrNotLinked
	}
	l := history.Link{Phone: phone}
	err := s.pool.QueryRow(ctx, linkOf, phone).Scan(&l.CustomerID, &l.Agent, &l.AgentName, &l.CallID, &l.At, &l.Daemon)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return history.Link{}, history.ErrNotLinked
	case err != nil:
		return history.Link{}, dbErr("read link", err)
	}
	l.At = history.Time(l.At)
	return l, nil
}
