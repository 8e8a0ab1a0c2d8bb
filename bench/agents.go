package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tidwall/gjson"
	"golang.org/x/sync/errgroup"
)

// recorder takes every message the agents' sockets receive and keeps, per
// call and ringing agent, when the ring was sent and when (and how often)
// the pop arrived.
type recorder struct {
	base time.Time // times are kept as offsets from it (monotonic)

	mu    sync.Mutex
	calls map[string]*callRecord // by the call_id agents see
	types map[string]int         // messages received, by type
	other int                    // pops for no call of the run (earlier runs' warm-up)
	keep  bool                   // keep every message in kept (the calibration)
	kept  [][]byte
}

// callRecord is one call of a run.
type callRecord struct {
	agents []int          // indexes of the agents it rings
	ringAt []atomic.Int64 // per agent: when the event that rings it was sent (ns from base); 0 not yet
	popAt  []int64        // per agent: first pop (ns from base); 0 none
	doneAt []int64        // per agent: when the card was complete on the agent's socket; 0 not yet
	// pending are, per agent, the parts of a card sent while it was built
	// that have not come yet: the names of sections still loading, and
	// historyPart while the earlier calls are.
	pending [][]string
	pops    []int  // per agent: pops received
	notOK   []bool // per agent: a section of the card settled other than ok (timeout, error, ...)
}

// historyPart stands for a card's earlier calls among a card's pending
// parts; no section is named so (section names are lower-case).
const historyPart = "#history"

func newRecorder() *recorder {
	return &recorder{base: time.Now(), calls: map[string]*callRecord{}, types: map[string]int{}}
}

func (r *recorder) now() int64 { return int64(time.Since(r.base)) }

// expect registers a call before it rings.
func (r *recorder) expect(callID string, agents []int) *callRecord {
	n := len(agents)
	c := &callRecord{agents: agents, ringAt: make([]atomic.Int64, n), popAt: make([]int64, n), doneAt: make([]int64, n),
		pending: make([][]string, n), pops: make([]int, n), notOK: make([]bool, n)}
	r.mu.Lock()
	r.calls[callID] = c
	r.mu.Unlock()
	return c
}

// rang notes that the event ringing every agent of c was sent now.
func (c *callRecord) rang(at int64) {
	for i := range c.ringAt {
		c.ringAt[i].Store(at)
	}
}

// envelope is what the recorder reads of a message.
type envelope struct {
	Type   string          `json:"type"`
	CallID string          `json:"call_id"`
	Data   json.RawMessage `json:"data"`
}

// cardParts is what the recorder reads of a card: which parts are still
// to come.
type cardParts struct {
	Card struct {
		Sections       []sectionPart
		HistoryLoading bool
	}
	Section sectionPart
}

type sectionPart struct{ Name, Status string }

// settledNotOK says whether a section the message settles did not answer.
func (p *cardParts) settledNotOK(typ string) bool {
	if typ == "section" {
		return p.Section.Status != "ok"
	}
	for _, s := range p.Card.Sections {
		if s.Status != "ok" && s.Status != "loading" {
			return true
		}
	}
	return false
}

func (p *cardParts) pending() []string {
	var out []string
	for _, s := range p.Card.Sections {
		if s.Status == "loading" {
			out = append(out, s.Name)
		}
	}
	if p.Card.HistoryLoading {
		out = append(out, historyPart)
	}
	return out
}

// readMessage reads what the recorder needs of a message: its type and
// call, and of a card or section which parts it settles or leaves to come.
// It reads with gjson, without decoding the message into structs: the
// harness shares the cores with the processes it measures, and decoding
// every 4 KB pop twice with encoding/json was a tenth of its CPU.
func readMessage(data []byte) (env envelope, parts cardParts) {
	if !gjson.ValidBytes(data) {
		env.Type = "undecodable"
		return env, parts
	}
	r := gjson.GetManyBytes(data, "type", "call_id", "data.card", "data.section")
	env.Type, env.CallID = r[0].String(), r[1].String()
	switch env.Type {
	case "pop", "card", "section":
	default:
		return env, parts
	}
	if card := r[2]; card.IsObject() {
		card.Get("sections").ForEach(func(_, s gjson.Result) bool {
			parts.Card.Sections = append(parts.Card.Sections, sectionPart{Name: s.Get("name").String(), Status: s.Get("status").String()})
			return true
		})
		parts.Card.HistoryLoading = card.Get("history_loading").Bool()
	}
	if sec := r[3]; sec.IsObject() {
		parts.Section = sectionPart{Name: sec.Get("name").String(), Status: sec.Get("status").String()}
	}
	return env, parts
}

// message takes one message agent received at (ns from base).
func (r *recorder) message(agent int, data []byte, at int64) {
	env, parts := readMessage(data)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.types[env.Type]++
	if r.keep {
		r.kept = append(r.kept, slices.Clone(data))
	}
	c := r.calls[env.CallID]
	if c == nil {
		if env.Type == "pop" {
			r.other++ // a pop of no call of the run (an earlier run's)
		}
		return
	}
	i := slices.Index(c.agents, agent)
	if i < 0 {
		if env.Type == "pop" {
			r.other++ // a pop for an agent the call does not ring
		}
		return
	}
	switch env.Type {
	case "pop", "card", "section":
		if parts.settledNotOK(env.Type) {
			c.notOK[i] = true
		}
	}
	switch env.Type {
	case "pop":
		c.pops[i]++
		if c.pops[i] > 1 {
			return
		}
		c.popAt[i] = at
		c.pending[i] = parts.pending()
	case "card":
		c.pending[i] = parts.pending()
	case "section":
		c.pending[i] = slices.DeleteFunc(c.pending[i], func(n string) bool { return n == parts.Section.Name })
	case "history":
		c.pending[i] = slices.DeleteFunc(c.pending[i], func(n string) bool { return n == historyPart })
	default:
		return
	}
	if c.popAt[i] > 0 && c.doneAt[i] == 0 && len(c.pending[i]) == 0 {
		c.doneAt[i] = at
	}
}

// outcome is what the calls of a run came to.
type outcome struct {
	latencies  []time.Duration // ring → pop
	complete   []time.Duration // ring → the card complete on the socket
	rung       int             // calls whose ring was sent
	expected   int             // pops expected
	lost       int             // expected pops that never arrived
	incomplete int             // pops whose card never completed
	notOK      int             // cards with a section that did not answer
	duplicated int             // pops beyond the first for one call and agent
	unexpected int
	types      map[string]int
}

// tally counts the calls in ids (those of the measurement window).
func (r *recorder) tally(ids []string) outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := outcome{types: maps.Clone(r.types), unexpected: r.other}
	for _, id := range ids {
		c := r.calls[id]
		if c.ringAt[0].Load() == 0 {
			continue // never rung: the run was stopped before
		}
		o.rung++
		for i := range c.agents {
			o.expected++
			switch n := c.pops[i]; {
			case n == 0:
				o.lost++
				continue
			case n > 1:
				o.duplicated += n - 1
			}
			ring := c.ringAt[i].Load()
			if ring == 0 {
				continue
			}
			o.latencies = append(o.latencies, time.Duration(c.popAt[i]-ring))
			if c.notOK[i] {
				o.notOK++
			}
			if c.doneAt[i] > 0 {
				o.complete = append(o.complete, time.Duration(c.doneAt[i]-ring))
			} else {
				o.incomplete++
			}
		}
	}
	return o
}

// missing is how many cards of ids have not arrived complete yet.
func (r *recorder) missing(ids []string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, id := range ids {
		c := r.calls[id]
		for i := range c.agents {
			if c.doneAt[i] == 0 {
				n++
			}
		}
	}
	return n
}

// waitPops waits until every card of ids has arrived complete or ctx
// ends; it returns how many are still missing.
func (r *recorder) waitPops(ctx context.Context, ids []string) int {
	for {
		n := r.missing(ids)
		if n == 0 {
			return 0
		}
		select {
		case <-ctx.Done():
			return n
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// agentConns are the agents' WebSocket clients of one run.
type agentConns struct {
	conns    []*websocket.Conn
	received atomic.Int64 // messages, all agents
	readers  sync.WaitGroup
}

// dialAgents opens one socket per agent k (0..n-1) to url(k) with header(k),
// parallel at a time, and reads each into rec (nil: read and drop).
// bufSize is the client's read and write buffer size.
func dialAgents(ctx context.Context, n, parallel, bufSize int, url func(k int) string, header func(k int) http.Header, rec *recorder) (*agentConns, error) {
	a := &agentConns{conns: make([]*websocket.Conn, n)}
	d := newDialer(bufSize)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for k := range n {
		g.Go(func() error {
			c, resp, err := d.DialContext(gctx, url(k), header(k))
			if err != nil {
				if resp != nil {
					return fmt.Errorf("agent socket %d: %w (HTTP %s)", k, err, resp.Status)
				}
				return fmt.Errorf("agent socket %d: %w", k, err)
			}
			a.conns[k] = c
			a.readers.Add(1)
			go a.read(k, c, rec)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

// newDialer is the agents' WebSocket dialer, with read and write buffers
// of bufSize bytes.
func newDialer(bufSize int) *websocket.Dialer {
	return &websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: bufSize, WriteBufferSize: bufSize}
}

func (a *agentConns) read(k int, c *websocket.Conn, rec *recorder) {
	defer a.readers.Done()
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		a.received.Add(1)
		if rec != nil {
			rec.message(k, data, rec.now())
		}
	}
}

// waitReceived waits until the agents received at least n messages in all
// (each socket's hello and snapshot from the daemon) or ctx ends.
func (a *agentConns) waitReceived(ctx context.Context, n int64) error {
	for a.received.Load() < n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the agents received %d of %d messages: %w", a.received.Load(), n, context.Cause(ctx))
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// close closes every socket and waits for the readers.
func (a *agentConns) close() {
	for _, c := range a.conns {
		if c != nil {
			_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			_ = c.Close()
		}
	}
	a.readers.Wait()
}
