package pop

import (
	"context"
	"log/slog"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/pop/popstate"
)

// logOutcome writes the one line an ended call leaves in the log, at info:
// its outcome and timings, for a log pipeline to search and count call by
// call what the metrics only aggregate. Every call that rang an agent
// gets one (the calls the history records); the caller's number is
// masked, and nothing of the customer is written.
//
// Timings are seconds from the first ring: the ring, answer and end are
// the PBX's times, the pop's the daemon's (when it was sent to the first
// agent's page); a clock ahead of the other counts as 0. The answer is the
// call's first, by the agent in answered_by.
func (d *Dispatcher) logOutcome(r popstate.Record) {
	if !d.logger.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	c := r.Call
	attrs := make([]slog.Attr, 0, 14)
	attrs = append(attrs,
		slog.String("call", c.CallID),
		slog.String("source", r.Source),
		slog.String("outcome", string(c.Outcome)),
	)
	switch {
	case r.Withheld:
		attrs = append(attrs, slog.String("caller", "withheld"))
	case c.Phone != "":
		attrs = append(attrs, slog.String("caller", screenpop.MaskPhone(c.Phone)))
	}
	// The company's own number (never masked: it is not the caller's),
	// and the name lines: gives it.
	if c.DID != "" {
		attrs = append(attrs, slog.String("did", c.DID))
	}
	if r.Line != "" {
		attrs = append(attrs, slog.String("line", r.Line))
	}
	attrs = append(attrs, slog.Int("rung", len(r.Rung)))
	if r.AnsweredBy != "" {
		attrs = append(attrs,
			slog.String("answered_by", r.AnsweredBy),
			slog.Float64("ring_to_answer", sinceRing(c.At, r.AnsweredAt)))
	}
	if !r.EndedAt.IsZero() {
		attrs = append(attrs, slog.Float64("ring_to_end", sinceRing(c.At, r.EndedAt)))
	}
	if !r.PoppedAt.IsZero() {
		attrs = append(attrs, slog.Float64("ring_to_pop", sinceRing(c.At, r.PoppedAt)))
	}
	if r.AnsweredBy != "" {
		// Sent to the answering agent's page before the answer. Whether
		// the page painted it in time, the page's acknowledgement says:
		// that is screenpop_calls_answered_popped_total (floor).
		attrs = append(attrs, slog.Bool("pop_sent_before_answer", r.PoppedBeforeAnswer))
	}
	if len(r.Transfers) > 0 {
		attrs = append(attrs, slog.Int("transfers", len(r.Transfers)))
	}
	d.logger.LogAttrs(context.Background(), slog.LevelInfo, "call ended", attrs...)
}

// sinceRing is the seconds from ring to t, 0 when either is unknown or t
// comes first (the PBX's and the daemon's clocks disagree).
func sinceRing(ring, t time.Time) float64 {
	if ring.IsZero() || t.IsZero() || t.Before(ring) {
		return 0
	}
	return t.Sub(ring).Seconds()
}
