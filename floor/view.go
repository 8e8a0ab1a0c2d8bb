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
	// Version changes whenever what the view holds does (its calls, pages,
	// wrap-ups, health), not with At: the others make their floor view
	// anew only when a view changed. 0 (a daemon before versions): unknown,
	// taken as changed every time.
	Version uint64 `json:"version,omitempty"`
	// Watched: a supervisor page is open on this daemon. A daemon with
	// none open anywhere shares its view only every Interval, not at
	// every change.
	Watched bool `json:"watched,omitempty"`
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
	// gaugesOnly: only the gauges are wanted (a scrape), not the view.
	gaugesOnly bool
}

// agentAcc is an agent while a view is made.
type agentAcc struct {
	AgentView
	ringing bool   // their phone rings for a call, whatever else they do
	key     string // what they are sorted by: their name (or ID), lower case
}

// merge makes the floor view out of every daemon's. A call two daemons
// follow (both watch its PBX) is one: the one further on wins (answered
// over ringing), and the first ring of the two. An agent is connected when
// a page of theirs is on any daemon.
func merge(in mergeInput) (View, gauges) {
	calls := mergeCalls(in.views)
	npages, nwraps := 0, 0
	for _, v := range in.views {
		npages += len(v.Pages)
		nwraps += len(v.WrapUps)
	}
	pages := make(map[string]bool, npages)
	var wraps map[string]WrapUpView
	if nwraps > 0 {
		wraps = make(map[string]WrapUpView, nwraps)
	}
	var health map[string]*Health
	daemons := make([]string, 0, len(in.views))
	for _, v := range in.views {
		daemons = append(daemons, v.Daemon)
		for _, a := range v.Pages {
			pages[a] = true
		}
		for _, w := range v.WrapUps {
			if old, ok := wraps[w.Agent]; !ok || w.Until.After(old.Until) {
				wraps[w.Agent] = w
			}
		}
		if in.gaugesOnly {
			continue
		}
		for _, h := range v.Health {
			if health == nil {
				health = map[string]*Health{}
			}
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

	out := View{
		At: in.now, Day: in.day, ServiceLevelSeconds: in.serviceLevel,
		Waiting: []WaitingCall{}, Today: in.counts, Daemons: daemons, Partial: in.partial,
	}
	// The agents, by index (an agent met on a call only comes last).
	index := make(map[string]int, len(in.names)+len(pages))
	agents := make([]agentAcc, 0, len(in.names)+len(pages))
	agent := func(id string) int {
		i, ok := index[id]
		if !ok {
			i = len(agents)
			index[id] = i
			agents = append(agents, agentAcc{AgentView: AgentView{ID: id, Name: in.names[id], Connected: pages[id]}})
		}
		return i
	}
	for id := range in.names {
		agent(id)
	}
	for id := range pages {
		agent(id)
	}
	ringingBy := map[string]int{}
	longestBy := map[string]float64{}
	// One array holds every waiting call's agents.
	var refs []AgentRef
	if !in.gaugesOnly {
		waiting, n := 0, 0
		for i := range calls {
			if calls[i].Agent == "" {
				waiting++
				n += len(calls[i].Ringing)
			}
		}
		refs = make([]AgentRef, 0, n)
		out.Waiting = make([]WaitingCall, 0, waiting)
	}
	// calls are in ring order: the waiting calls come the longest
	// waiting first.
	for i := range calls {
		c := &calls[i]
		if c.Agent != "" {
			out.OnCall++
			a := &agents[agent(c.Agent)]
			a.State, a.CallID, a.Since = ShowOnCall, c.ID, c.AnsweredAt
			if a.Since.IsZero() {
				a.Since = c.RingAt
			}
		} else {
			ringingBy[c.Source]++
			wait := max(in.now.Sub(c.RingAt), 0).Seconds()
			longestBy[c.Source] = max(longestBy[c.Source], wait)
			if !in.gaugesOnly {
				from := len(refs)
				for _, r := range c.Ringing {
					refs = append(refs, AgentRef{ID: r, Name: in.names[r], Connected: pages[r]})
				}
				out.Waiting = append(out.Waiting, WaitingCall{ID: c.ID, Source: c.Source, Line: c.Line, Caller: c.Caller,
					Wait: wait, Agents: refs[from:len(refs):len(refs)], Transfer: !c.AnsweredAt.IsZero()})
			}
		}
		for _, r := range c.Ringing {
			a := &agents[agent(r)]
			a.ringing = true
			if a.State != ShowOnCall && a.State != ShowRinging {
				a.State, a.CallID, a.Since = ShowRinging, c.ID, c.RingAt
			}
		}
	}
	if len(out.Waiting) > 0 {
		out.LongestWait = out.Waiting[0].Wait
	}
	for id, w := range wraps {
		a := &agents[agent(id)]
		if a.State == "" {
			a.State, a.CallID, a.Until = ShowWrapUp, w.CallID, w.Until
		}
	}
	g := gauges{agents: make(map[string]int, len(agentStates)), waiting: ringingBy, longest: longestBy}
	for _, s := range agentStates {
		g.agents[s] = 0
	}
	for i := range agents {
		a := &agents[i]
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
		if a.ringing {
			g.agents[StateRinging]++
			if !a.Connected {
				g.agents[StateRingingBlind]++
			}
		}
	}
	if in.gaugesOnly {
		return out, g
	}
	for i := range agents {
		agents[i].key = strings.ToLower(cmp.Or(agents[i].Name, agents[i].ID))
	}
	slices.SortFunc(agents, func(a, b agentAcc) int {
		return cmp.Or(strings.Compare(a.key, b.key), strings.Compare(a.ID, b.ID))
	})
	out.Agents = make([]AgentView, len(agents))
	for i := range agents {
		out.Agents[i] = agents[i].AgentView
	}
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

// callOrder is the floor view's order of calls: the first rung first,
// then by ID.
func callOrder(a, b CallView) int {
	return cmp.Or(a.RingAt.Compare(b.RingAt), strings.Compare(a.ID, b.ID))
}

// mergeCalls is every daemon's calls as one list in callOrder, a call
// two daemons follow once: the one further on (answered wins, then the
// one with more agents ringing: a queue that moved on is reported by
// both), with the first ring of the two. A daemon's own list comes in
// that order already (its Ledger keeps it): with one daemon following
// calls, the list is that daemon's, unsorted, uncopied (read only).
func mergeCalls(views []DaemonView) []CallView {
	var only []CallView
	lists, n := 0, 0
	for _, v := range views {
		if len(v.Calls) > 0 {
			lists++
			n += len(v.Calls)
			only = v.Calls
		}
	}
	if lists <= 1 {
		if slices.IsSortedFunc(only, callOrder) {
			return only
		}
		out := slices.Clone(only)
		slices.SortFunc(out, callOrder)
		return out
	}
	index := make(map[string]int, n)
	out := make([]CallView, 0, n)
	for _, v := range views {
		for _, c := range v.Calls {
			i, ok := index[c.ID]
			if !ok {
				index[c.ID] = len(out)
				out = append(out, c)
				continue
			}
			old := out[i]
			if (c.Agent != "" && old.Agent == "") || (c.Agent == old.Agent && len(c.Ringing) > len(old.Ringing)) {
				c.RingAt = minTime(c.RingAt, old.RingAt)
				out[i] = c
			} else {
				out[i].RingAt = minTime(c.RingAt, old.RingAt)
			}
		}
	}
	if !slices.IsSortedFunc(out, callOrder) {
		slices.SortFunc(out, callOrder)
	}
	return out
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
