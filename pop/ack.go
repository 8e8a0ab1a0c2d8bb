package pop

import (
	"slices"
	"time"
)

// Stages of a pop a page acknowledges (Request.Stage of RequestShown).
const (
	// StageShown: the pop is painted on the agent's screen (the page's
	// first animation frame after it rendered the card).
	StageShown = "shown"
	// StageComplete: painted with every section filled, none still
	// loading. A card sent whole is complete when it is shown.
	StageComplete = "complete"
)

// AckSink hears what agents' pages acknowledge of their pops: painted
// (StageShown), painted with every section filled (StageComplete). The Hub
// calls it with the agent it authenticated, never an id the browser wrote,
// and the daemon's time the acknowledgement arrived: the browser's clock
// measures nothing. It is called from the connection's read loop and must
// not block. Whether the agent holds the call, and whether an
// acknowledgement is a repeat, is the sink's to decide (floor.Floor).
type AckSink interface {
	Shown(agentID, callID, stage string, at time.Time)
}

type ackBox struct{ AckSink }

// SetAcks makes s hear the pages' shown acknowledgements; until it is set
// they are dropped.
func (h *Hub) SetAcks(s AckSink) { h.acks.Store(&ackBox{s}) }

// shown hands a page's acknowledgement to the AckSink. A malformed one is
// dropped without an answer: the page never waits for one.
func (h *Hub) shown(c *conn, req Request) {
	if req.CallID == "" || (req.Stage != StageShown && req.Stage != StageComplete) {
		h.logger.Debug("malformed shown acknowledgement dropped", "agent", c.agent.ID, "conn", c.id, "stage", req.Stage)
		return
	}
	if b := h.acks.Load(); b != nil {
		b.Shown(c.agent.ID, req.CallID, req.Stage, time.Now())
	}
}

// Connected reports whether agentID has an agent page open on this
// daemon. It answers from memory.
func (h *Hub) Connected(agentID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.agents[agentID]
	return b != nil && len(b.conns) > 0
}

// ConnectedAgents lists the agents with an agent page open on this
// daemon, sorted.
func (h *Hub) ConnectedAgents() []string {
	h.mu.Lock()
	out := make([]string, 0, len(h.agents))
	for id, b := range h.agents {
		if len(b.conns) > 0 {
			out = append(out, id)
		}
	}
	h.mu.Unlock()
	slices.Sort(out)
	return out
}
