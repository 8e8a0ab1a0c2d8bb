package floor

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"time"
)

// DaemonView is what one daemon knows of the floor: the calls it follows,
// the agents whose pages are connected to it, the agents its history holds
// in wrap-up, and the health of what it talks to. Each daemon publishes
// its own to the shared Redis; the floor view merges them all.
type DaemonView struct {
	// ID names this run of the daemon (its name and a random part): two
	// daemons given one name still publish apart.
	ID      string       `json:"id"`
	Daemon  string       `json:"daemon"`
	At      time.Time    `json:"at"`
	Calls   []CallView   `json:"calls"`
	Pages   []string     `json:"pages"` // agents with a page connected here
	WrapUps []WrapUpView `json:"wrapups,omitempty"`
	Health  []Health     `json:"health"`
}

// WrapUpView is an agent in wrap-up after a call, as the history says.
type WrapUpView struct {
	Agent  string    `json:"agent"`
	CallID string    `json:"call_id"`
	Until  time.Time `json:"until,omitzero"` // the after-call time's end; zero without one
}

// Health kinds.
const (
	KindSource  = "source"  // a data source of the cards (its circuit breaker)
	KindPBX     = "pbx"     // a telephony source (an ARI connection)
	KindRedis   = "redis"   // the shared Redis
	KindHistory = "history" // the call history's store
)

// Health statuses, from good to bad.
const (
	HealthOK         = "ok"
	HealthRecovering = "recovering" // a source's breaker half-open: trying again
	HealthDegraded   = "degraded"   // failing lately, still asked
	HealthDown       = "down"       // not asked (breaker open), not connected
)

var healthOrder = map[string]int{HealthOK: 0, HealthRecovering: 1, HealthDegraded: 2, HealthDown: 3}

// Health is how one thing a daemon talks to is. Statuses only: the
// reasons (host names, errors) are for IT, in the logs and /readyz.
type Health struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Status string `json:"status"`
	// Daemons are those of a merged view of several that see it not ok.
	Daemons []string `json:"daemons,omitempty"`
}

// View is the floor as the supervisor page shows it.
type View struct {
	At                  time.Time `json:"at"`
	Day                 string    `json:"day"`
	ServiceLevelSeconds int       `json:"service_level_seconds"`
	// Waiting are the calls not answered yet (ringing, or queued with no
	// phone ringing), the longest waiting first.
	Waiting []WaitingCall `json:"waiting"`
	// LongestWait is the first's wait in seconds; 0 when none waits.
	LongestWait float64 `json:"longest_wait"`
	// OnCall counts the calls an agent has now.
	OnCall int    `json:"on_call"`
	Today  Counts `json:"today"`
	// ServiceLevel is the share of today's calls answered within the
	// service level of all answered or abandoned; nil before any.
	ServiceLevel *float64 `json:"service_level"`
	// PoppedShare is the share of today's answered calls whose pop was on
	// the answering agent's screen before the answer; nil before any.
	PoppedShare *float64    `json:"popped_share"`
	Agents      []AgentView `json:"agents"`
	Health      []Health    `json:"health"`
	// Daemons are those whose views are merged.
	Daemons []string `json:"daemons"`
	// Partial: the shared Redis did not answer; this daemon's own calls,
	// pages and counts only.
	Partial bool `json:"partial,omitempty"`
}

// WaitingCall is a call waiting for an answer.
type WaitingCall struct {
	ID     string     `json:"id"`
	Source string     `json:"source"`
	Line   string     `json:"line"`
	Caller string     `json:"caller,omitempty"` // masked
	Wait   float64    `json:"wait"`             // seconds
	Agents []AgentRef `json:"agents"`           // whose phones ring
	// Transfer: it waits because the agent who had it transfers it.
	Transfer bool `json:"transfer,omitempty"`
}

// AgentRef names an agent ringing for a call.
type AgentRef struct {
	ID        string `json:"id"`
	Name      string `json:"name,omitempty"`
	Connected bool   `json:"connected"`
}

// Agent display states (AgentView.State), one per agent, the first that
// applies.
const (
	ShowOnCall  = "on_call"
	ShowRinging = "ringing"
	ShowWrapUp  = "wrap_up"
	ShowReady   = "ready"   // a page connected, nothing else
	ShowOffline = "offline" // no page connected, nothing else
)

// AgentView is one agent on the floor.
type AgentView struct {
	ID        string `json:"id"`
	Name      string `json:"name,omitempty"`
	State     string `json:"state"`
	Connected bool   `json:"connected"`
	// CallID is the call they have, ring for or wrap up.
	CallID string `json:"call_id,omitempty"`
	// Since is when that state began, when known (ringing, on a call).
	Since time.Time `json:"since,omitzero"`
	// Until ends the wrap-up's after-call time.
	Until time.Time `json:"until,omitzero"`
}

// mergeInput is what a floor view is made of.
type mergeInput struct {
	now          time.Time
	day          string
	serviceLevel int
	views        []DaemonView // this daemon's first
	counts       Counts
	names        map[string]string // configured agents
	partial      bool
}

// merge makes the floor view out of every daemon's. A call two daemons
// follow (both watch its PBX) is one: the one further on wins (answered
// over ringing), and the first ring of the two. An agent is connected when
// a page of theirs is on any daemon.
func merge(in mergeInput) (View, gauges) {
	calls := map[string]CallView{}
	pages := map[string]bool{}
	wraps := map[string]WrapUpView{}
	health := map[string]*Health{}
	var daemons []string
	for _, v := range in.views {
		daemons = append(daemons, v.Daemon)
		for _, c := range v.Calls {
			old, ok := calls[c.ID]
			if !ok {
				calls[c.ID] = c
				continue
			}
			// The one further on: answered wins, then the one with more
			// agents ringing (a queue that moved on is reported by both).
			if (c.Agent != "" && old.Agent == "") || (c.Agent == old.Agent && len(c.Ringing) > len(old.Ringing)) {
				c.RingAt = minTime(c.RingAt, old.RingAt)
				calls[c.ID] = c
			} else {
				old.RingAt = minTime(c.RingAt, old.RingAt)
				calls[c.ID] = old
			}
		}
		for _, a := range v.Pages {
			pages[a] = true
		}
		for _, w := range v.WrapUps {
			if old, ok := wraps[w.Agent]; !ok || w.Until.After(old.Until) {
				wraps[w.Agent] = w
			}
		}
		for _, h := range v.Health {
			key := h.Kind + "\x00" + h.Name
			m := health[key]
			if m == nil {
				m = &Health{Kind: h.Kind, Name: h.Name, Status: h.Status}
				health[key] = m
			}
			if healthOrder[h.Status] > healthOrder[m.Status] {
				m.Status = h.Status
			}
			if h.Status != HealthOK {
				m.Daemons = append(m.Daemons, v.Daemon)
			}
		}
	}
	slices.Sort(daemons)

	name := func(id string) string { return in.names[id] }
	out := View{
		At: in.now, Day: in.day, ServiceLevelSeconds: in.serviceLevel,
		Waiting: []WaitingCall{}, Today: in.counts, Daemons: daemons, Partial: in.partial,
	}
	agents := map[string]*AgentView{}
	agent := func(id string) *AgentView {
		a := agents[id]
		if a == nil {
			a = &AgentView{ID: id, Name: name(id), Connected: pages[id]}
			agents[id] = a
		}
		return a
	}
	for id := range in.names {
		agent(id)
	}
	for id := range pages {
		agent(id)
	}
	ringingBy := map[string]int{}
	longestBy := map[string]float64{}
	ringing := map[string]bool{} // agents ringing for any call, whatever else they do
	for _, c := range sortedCalls(calls) {
		if c.Agent != "" {
			out.OnCall++
			a := agent(c.Agent)
			a.State, a.CallID, a.Since = ShowOnCall, c.ID, c.AnsweredAt
			if a.Since.IsZero() {
				a.Since = c.RingAt
			}
		} else {
			ringingBy[c.Source]++
			w := WaitingCall{ID: c.ID, Source: c.Source, Line: c.Line, Caller: c.Caller,
				Wait: max(in.now.Sub(c.RingAt), 0).Seconds(), Agents: []AgentRef{}, Transfer: !c.AnsweredAt.IsZero()}
			for _, r := range c.Ringing {
				w.Agents = append(w.Agents, AgentRef{ID: r, Name: name(r), Connected: pages[r]})
			}
			out.Waiting = append(out.Waiting, w)
			longestBy[c.Source] = max(longestBy[c.Source], w.Wait)
		}
		for _, r := range c.Ringing {
			a := agent(r)
			ringing[r] = true
			if a.State != ShowOnCall && a.State != ShowRinging {
				a.State, a.CallID, a.Since = ShowRinging, c.ID, c.RingAt
			}
		}
	}
	slices.SortStableFunc(out.Waiting, func(a, b WaitingCall) int { return cmp.Compare(b.Wait, a.Wait) })
	if len(out.Waiting) > 0 {
		out.LongestWait = out.Waiting[0].Wait
	}
	for id, w := range wraps {
		a := agent(id)
		if a.State == "" {
			a.State, a.CallID, a.Until = ShowWrapUp, w.CallID, w.Until
		}
	}
	g := gauges{agents: map[string]int{}, waiting: ringingBy, longest: longestBy}
	for _, s := range agentStates {
		g.agents[s] = 0
	}
	for _, a := range agents {
		if a.State == "" {
			a.State = ShowOffline
			if a.Connected {
				a.State = ShowReady
			}
		}
		if a.Connected {
			g.agents[StateSignedIn]++
		}
		switch a.State {
		case ShowOnCall:
			g.agents[StateOnCall]++
		case ShowWrapUp:
			g.agents[StateWrapUp]++
		}
		if ringing[a.ID] {
			g.agents[StateRinging]++
			if !a.Connected {
				g.agents[StateRingingBlind]++
			}
		}
		out.Agents = append(out.Agents, *a)
	}
	slices.SortFunc(out.Agents, func(a, b AgentView) int {
		return cmp.Or(strings.Compare(strings.ToLower(cmp.Or(a.Name, a.ID)), strings.ToLower(cmp.Or(b.Name, b.ID))), strings.Compare(a.ID, b.ID))
	})
	for _, key := range slices.Sorted(maps.Keys(health)) {
		h := health[key]
		slices.Sort(h.Daemons)
		h.Daemons = slices.Compact(h.Daemons)
		if len(daemons) < 2 {
			h.Daemons = nil // which daemon is no news when there is one
		}
		out.Health = append(out.Health, *h)
	}
	slices.SortStableFunc(out.Health, func(a, b Health) int { return cmp.Compare(kindOrder(a.Kind), kindOrder(b.Kind)) })
	if n := in.counts.Answered + in.counts.Abandoned; n > 0 {
		sl := float64(in.counts.InTime) / float64(n)
		out.ServiceLevel = &sl
	}
	if in.counts.Answered > 0 {
		share := float64(in.counts.Popped) / float64(in.counts.Answered)
		out.PoppedShare = &share
	}
	return out, g
}

// gauges are what a floor view sets of the metrics: agents by state,
// calls waiting by source.
type gauges struct {
	agents  map[string]int
	waiting map[string]int
	longest map[string]float64 // by source: the longest wait of a call ringing now, in seconds
}

func kindOrder(kind string) int {
	return slices.Index([]string{KindPBX, KindSource, KindRedis, KindHistory}, kind)
}

func sortedCalls(calls map[string]CallView) []CallView {
	out := slices.Collect(maps.Values(calls))
	slices.SortFunc(out, func(a, b CallView) int { return cmp.Or(a.RingAt.Compare(b.RingAt), strings.Compare(a.ID, b.ID)) })
	return out
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
