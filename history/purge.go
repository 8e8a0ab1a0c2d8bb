package history

import (
	"context"
	"log/slog"
	"time"
)

// DefaultPurgeInterval is how often RunPurges purges.
const DefaultPurgeInterval = time.Hour

// RunPurges calls s.Purge at once and then every interval
// (DefaultPurgeInterval when 0) until ctx ends, logging what each purge
// deleted and any error: a failed purge (PostgreSQL away) is tried again at
// the next tick, and deletes what it missed then. Every daemon may run it;
// the purges of several daemons only overlap. It returns nil, in the
// Run(ctx) shape of the daemon's services.
func RunPurges(ctx context.Context, s Store, interval time.Duration, now func() time.Time, logger *slog.Logger) error {
	if interval <= 0 {
		interval = DefaultPurgeInterval
	}
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		start := time.Now()
		p, err := s.Purge(ctx, now())
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Warn("history purge failed; the next one catches up", "err", err)
		case p != (Purged{}):
			logger.Info("history purged", "calls", p.Calls, "notes", p.Notes, "wrapups", p.WrapUps, "access_entries", p.Access,
				"duration_seconds", time.Since(start).Seconds())
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil
		}
	}
}
