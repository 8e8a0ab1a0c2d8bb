package redisbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/screenpop/screenpop/pop"
)

// Browser requests (select, note) about a call only another daemon's
// dispatcher knows travel over Redis pub/sub: the request on
// <prefix>requests, heard by every daemon; the answers on
// <prefix>replies:<daemon>, heard by the daemon that asked. A daemon whose
// dispatcher knows the call claims the request (SET NX, so that of two
// daemons watching the same PBX one only answers, and a note is stored
// once), says so at once, handles it as a local request and sends the
// result. Pub/sub loses what is published while a daemon is disconnected:
// the asking daemon then hears no claim and answers unknown_call, as it
// would without forwarding.

var _ pop.RequestForwarder = (*Bus)(nil)

// forwarded is a request on <prefix>requests.
type forwarded struct {
	ID    string      `json:"id"`
	From  string      `json:"from"` // the asking daemon: where answers go
	Agent pop.Agent   `json:"agent"`
	Req   pop.Request `json:"req"`
	// Deadline (Unix ms, asking daemon's clock) after which nobody waits
	// for the answer any more.
	Deadline int64 `json:"deadline"`
}

// forwardReply is an answer on <prefix>replies:<daemon>.
type forwardReply struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"`           // replyClaimed, then replyDone
	Code    string `json:"code,omitempty"` // replyDone: the RequestError's code, "" when accepted
	Message string `json:"message,omitempty"`
}

const (
	replyClaimed = "claimed"
	replyDone    = "done"
)

type localBox struct{ pop.LocalRequests }

func (b *Bus) requestsChannel() string { return b.cfg.KeyPrefix + "requests" }
func (b *Bus) repliesChannel(daemon string) string {
	return b.cfg.KeyPrefix + "replies:" + daemon
}

// ServeRequests implements pop.RequestForwarder; the Hub calls it from
// SetShared.
func (b *Bus) ServeRequests(local pop.LocalRequests) { b.localReqs.Store(&localBox{local}) }

func (b *Bus) localRequests() pop.LocalRequests {
	if l := b.localReqs.Load(); l != nil {
		return l.LocalRequests
	}
	return nil
}

func unknownCall() error {
	return &pop.RequestError{Code: "unknown_call", Message: "this call is not known (any more)"}
}

// Forward implements pop.RequestForwarder.
func (b *Bus) Forward(ctx context.Context, agent pop.Agent, req pop.Request) error {
	if !b.serving() || !b.listening.Load() {
		// No daemon can be reached, and none could answer us.
		b.metrics.forwarded.WithLabelValues(forwardUnclaimed).Inc()
		return unknownCall()
	}
	id := make([]byte, 16)
	rand.Read(id)
	f := forwarded{ID: hex.EncodeToString(id), From: b.daemonID, Agent: agent, Req: req}
	if dl, ok := ctx.Deadline(); ok {
		f.Deadline = dl.UnixMilli()
	} else {
		f.Deadline = time.Now().Add(b.cfg.OpTimeout + b.cfg.ForwardTimeout).UnixMilli()
	}
	payload, err := json.Marshal(f)
	if err != nil {
		return &pop.RequestError{Code: "bad_request", Message: "the request cannot be encoded"}
	}
	answers := make(chan forwardReply, 2)
	b.pmu.Lock()
	b.pendingFw[f.ID] = answers
	b.pmu.Unlock()
	defer func() {
		b.pmu.Lock()
		delete(b.pendingFw, f.ID)
		b.pmu.Unlock()
	}()

	pctx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
	// The request may hold a note's text: sealed like everything the bus
	// puts into Redis.
	n, err := b.publishRequest(pctx, b.seal(payload, b.requestsChannel()))
	cancel()
	if err != nil {
		b.metrics.errors.WithLabelValues(opForward).Inc()
		b.metrics.forwarded.WithLabelValues(forwardFailed).Inc()
		b.logger.Warn("cannot forward a request to the other daemons", "request", req.Type, "call", req.CallID, "agent", agent.ID, "err", err)
		return &pop.RequestError{Code: "unavailable", Message: "the other servers cannot be reached; try again"}
	}
	if n <= 1 {
		// Only this daemon listens: nobody else can have the call.
		b.metrics.forwarded.WithLabelValues(forwardUnclaimed).Inc()
		return unknownCall()
	}

	claim := time.NewTimer(b.cfg.ForwardTimeout)
	defer claim.Stop()
	claimed := false
	for {
		select {
		case a := <-answers:
			if a.Kind == replyClaimed {
				claimed = true
				continue
			}
			b.metrics.forwarded.WithLabelValues(forwardClaimed).Inc()
			if a.Code == "" {
				return nil
			}
			return &pop.RequestError{Code: a.Code, Message: a.Message}
		case <-claim.C:
			if !claimed {
				b.metrics.forwarded.WithLabelValues(forwardUnclaimed).Inc()
				return unknownCall()
			}
		case <-ctx.Done():
			b.metrics.forwarded.WithLabelValues(forwardFailed).Inc()
			b.logger.Warn("forwarded request not answered in time", "request", req.Type, "call", req.CallID, "agent", agent.ID, "claimed", claimed)
			return &pop.RequestError{Code: "unavailable", Message: "the server that has this call did not answer; try again"}
		}
	}
}

// publishRequest publishes a request on <prefix>requests and returns how
// many daemons (this one included) heard it. A Redis Cluster passes a
// PUBLISH to the subscribers of every node but counts only those of the
// node it was sent to: there it goes to the node every daemon subscribes
// on, the master of the channel name's slot (where go-redis's Subscribe
// connects).
func (b *Bus) publishRequest(ctx context.Context, payload []byte) (int64, error) {
	var c redis.Cmdable = b.client
	if b.cluster != nil {
		node, err := b.cluster.MasterForKey(ctx, b.requestsChannel())
		if err != nil {
			return 0, err
		}
		c = node
	}
	return c.Publish(ctx, b.requestsChannel(), payload).Result()
}

// requestLoop listens for requests of other daemons and for the answers to
// this daemon's, until ctx ends. go-redis resubscribes by itself after a
// lost connection.
func (b *Bus) requestLoop(ctx context.Context) {
	ps := b.client.Subscribe(ctx, b.requestsChannel(), b.repliesChannel(b.daemonID))
	defer ps.Close()
	for ctx.Err() == nil {
		// Forward counts on the subscription being there: wait for its
		// confirmation (retrying while Redis is down).
		if _, err := ps.Receive(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			b.metrics.errors.WithLabelValues(opServe).Inc()
			select {
			case <-ctx.Done():
				return
			case <-time.After(b.cfg.HealthInterval):
			}
			continue
		}
		break
	}
	b.listening.Store(true)
	defer b.listening.Store(false)
	ch := ps.Channel()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			if m.Channel == b.requestsChannel() {
				b.serve(ctx, &wg, m.Payload)
				continue
			}
			var a forwardReply
			if json.Unmarshal([]byte(m.Payload), &a) != nil {
				continue
			}
			b.pmu.Lock()
			answers := b.pendingFw[a.ID]
			b.pmu.Unlock()
			if answers != nil {
				select {
				case answers <- a:
				default:
				}
			}
		}
	}
}

// serve claims and answers another daemon's request when the local
// dispatcher knows its call. The handling runs on its own goroutine: a note
// being saved must not hold up the answers this daemon waits for.
func (b *Bus) serve(ctx context.Context, wg *sync.WaitGroup, payload string) {
	raw, err := b.unseal([]byte(payload), b.requestsChannel())
	if err != nil {
		b.metrics.errors.WithLabelValues(opUnsealing).Inc()
		return
	}
	var f forwarded
	if err := json.Unmarshal(raw, &f); err != nil || f.ID == "" || f.From == "" {
		return
	}
	if f.From == b.daemonID {
		return
	}
	deadline := time.UnixMilli(f.Deadline)
	if !time.Now().Before(deadline) {
		return
	}
	local := b.localRequests()
	if local == nil || !local.Knows(f.Req.CallID) {
		return
	}
	wg.Go(func() {
		rctx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		octx, ocancel := context.WithTimeout(rctx, b.cfg.OpTimeout)
		won, err := b.client.SetNX(octx, b.cfg.KeyPrefix+"fwd:"+f.ID, b.daemonID, time.Until(deadline)+time.Minute).Result()
		ocancel()
		if err != nil {
			b.metrics.errors.WithLabelValues(opServe).Inc()
			return
		}
		if !won {
			return // another daemon watching the same PBX answers it
		}
		b.answer(rctx, f, forwardReply{ID: f.ID, Kind: replyClaimed})
		res := forwardReply{ID: f.ID, Kind: replyDone}
		if err := local.Handle(rctx, f.Agent, f.Req); err != nil {
			var re *pop.RequestError
			if !errors.As(err, &re) {
				re = &pop.RequestError{Code: "unavailable", Message: "the request failed"}
			}
			res.Code, res.Message = re.Code, re.Message
		}
		b.metrics.served.Inc()
		b.logger.Debug("request of another daemon answered", "request", f.Req.Type, "call", f.Req.CallID, "agent", f.Agent.ID, "code", res.Code)
		// The answer must go out even when handling used up the deadline:
		// the asker then stops waiting at once.
		b.answer(context.WithoutCancel(rctx), f, res)
	})
}

func (b *Bus) answer(ctx context.Context, f forwarded, r forwardReply) {
	payload, err := json.Marshal(r)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
	defer cancel()
	if err := b.client.Publish(ctx, b.repliesChannel(f.From), payload).Err(); err != nil {
		b.metrics.errors.WithLabelValues(opServe).Inc()
		b.logger.Warn("cannot answer another daemon's request", "request", f.Req.Type, "call", f.Req.CallID, "err", err)
	}
}
