package pop

import (
	"context"
	"time"
)

// SharedStream is a message sequence per agent kept outside this process
// (Redis Streams, in pop/redisbus), so that a browser connected to any
// daemon gets the pops of calls any daemon saw, and can resume on another
// daemon than the one it lost. When a SharedStream is set, the Hub asks it
// what a connecting browser must see first; while it fails, the Hub falls
// back to its own replay ring and the local dispatcher's snapshot.
type SharedStream interface {
	// Open is called when a browser of agent connects; since is the last seq
	// the browser saw (resume false: it saw nothing). It returns what the
	// browser must get first (the messages after since, or a snapshot) and
	// the seq that covers: the Hub then forwards only DeliverNumbered
	// messages above it. From Open on, the stream delivers the agent's new
	// messages through Hub.DeliverNumbered until Close, even when Open
	// itself failed (the stream catches up once it is back).
	Open(ctx context.Context, agent Agent, since uint64, resume bool) (initial []Encoded, upTo uint64, err error)
	// Close is called once for every Open, when that browser's connection
	// is over; the stream stops delivering the agent's messages here when
	// its last connection is gone.
	Close(agentID string)
}

// RequestForwarder is a SharedStream that also carries browser requests
// between daemons. The dispatcher that knows a call is the one of the
// daemon that saw it from the PBX; a browser connected to another daemon
// would otherwise get unknown_call for its select or note.
type RequestForwarder interface {
	// Forward hands req, made by agent as the Hub authenticated it, to the
	// daemon whose dispatcher knows req.CallID. nil: that daemon accepted
	// it, and its answer (card, note_saved) comes as a message through the
	// stream. A *RequestError: that daemon refused it, or unknown_call when
	// no daemon claimed it in time. ctx bounds the whole request.
	Forward(ctx context.Context, agent Agent, req Request) error
	// ServeRequests gives the stream what answers the requests other
	// daemons forward. SetShared passes the Hub's own Requests.
	ServeRequests(local LocalRequests)
}

// LocalRequests answers, on the daemon that knows a call, the requests
// another daemon forwarded.
type LocalRequests interface {
	// Knows reports whether this daemon's dispatcher follows callID (live,
	// or ended recently enough for notes): only such a daemon claims a
	// forwarded request.
	Knows(callID string) bool
	// Handle answers req of agent exactly as if the agent's browser were
	// connected here, with the same checks.
	Handle(ctx context.Context, agent Agent, req Request) error
}

type sharedBox struct{ SharedStream }

// SetShared makes the Hub resume and snapshot browsers from s. Set it
// before serving. When s is also a RequestForwarder, requests about calls
// the local dispatcher does not know go through it, and the requests other
// daemons forward are answered by the local dispatcher.
func (h *Hub) SetShared(s SharedStream) {
	h.shared.Store(&sharedBox{s})
	if f, ok := s.(RequestForwarder); ok {
		f.ServeRequests(hubRequests{h})
	}
}

// hubRequests answers forwarded requests with whatever SetRequests set,
// looked up per request: SetShared usually comes first.
type hubRequests struct{ h *Hub }

var _ LocalRequests = hubRequests{}

// callKnower is the part of the Dispatcher that says which calls it has.
type callKnower interface {
	Knows(callID string) bool
}

func (r hubRequests) Knows(callID string) bool {
	k, ok := r.h.requests().(callKnower)
	return ok && k.Knows(callID)
}

func (r hubRequests) Handle(ctx context.Context, agent Agent, req Request) error {
	return r.h.handle(ctx, agent, req)
}

func (h *Hub) sharedStream() SharedStream {
	if b := h.shared.Load(); b != nil {
		return b.SharedStream
	}
	return nil
}

// sharedOpenTimeout bounds SharedStream.Open: a browser waiting longer
// would rather get the local snapshot.
const sharedOpenTimeout = 2 * time.Second

// DeliverNumbered is Deliver for a message numbered by a SharedStream: its
// Seq is the stream's, not the Hub's. Connections opened after the message
// was covered by their initial messages skip it, so a browser sees each
// message once. It never blocks.
func (h *Hub) DeliverNumbered(agentID string, m Encoded) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log.Add(agentID, m.Seq, m, h.now())
	h.logChanged()
	if b := h.agents[agentID]; b != nil && len(b.conns) > 0 {
		h.countSent(m.Type) // as Deliver: only when a page takes it
		for c := range b.conns {
			if m.Seq > c.after {
				h.enqueue(b, c, m)
			}
		}
	}
}

// attachShared registers c with what the shared stream gave, plus what the
// stream delivered between Open and now.
func (h *Hub) attachShared(c *conn, initial []Encoded, upTo uint64) bool {
	for _, m := range initial {
		h.countSent(m.Type)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	b := h.box(c.agent.ID)
	b.name = c.agent.Name
	now := h.now()
	for _, m := range h.log.After(c.agent.ID, upTo, now) {
		initial = append(initial, m)
		upTo = m.Seq
	}
	c.initial, c.after = initial, upTo
	// A message the Hub numbers itself (Redis down) must still come after
	// what this browser has.
	h.log.Raise(c.agent.ID, upTo, now)
	h.logChanged()
	h.attach(b, c)
	return true
}

// LiveCalls is what a SharedStream asks of this daemon's dispatcher, the
// source of truth for the calls it follows: what to put back into the
// shared store after the store lost its data (a Redis restarted empty, a
// replica promoted without the last writes), and what a snapshot served
// from the store must say of those calls. The Hub passes it on with
// LocalRequests (hubRequests) when its Requests implement it, as
// *Dispatcher does.
type LiveCalls interface {
	// LivePops returns the pops of every agent who holds one, as each
	// agent's snapshot lists them (oldest call first, cut to the agent's
	// roles).
	LivePops() map[string][]PopView
	// Pops is agentID's snapshot. What it says of the calls the
	// dispatcher knows (LocalRequests.Knows: live, or ended lately) wins
	// over the store.
	Pops(agentID string) []PopView
}

var _ LiveCalls = (*Dispatcher)(nil)

// LivePops implements LiveCalls.
func (d *Dispatcher) LivePops() map[string][]PopView {
	d.mu.Lock()
	defer d.mu.Unlock()
	holders := d.state.Holders()
	out := make(map[string][]PopView, len(holders))
	for _, a := range holders {
		out[a] = d.state.Snapshot(a)
	}
	return out
}

// Pops implements LiveCalls.
func (d *Dispatcher) Pops(agentID string) []PopView {
	var pops []PopView
	d.Snapshot(agentID, func(p []PopView) { pops = p })
	return pops
}

var _ LiveCalls = hubRequests{}

func (r hubRequests) LivePops() map[string][]PopView {
	if l, ok := r.h.requests().(LiveCalls); ok {
		return l.LivePops()
	}
	return nil
}

func (r hubRequests) Pops(agentID string) []PopView {
	if l, ok := r.h.requests().(LiveCalls); ok {
		return l.Pops(agentID)
	}
	return nil
}
