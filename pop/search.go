package pop

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/history"
	"github.com/screenpop/screenpop/pop/popstate"
)

// CustomerDirectory finds the customer of a caller the directory did not
// know by number, and links the number to them, so that the caller's
// next call resolves. *aggregator.Aggregator implements it.
type CustomerDirectory interface {
	// SearchLimits says what a search takes; ok false: customers cannot be
	// searched for and linked here (no search configured, or no history
	// that keeps links). Asked at every hello: it follows a reload.
	SearchLimits() (limits screenpop.SearchLimits, ok bool)
	// Search returns the customers matching text (a name, a customer id,
	// an e-mail address), bounded by ctx. An error wrapping
	// screenpop.ErrSearchText says in an agent's words what is wrong with
	// the text; one wrapping screenpop.ErrNoSearch that there is no
	// search here.
	Search(ctx context.Context, text string) (screenpop.SearchResult, error)
	// Link keeps that l.Phone belongs to l.CustomerID, writes who linked
	// it in the access log, and makes the next card of the number —
	// BuildFor of this call's, every later one — resolve by it.
	Link(ctx context.Context, l history.Link) error
}

// DefaultSearchesPerMinute bounds an agent's searches of the directory
// (DispatcherConfig.SearchesPerMinute): typing a name and correcting it
// twice is a few searches; a script walking the directory is many.
const DefaultSearchesPerMinute = 20

// searchBurst is how many searches an agent may make at once before the
// rate applies.
const searchBurst = 5

// searchLimiter is a token bucket per agent: searchBurst tokens, refilled
// at the configured rate. Agents who have not searched for a while are
// forgotten, so that it holds only those searching now.
type searchLimiter struct {
	mu      sync.Mutex
	buckets map[string]*searchBucket
	swept   time.Time
}

type searchBucket struct {
	tokens float64
	at     time.Time
}

// allow takes a token of agent's at now, or reports that there is none.
func (l *searchLimiter) allow(agent string, perMinute int, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	every := time.Minute / time.Duration(perMinute)
	full := time.Duration(searchBurst) * every // the time a bucket takes to fill
	if l.buckets == nil {
		l.buckets = map[string]*searchBucket{}
	}
	if now.Sub(l.swept) > full {
		for a, b := range l.buckets {
			if now.Sub(b.at) > full {
				delete(l.buckets, a)
			}
		}
		l.swept = now
	}
	b := l.buckets[agent]
	if b == nil {
		b = &searchBucket{tokens: searchBurst, at: now}
		l.buckets[agent] = b
	}
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens = min(searchBurst, b.tokens+float64(elapsed)/float64(every))
		b.at = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// searchLimits is what the hello tells the page of the directory's search;
// nil when there is none.
func (d *Dispatcher) searchLimits() *screenpop.SearchLimits {
	if d.cfg.Directory == nil || d.history == nil {
		return nil
	}
	limits, ok := d.cfg.Directory.SearchLimits()
	if !ok {
		return nil
	}
	return &limits
}

// Search implements Requests: an agent holding the live pop of an unknown
// caller (who sent a number) may search the directory for them, a few
// times a minute; the agent's tabs get what it found, which is what the
// number may be linked to. The text is never logged.
func (d *Dispatcher) Search(ctx context.Context, agent Agent, callID, text, ref string) error {
	if d.cfg.Directory == nil || d.history == nil {
		return &RequestError{Code: popstate.CodeUnavailable, Message: "the customer directory cannot be searched on this server"}
	}
	d.mu.Lock()
	err := d.state.MaySearch(agent.ID, callID)
	d.mu.Unlock()
	if err != nil {
		return err
	}
	if !d.searches.allow(agent.ID, cmp.Or(max(d.cfg.SearchesPerMinute, 0), DefaultSearchesPerMinute), d.now()) {
		d.logger.Debug("agent searched the directory too often; search refused", "agent", agent.ID, "call", callID)
		return &RequestError{Code: popstate.CodeRateLimited, Message: "too many searches: wait a moment, then search again"}
	}
	res, err := d.cfg.Directory.Search(ctx, text)
	switch {
	case errors.Is(err, screenpop.ErrSearchText):
		_, why, _ := strings.Cut(err.Error(), ": ")
		return &RequestError{Code: popstate.CodeBadRequest, Message: why}
	case errors.Is(err, screenpop.ErrNoSearch):
		return &RequestError{Code: popstate.CodeUnavailable, Message: "the customer directory cannot be searched on this server"}
	case err != nil:
		return &RequestError{Code: popstate.CodeUnavailable, Message: err.Error() + "; try again"}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	out, err := d.state.Found(agent.ID, callID, res, ref, d.now())
	if err != nil {
		return err // the call ended, went elsewhere or resolved meanwhile
	}
	d.execute(out)
	return nil
}

// Link implements Requests: an agent holding the live pop of an unknown
// caller links the number to a customer its last search found. The link
// is kept (the history, with who linked what in its access log) before
// the card is built for the customer: every holder gets it, and every
// later call of the number resolves to them.
func (d *Dispatcher) Link(ctx context.Context, agent Agent, callID, customerID, ref string) error {
	if d.cfg.Directory == nil || d.history == nil {
		return &RequestError{Code: popstate.CodeUnavailable, Message: "numbers cannot be linked to customers on this server"}
	}
	d.mu.Lock()
	phone, err := d.state.MayLink(agent.ID, callID, customerID)
	d.mu.Unlock()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, d.cfg.RecordTimeout, fmt.Errorf("link the number of call %s: no answer in %s", callID, d.cfg.RecordTimeout))
	defer cancel()
	name := d.agentName(agent)
	err = d.cfg.Directory.Link(ctx, history.Link{Phone: phone, CustomerID: customerID, Agent: agent.ID, AgentName: name, CallID: callID, At: d.now()})
	if err != nil {
		d.logger.Error("cannot link a number to a customer", "call", callID, "agent", agent.ID, "customer", customerID, "phone", screenpop.MaskPhone(phone), "err", err)
		if errors.Is(err, screenpop.ErrNoSearch) {
			return &RequestError{Code: popstate.CodeUnavailable, Message: "numbers cannot be linked to customers on this server"}
		}
		return &RequestError{Code: popstate.CodeUnavailable, Message: "the link could not be saved; please try again"}
	}
	d.logger.Info("number linked to a customer", "call", callID, "agent", agent.ID, "customer", customerID, "phone", screenpop.MaskPhone(phone))
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return &RequestError{Code: popstate.CodeUnavailable, Message: "the server is shutting down; the link is kept"}
	}
	out, err := d.state.Linked(AgentRef{ID: agent.ID, Name: name}, callID, customerID, d.now())
	if err != nil {
		// Kept, but this call's card is not built for them: it ended,
		// or another agent's link won.
		return err
	}
	d.execute(out)
	return nil
}
