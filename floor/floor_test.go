package floor

import (
	"context"
	"sync"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/history"
)

// fakeStates is the history's wrap-up state: the agents in pending are
// wrapping up that call.
type fakeStates struct {
	mu      sync.Mutex
	pending map[string]string
	asked   map[string]int
}

func (f *fakeStates) AgentState(_ context.Context, agent string, _ time.Time) (history.AgentState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked[agent]++
	if c, ok := f.pending[agent]; ok {
		return history.AgentState{CallID: c}, nil
	}
	return history.AgentState{Ready: true}, nil
}

func (f *fakeStates) set(agent, call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if call == "" {
		delete(f.pending, agent)
	} else {
		f.pending[agent] = call
	}
}

// An agent whose call ended is in wrap-up while the history says so, and
// ready again once it says they chose the disposition; an agent who only
// rang is never asked about.
func TestFloorWrapUps(t *testing.T) {
	states := &fakeStates{pending: map[string]string{}, asked: map[string]int{}}
	f := startFloor(t, "a", nil, func(o *Options) { o.WrapUps = states })
	f.pages.set("alice", true)
	now := time.Now()
	f.ObserveCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "pbx/1", Source: "pbx", At: now, Agents: []string{"alice", "bob"}}, now)
	f.ObserveCall(screenpop.CallEvent{Kind: screenpop.EventAnswered, CallID: "pbx/1", Source: "pbx", At: now, Agent: "alice"}, now)
	states.set("alice", "pbx/1")
	f.ObserveCall(screenpop.CallEvent{Kind: screenpop.EventEnded, CallID: "pbx/1", Source: "pbx", At: now, Outcome: screenpop.OutcomeAnswered}, now)
	state := func(v View, id string) string {
		for _, a := range v.Agents {
			if a.ID == id {
				return a.State + " " + a.CallID
			}
		}
		return ""
	}
	waitView(t, f.Floor, "alice in wrap-up", func(v View) bool { return state(v, "alice") == ShowWrapUp+" pbx/1" })
	if got := value(f.metrics.agents.WithLabelValues(StateWrapUp)); got != 1 {
		t.Errorf("agents in wrap-up = %v, want 1", got)
	}
	states.set("alice", "")
	waitView(t, f.Floor, "alice ready again", func(v View) bool { return state(v, "alice") == ShowReady+" " })
	states.mu.Lock()
	defer states.mu.Unlock()
	if states.asked["bob"] != 0 {
		t.Errorf("bob, who only rang, was asked about %d times", states.asked["bob"])
	}
}
