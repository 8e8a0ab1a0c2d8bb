// Package popstate decides who sees which card. It is a state machine:
// inputs are call events, cards that finished building (and the steps of
// one sent while it is built: CardProgress), an agent's pick
// among candidates, a refresh of a caller's data and the sweep of calls
// gone quiet; each returns the messages to deliver (agents and message)
// and the work to carry out (build a card, cancel a call's builds, record
// an ended call).
//
// It has no goroutines, no locks, no clock and no I/O: the time comes with
// each input, and pop.Dispatcher, which feeds it one input at a time,
// does the rest. What it decides is tested by replaying scenarios against
// golden files (testdata/).
package popstate

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	screenpop "github.com/screenpop/screenpop"
)

// Config configures New.
type Config struct {
	// Names gives an agent's display name ("answered by Bob"); nil: none.
	// It must answer from memory: the machine asks while deciding.
	Names func(agentID string) string
	// Roles gives an agent's roles, which decide the card sections the
	// agent gets (screenpop.CardSection.VisibleTo); nil, or no roles for an
	// agent: only the sections that name no role. It must answer from
	// memory, for agents whose page is closed too.
	Roles func(agentID string) []string
	// StaleAfter drops a call with no event for this long (its "ended" was
	// lost): its pops are withdrawn as expired. An ended call's agents may
	// write notes about it this long after its end. Required.
	StaleAfter time.Duration
	// MaxEnded bounds the ended calls remembered for late notes; default
	// 10000.
	MaxEnded int
}

// Machine is the state of every call followed. It is not safe for
// concurrent use: one input at a time, in the order they happened.
type Machine struct {
	cfg    Config
	calls  map[string]*call
	recent map[string]*endedCall // ended calls agents may still write notes about
	order  []*endedCall          // recent, oldest first
	gen    uint64                // numbers calls, so that a late card finds its own call
	// active is how many of calls have not ended (Active), kept as they
	// come, end and go: the dispatcher asks after every event, and a scan
	// would cost every event more the more calls are live.
	active int

	// The input being applied: its time and what it produced.
	now time.Time
	out Output
}

// Output is what one input produced.
type Output struct {
	// Deliveries are the messages to send, in order.
	Deliveries []Delivery
	// Effects are the work to do, in order, after the deliveries.
	Effects []Effect
	// Latencies are, for each agent a pop was sent to, how long it took
	// from the At of the event that made the agent need the card.
	Latencies []Latency
	// Refreshed counts live cards rebuilt and sent again because their
	// data changed.
	Refreshed int
	// Warning says why an input was ignored, when that deserves a log line.
	Warning string
}

// Delivery is one message for one or more agents: the same message, so it
// is encoded once. A message with a card (pop, card) goes to its agents in
// one Delivery per set of sections they may see: each holds only those
// sections. A section message goes only to the agents who may see its
// section.
type Delivery struct {
	To  []string // agent IDs, sorted
	Msg Message
	// Sections names the sections whose content Msg shows, for a message
	// with a card or a part of one (what the access log records as
	// shown): the card's sections but those still loading, or the one
	// section of a section message; nil for the others.
	Sections []string
	// part is the call's card as a section or history message adds to it,
	// holding only what the message carries: what Card returns for it.
	part *screenpop.Card
}

// Latency is how long a pop took to go to Agent, from the At of the
// event that made the agent need the card.
type Latency struct {
	Agent string
	Took  time.Duration
}

// Effect is work the machine asks for: Build, Cancel or Record.
type Effect interface{ effect() }

// Purpose says why a card is built.
type Purpose string

const (
	BuildFirst   Purpose = "first"   // the call's card
	BuildPick    Purpose = "pick"    // for the customer an agent picked among the candidates
	BuildRefresh Purpose = "refresh" // again, because the caller's data changed
)

// Build asks for a card, under the call's own context. Its result goes to
// CardBuilt with this Build.
type Build struct {
	CallID  string
	Purpose Purpose
	// Event is what the card is built from: the call's first event.
	Event screenpop.CallEvent
	// CustomerID, when set, is the customer to build the card for
	// (CardBuilder.BuildFor).
	CustomerID string
	gen        uint64
}

// Cancel ends the call's context: every build for it stops. Cause says
// why ("call X ended (abandoned)"). Once cancelled, a call asks for no
// more builds.
type Cancel struct {
	CallID string
	Cause  error
	// Dropped: no event came for StaleAfter; the call is forgotten without
	// its end (worth a warning).
	Dropped bool
}

// Record stores an ended call in the history: every call that had a card
// built, with a number or not (a withheld caller's call is kept by its
// ID, for its notes and wrap-up).
type Record struct {
	// Call is the call as a card's history shows it: Phone is the card's
	// E.164 number (empty for a withheld caller or no phone number), At
	// the first ring, Agent who had the call at its end.
	Call screenpop.PastCall
	// What the history keeps besides.
	Withheld bool
	// Rung are the agents whose phones rang for the call, sorted.
	Rung []string
	// AnsweredBy is the agent who answered first, at AnsweredAt (the
	// event's time).
	AnsweredBy string
	AnsweredAt time.Time
	// PoppedAt is when the first pop of the call was sent (the machine's
	// clock); zero when the call ended before its card was ready.
	PoppedAt time.Time
	// EndedAt is the time of the ended event.
	EndedAt   time.Time
	Transfers []Handover
	// Source is the telephony source that saw the call.
	Source string
	// Line is the configured name of the line dialled (the card's
	// Line.Label), "" when the number dialled is none of lines:.
	Line string
	// PoppedBeforeAnswer: AnsweredBy had been sent the pop when their
	// answer came (the events' order, whatever the clocks say).
	PoppedBeforeAnswer bool
}

// Handover is one transfer of a call from an agent to another: blind, or
// Attended (the target was consulted first).
type Handover struct {
	From     string
	To       string
	At       time.Time
	Attended bool
}

func (Build) effect()  {}
func (Cancel) effect() {}
func (Record) effect() {}

// call is what the machine knows of one live call.
type call struct {
	gen        uint64
	event      screenpop.CallEvent  // the first event, what cards are built from
	ringing    map[string]time.Time // agent -> At of the event that rang them
	holders    map[string]bool      // agents showing the pop now
	had        map[string]bool      // agents that ever held it (may write notes)
	answeredBy string               // who has the call now ("" while it rings, or after a blind transfer)
	answeredAt time.Time
	lastAgent  string // who had it last: answeredBy, or the agent who transferred it away
	// transfer is why the call rings now, when a colleague transfers it
	// (shown on the ringing pops).
	transfer *screenpop.Transfer
	// released is the agent who let go by a blind transfer and was told
	// "transferred" before the target's phone rang: told again, with the
	// target's name, when it does.
	released string
	card     *screenpop.Card
	building bool // the first card is being built
	// partial is the purpose of the build whose card, sent before it was
	// complete, is being filled in (BuildFirst, BuildPick); "": card is
	// complete.
	partial  Purpose
	ended    bool
	endEvent screenpop.CallEvent
	pick     *pick     // a BuildPick is running
	lastSeen time.Time // for StaleAfter
	refresh  refreshState
	// found are the customers each agent's last search of the directory
	// found for this unknown caller: the ones the agent may link the
	// number to (search.go).
	found map[string][]screenpop.Customer

	// What the history records of the call.
	rung      map[string]bool // every agent whose phone rang
	handled   map[string]bool // every agent who had the call (answered it, or got it by a transfer)
	firstBy   string          // who answered first, at firstAt
	firstAt   time.Time
	poppedAt  time.Time // the first pop sent
	handovers []Handover

	// poppedFirst: the agent who answered first had been sent the pop
	// when their answer came.
	poppedFirst bool
}

// pick is an agent's choice among the candidates, while its card builds.
type pick struct {
	by         AgentRef
	candidates []screenpop.Customer // kept on the new card, so that a wrong pick can be corrected
}

type endedCall struct {
	callID  string
	phone   string
	had     map[string]bool
	handled map[string]bool
	at      time.Time
}

// DefaultMaxEnded is Config.MaxEnded's default.
const DefaultMaxEnded = 10000

// New returns a Machine following no call.
func New(cfg Config) *Machine {
	if cfg.MaxEnded <= 0 {
		cfg.MaxEnded = DefaultMaxEnded
	}
	return &Machine{cfg: cfg, calls: map[string]*call{}, recent: map[string]*endedCall{}}
}

func (m *Machine) begin(now time.Time) { m.now, m.out = now, Output{} }

func (m *Machine) end() Output {
	out := m.out
	m.out = Output{}
	return out
}

// Apply applies one call event at now.
func (m *Machine) Apply(ev screenpop.CallEvent, now time.Time) Output {
	m.begin(now)
	switch _, over := m.recent[ev.CallID]; {
	case ev.CallID == "":
		m.out.Warning = "call event without call ID ignored"
	case over:
		// A repeat from a telephony source repairing its state after a
		// reconnect: the call is over and must not come back to life.
	case ev.Kind == screenpop.EventRinging:
		m.ringing(ev)
	case ev.Kind == screenpop.EventAnswered:
		m.answered(ev)
	case ev.Kind == screenpop.EventTransferred:
		m.transferred(ev)
	case ev.Kind == screenpop.EventEnded:
		m.ended(ev)
	default:
		m.out.Warning = "unknown call event kind ignored"
	}
	return m.end()
}

// follow returns the call of ev, following it from now on.
func (m *Machine) follow(ev screenpop.CallEvent) *call {
	c := m.calls[ev.CallID]
	if c == nil {
		m.gen++
		c = &call{
			gen:     m.gen,
			event:   ev,
			ringing: map[string]time.Time{},
			holders: map[string]bool{},
			had:     map[string]bool{},
			rung:    map[string]bool{},
			handled: map[string]bool{},
		}
		m.calls[ev.CallID] = c
		m.active++
	} else {
		m.learnCaller(c, ev)
	}
	c.lastSeen = m.now
	return c
}

// learnCaller takes the caller from a later event of a call whose events
// so far never named one (the PBX sent the caller only from the answer on,
// or this daemon first heard of the call mid-call): the card built for an
// unknown caller is built again for the one named now. A caller once
// named stays: a later event cannot change who is calling, nor lift a
// withheld presentation.
func (m *Machine) learnCaller(c *call, ev screenpop.CallEvent) {
	if c.event.Caller != (screenpop.Caller{}) || ev.Caller == (screenpop.Caller{}) || c.ended {
		return
	}
	c.event.Caller = ev.Caller
	if c.event.DID == "" {
		c.event.DID = ev.DID
	}
	switch {
	case (c.card == nil && c.building) || c.partial == BuildFirst:
		// The first card is still being built, for nobody: built again once
		// it is there (refreshIfAsked).
		c.refresh.callerLearned = true
	case c.card != nil:
		m.rebuild(c)
	}
	// No card and none building: the first build takes the caller.
}

// ringing applies the complete set of agents whose phones ring now. On a
// call an agent has, only a transfer rings: a blind one (the agent let go:
// their pop is withdrawn as transferred, naming the target once it rings)
// or a consultation (the agent keeps the call; the colleague sees the card
// while their phone rings and while they talk).
func (m *Machine) ringing(ev screenpop.CallEvent) {
	c := m.follow(ev)
	if c.ended {
		return
	}
	tr := ev.Transfer
	released := ""
	if c.answeredBy != "" {
		if tr == nil {
			// Late ringing of a call someone already has: the PBX reports the
			// other phones' ringing after the answer. Nothing rings any more.
			return
		}
		if !tr.Consult {
			released = c.answeredBy
			c.lastAgent, c.answeredBy, c.answeredAt = released, "", time.Time{}
			if !c.holders[released] {
				released = "" // their pop is gone already
			}
		}
	}
	c.transfer = tr
	now := map[string]bool{}
	for _, a := range ev.Agents {
		if a != "" && a != c.answeredBy {
			now[a] = true
		}
	}
	reason := ReasonNotRinging
	switch {
	case ev.RangOut:
		reason = ReasonRangOut
	case tr != nil && tr.Consult:
		reason = ReasonTransferCancelled
	}
	var gone []string
	for _, a := range sortedKeys(c.ringing) {
		if !now[a] {
			delete(c.ringing, a)
			if c.holders[a] {
				gone = append(gone, a)
			}
		}
	}
	m.withdraw(c, gone, reason, nil)
	for a := range now {
		if _, ok := c.ringing[a]; !ok {
			c.ringing[a] = ev.At
		}
		c.rung[a] = true
	}
	if released == "" && len(now) > 0 && c.released != "" && !now[c.released] {
		released = c.released // told "transferred" already; now to whom
	}
	if released != "" {
		var to *AgentRef
		if targets := sortedKeys(now); len(targets) > 0 {
			to = m.ref(targets[0])
			c.released = ""
		} else {
			c.released = released
		}
		m.withdraw(c, []string{released}, ReasonTransferred, to)
	}
	if len(c.ringing) == 0 {
		return
	}
	if c.card == nil {
		m.buildFirst(c)
		return
	}
	m.popRinging(c)
}

func (m *Machine) answered(ev screenpop.CallEvent) {
	c := m.follow(ev)
	if c.ended || (c.answeredBy != "" && c.answeredBy == ev.Agent) {
		return
	}
	m.takeOver(c, ev, ReasonAnsweredElsewhere, false)
}

func (m *Machine) transferred(ev screenpop.CallEvent) {
	if ev.Agent == "" {
		m.out.Warning = "transfer without target agent ignored"
		return
	}
	c := m.follow(ev)
	if c.ended || c.answeredBy == ev.Agent {
		return
	}
	m.takeOver(c, ev, ReasonTransferred, true)
}

// takeOver gives the call to ev.Agent, whether they answered it or it was
// transferred to them: nobody rings any more, every other holder loses the
// pop for reason, and the new holder gets the card.
func (m *Machine) takeOver(c *call, ev screenpop.CallEvent, reason string, transferred bool) {
	// A hand-over from the agent transferring it (the ringing said so), or
	// from whoever had it.
	from, attended := c.lastAgent, false
	if c.transfer != nil && c.transfer.From != "" {
		from, attended = c.transfer.From, c.transfer.Consult
	}
	if (transferred || c.transfer != nil) && from != "" && from != ev.Agent {
		c.handovers = append(c.handovers, Handover{From: from, To: ev.Agent, At: ev.At, Attended: attended})
	}
	if c.firstBy == "" {
		c.firstBy, c.firstAt = ev.Agent, ev.At
		c.poppedFirst = c.holders[ev.Agent]
	}
	c.handled[ev.Agent] = true
	c.answeredBy, c.answeredAt, c.lastAgent = ev.Agent, ev.At, ev.Agent
	c.transfer, c.released = nil, ""
	clear(c.ringing)
	others := slices.DeleteFunc(sortedKeys(c.holders), func(h string) bool { return h == ev.Agent })
	m.withdraw(c, others, reason, m.ref(ev.Agent))
	m.handOver(c, transferred)
}

// handOver gives the card to the agent who has the call now, or builds it.
func (m *Machine) handOver(c *call, transferred bool) {
	if c.card == nil {
		m.buildFirst(c)
		return
	}
	a := c.answeredBy
	if a == "" {
		return
	}
	if !c.holders[a] {
		m.pop(c, []string{a}, StateAnswered)
	}
	m.send([]string{a}, TypeAnswered, c.event.CallID, AnsweredData{Agent: *m.ref(a), Transferred: transferred})
}

func (m *Machine) ended(ev screenpop.CallEvent) {
	c := m.calls[ev.CallID]
	if c == nil || c.ended {
		// Never rung here (no card, nothing to record), or a duplicate.
		return
	}
	c.lastSeen = m.now
	c.ended, c.endEvent = true, ev
	m.active--
	// A card still being built is not needed by anyone now; the history
	// takes what it has.
	m.effect(Cancel{CallID: ev.CallID, Cause: fmt.Errorf("call %s ended (%s)", ev.CallID, ev.Outcome)})
	agent := ev.Agent
	if agent == "" {
		agent = c.answeredBy
	}
	m.send(sortedKeys(c.holders), TypeEnded, ev.CallID, EndedData{Outcome: ev.Outcome, Agent: m.ref(agent)})
	clear(c.holders)
	clear(c.ringing)
	if !c.building {
		m.finish(c)
	}
	// else: the card is still being built; CardBuilt records the call.
}

// finish forgets a call that ended and records it in the history: every
// call that had a card, a withheld caller's too (by its ID).
func (m *Machine) finish(c *call) {
	id := c.event.CallID
	m.forget(c)
	withheld := c.event.Caller.Withheld || (c.card != nil && c.card.Caller.Withheld)
	var phone string
	if c.card != nil && !withheld {
		phone = c.card.Phone
	}
	m.remember(&endedCall{callID: id, phone: phone, had: c.had, handled: c.handled, at: m.now})
	if c.card == nil {
		return // never rang anybody: nothing was shown, nothing to keep
	}
	end := c.endEvent
	past := screenpop.PastCall{
		CallID:  id,
		Phone:   phone,
		At:      c.event.At,
		Agent:   end.Agent,
		Outcome: end.Outcome,
		DID:     c.event.DID,
	}
	if c.card.Customer != nil {
		past.CustomerID = c.card.Customer.ID
	}
	if past.Agent == "" {
		past.Agent = c.lastAgent
	}
	if r := m.ref(past.Agent); r != nil {
		past.AgentName = r.Name
	}
	if past.Outcome == "" {
		past.Outcome = screenpop.OutcomeNoAnswer
		if c.answeredBy != "" {
			past.Outcome = screenpop.OutcomeAnswered
		}
	}
	if !c.event.At.IsZero() && end.At.After(c.event.At) {
		past.Duration = end.At.Sub(c.event.At)
	}
	m.effect(Record{
		Call:       past,
		Withheld:   withheld,
		Rung:       sortedKeys(c.rung),
		AnsweredBy: c.firstBy,
		AnsweredAt: c.firstAt,
		PoppedAt:   c.poppedAt,
		EndedAt:    end.At,
		Transfers:  slices.Clone(c.handovers),
		Source:     c.event.Source,
		Line:       lineLabel(c.card),

		PoppedBeforeAnswer: c.poppedFirst,
	})
}

func lineLabel(card *screenpop.Card) string {
	if card.Line == nil {
		return ""
	}
	return card.Line.Label
}

func (m *Machine) remember(e *endedCall) {
	if old := m.recent[e.callID]; old != nil {
		m.order = slices.DeleteFunc(m.order, func(x *endedCall) bool { return x == old })
	}
	m.recent[e.callID] = e
	m.order = append(m.order, e)
	for len(m.order) > m.cfg.MaxEnded {
		delete(m.recent, m.order[0].callID)
		m.order = m.order[1:]
	}
}

func (m *Machine) buildFirst(c *call) {
	if c.building || c.card != nil {
		return
	}
	c.building = true
	m.effect(Build{CallID: c.event.CallID, Purpose: BuildFirst, Event: c.event, gen: c.gen})
}

// CardBuilt applies the card b asked for. A card of a call that was
// dropped meanwhile, or that is no longer needed, changes nothing.
func (m *Machine) CardBuilt(b Build, card screenpop.Card, now time.Time) Output {
	m.begin(now)
	c := m.calls[b.CallID]
	if c != nil && c.gen != b.gen {
		c = nil // a call of the same ID followed anew
	}
	if card.CallID == "" {
		card.CallID = b.CallID
	}
	if c != nil {
		switch b.Purpose {
		case BuildFirst:
			m.cardReady(c, card)
		case BuildPick:
			m.picked(c, card)
		case BuildRefresh:
			m.refreshed(c, b.CustomerID, card)
		}
	}
	return m.end()
}

// cardReady applies the first card of c.
func (m *Machine) cardReady(c *call, card screenpop.Card) {
	c.building = false
	if c.card != nil {
		m.firstCompleted(c, card)
		return
	}
	c.card = &card
	if c.ended {
		// Answered and hung up, or abandoned, while the card was built:
		// nobody needs it now, but the history does.
		m.finish(c)
		return
	}
	m.refreshIfAsked(c) // fresher data came while this card was built
	if c.answeredBy != "" {
		m.handOver(c, false)
	}
	// Phones ringing: before an answer, or a colleague consulted about it.
	m.popRinging(c)
}

// popRinging pops the agents whose phones ring and who do not show the
// card yet.
func (m *Machine) popRinging(c *call) {
	var agents []string
	for _, a := range sortedKeys(c.ringing) {
		if !c.holders[a] {
			agents = append(agents, a)
		}
	}
	m.pop(c, agents, StateRinging)
}

// pop sends the card to agents and measures how long it took from the
// event that made each need it.
func (m *Machine) pop(c *call, agents []string, state string) {
	if len(agents) == 0 {
		return
	}
	data := PopData{State: state, Card: *c.card}
	if state == StateAnswered {
		data.AnsweredBy = m.ref(c.answeredBy)
	} else {
		data.Transfer = m.transferInfo(c)
	}
	m.send(agents, TypePop, c.event.CallID, data)
	if c.poppedAt.IsZero() {
		c.poppedAt = m.now
	}
	for _, a := range agents {
		c.holders[a], c.had[a] = true, true
		since := c.ringing[a]
		if state == StateAnswered {
			since = c.answeredAt
		}
		if took := m.now.Sub(since); !since.IsZero() && took >= 0 {
			m.out.Latencies = append(m.out.Latencies, Latency{Agent: a, Took: took})
		}
	}
}

// transferInfo is what a ringing pop says of the transfer it rings for.
func (m *Machine) transferInfo(c *call) *TransferInfo {
	if c.transfer == nil || c.transfer.From == "" {
		return nil
	}
	return &TransferInfo{From: *m.ref(c.transfer.From), Consult: c.transfer.Consult}
}

func (m *Machine) withdraw(c *call, agents []string, reason string, by *AgentRef) {
	for _, a := range agents {
		delete(c.holders, a)
	}
	m.send(agents, TypeWithdrawn, c.event.CallID, WithdrawnData{Reason: reason, By: by})
}

// send delivers a message to agents. A card in it is cut per agent to the
// sections the agent may see (audiences), so a hidden section is in no
// message, log or stream of that agent.
func (m *Machine) send(to []string, typ, callID string, data any) {
	if len(to) == 0 {
		return
	}
	card, ok := cardOf(data)
	if !ok {
		m.out.Deliveries = append(m.out.Deliveries, Delivery{To: to, Msg: Message{Type: typ, CallID: callID, At: m.now, Data: data}})
		return
	}
	for _, a := range m.audiences(card, to) {
		m.out.Deliveries = append(m.out.Deliveries, Delivery{
			To:       a.agents,
			Msg:      Message{Type: typ, CallID: callID, At: m.now, Data: withCard(data, a.card)},
			Sections: a.sections,
		})
	}
}

func (m *Machine) effect(e Effect) { m.out.Effects = append(m.out.Effects, e) }

func (m *Machine) ref(agent string) *AgentRef {
	if agent == "" {
		return nil
	}
	r := &AgentRef{ID: agent}
	if m.cfg.Names != nil {
		r.Name = m.cfg.Names(agent)
	}
	return r
}

// Sweep drops calls nothing happened to for StaleAfter: their "ended" was
// lost, and their pops would otherwise stay on screen forever. Ended calls
// older than that can no longer get notes.
func (m *Machine) Sweep(now time.Time) Output {
	m.begin(now)
	for _, id := range sortedKeys(m.calls) {
		c := m.calls[id]
		if now.Sub(c.lastSeen) < m.cfg.StaleAfter {
			continue
		}
		m.withdraw(c, sortedKeys(c.holders), ReasonExpired, nil)
		m.effect(Cancel{CallID: id, Cause: fmt.Errorf("call %s dropped: no event for %s", id, m.cfg.StaleAfter), Dropped: true})
		m.forget(c)
	}
	for len(m.order) > 0 && now.Sub(m.order[0].at) >= m.cfg.StaleAfter {
		delete(m.recent, m.order[0].callID)
		m.order = m.order[1:]
	}
	return m.end()
}

// Snapshot lists the calls agentID holds a pop for, oldest first, each
// card with the sections the agent may see.
func (m *Machine) Snapshot(agentID string) []PopView {
	pops := []PopView{}
	for _, c := range m.calls {
		if !c.holders[agentID] || c.card == nil {
			continue
		}
		roles := m.roles(agentID)
		card, _ := visibleCard(*c.card, roles)
		card.Links = linksFor(*c.card, roles, agentID)
		v := PopView{CallID: c.event.CallID, State: StateRinging, Card: card}
		if c.answeredBy == agentID {
			v.State, v.AnsweredBy = StateAnswered, m.ref(c.answeredBy)
		} else {
			v.Transfer = m.transferInfo(c)
		}
		pops = append(pops, v)
	}
	// Oldest call first, as the page stacks them.
	slices.SortFunc(pops, func(a, b PopView) int {
		if c := m.calls[a.CallID].event.At.Compare(m.calls[b.CallID].event.At); c != 0 {
			return c
		}
		return strings.Compare(a.CallID, b.CallID)
	})
	return pops
}

// Select is an agent's pick among the candidates of an ambiguous caller:
// only an agent holding the call's pop may pick, only among the card's
// candidates, and one pick at a time per call (each costs a round of
// queries to every company system). The new card goes to every holder
// once built.
func (m *Machine) Select(agent AgentRef, callID, customerID string, now time.Time) (Output, error) {
	c := m.calls[callID]
	switch {
	case c == nil || c.ended:
		return Output{}, refuse(CodeUnknownCall, "this call is over")
	case !c.holders[agent.ID]:
		return Output{}, refuse(CodeForbidden, "this call is not shown to you")
	case c.card == nil:
		return Output{}, refuse(CodeNotReady, "the card is still being built")
	case !slices.ContainsFunc(c.card.Candidates, func(k screenpop.Customer) bool { return k.ID == customerID }):
		return Output{}, refuse(CodeBadRequest, "that customer is not one of the candidates for this number")
	case c.pick != nil:
		return Output{}, refuse(CodeNotReady, "the previous choice is still loading")
	}
	m.begin(now)
	c.pick = &pick{by: agent, candidates: c.card.Candidates}
	m.effect(Build{CallID: callID, Purpose: BuildPick, Event: c.event, CustomerID: customerID, gen: c.gen})
	return m.end(), nil
}

// picked applies the card of an agent's pick.
func (m *Machine) picked(c *call, card screenpop.Card) {
	p := c.pick
	c.pick = nil
	if p == nil || c.ended {
		return // over: nobody holds the pop any more
	}
	if len(card.Candidates) == 0 {
		// Keep the list so that an agent who picked the wrong person can
		// pick again.
		card.Candidates = p.candidates
	}
	// Complete, it replaces whatever is still being filled in: the pick's
	// own card sent early, or the first card.
	c.partial = ""
	c.card = &card
	// A rebuild that started before the pick would bring the card without it.
	c.refresh.superseded = c.refresh.running
	m.send(sortedKeys(c.holders), TypeCard, c.event.CallID, CardData{Card: card, SelectedBy: p.by})
}

// Note checks that agentID may write text about callID: an agent may write
// about a call it holds or held, during the call and for StaleAfter after
// it ended. It returns the caller's E.164 number (empty for a withheld
// caller or one without a phone number: the note is kept by call) and the
// text as stored.
func (m *Machine) Note(agentID, callID, text string) (phone, note string, err error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return "", "", refuse(CodeBadRequest, "the note is empty")
	}
	if n := utf8.RuneCountInString(text); n > MaxNoteLength {
		return "", "", refuse(CodeBadRequest, "the note is %d characters long; the limit is %d", n, MaxNoteLength)
	}
	phone, err = m.mayWrite(agentID, callID)
	return phone, text, err
}

// WrapUp checks that agentID may choose the wrap-up disposition of
// callID: an agent who had the call (answered it, or got it by a
// transfer), during it and for StaleAfter after it ended. A colleague
// whose phone only rang may write notes, not wrap it up.
func (m *Machine) WrapUp(agentID, callID string) error {
	if _, err := m.mayWrite(agentID, callID); err != nil {
		return err
	}
	handled := map[string]bool{}
	if c := m.calls[callID]; c != nil {
		handled = c.handled
	} else if e := m.recent[callID]; e != nil {
		handled = e.handled
	}
	if !handled[agentID] {
		return refuse(CodeForbidden, "only an agent who had this call wraps it up")
	}
	return nil
}

// mayWrite checks that agentID held callID (live, or ended within
// StaleAfter) and returns the caller's E.164 number, if any.
func (m *Machine) mayWrite(agentID, callID string) (phone string, err error) {
	if c := m.calls[callID]; c != nil {
		if !c.had[agentID] {
			return "", refuse(CodeForbidden, "this call was not shown to you")
		}
		if c.card == nil {
			return "", refuse(CodeNotReady, "the card is still being built")
		}
		if !c.card.Caller.Withheld && !c.event.Caller.Withheld {
			phone = c.card.Phone
		}
		return phone, nil
	}
	if e := m.recent[callID]; e != nil {
		if !e.had[agentID] {
			return "", refuse(CodeForbidden, "this call was not shown to you")
		}
		return e.phone, nil
	}
	return "", refuse(CodeUnknownCall, "this call is not known (any more)")
}

// NoteSaved tells the note's author (every tab of theirs) it is stored.
// For an edit, note is the note as it reads now (EditedBy its editor, to
// whom it is sent).
func (m *Machine) NoteSaved(callID string, note screenpop.Note, ref string, now time.Time) Output {
	m.begin(now)
	to := note.Agent
	if note.EditedBy != "" {
		to = note.EditedBy
	}
	m.send([]string{to}, TypeNoteSaved, callID, NoteSavedData{Note: note, Ref: ref})
	return m.end()
}

// WrappedUp tells the agent (every tab of theirs) the disposition they
// chose for callID is kept.
func (m *Machine) WrappedUp(agentID, callID string, w WrappedUpData, now time.Time) Output {
	m.begin(now)
	m.send([]string{agentID}, TypeWrappedUp, callID, w)
	return m.end()
}

// Knows reports whether callID is a call the machine follows, or one that
// ended recently enough for notes.
func (m *Machine) Knows(callID string) bool {
	return m.calls[callID] != nil || m.recent[callID] != nil
}

// Follows reports whether callID is followed: rung and not over (or over,
// with its first card still building).
func (m *Machine) Follows(callID string) bool { return m.calls[callID] != nil }

// Calls is how many calls are followed.
func (m *Machine) Calls() int { return len(m.calls) }

// Active is how many calls are followed and not ended.
func (m *Machine) Active() int { return m.active }

// forget stops following c: the one way a call leaves calls, so that
// active stays true.
func (m *Machine) forget(c *call) {
	if !c.ended {
		m.active--
	}
	delete(m.calls, c.event.CallID)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
