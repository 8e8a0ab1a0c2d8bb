package callstate

import (
	"cmp"
	"slices"
	"strings"

	ari "github.com/CyCoreSystems/ari/v5"

	screenpop "github.com/screenpop/screenpop"
)

// legState is where a dialled channel (a leg) stands.
type legState uint8

const (
	legNone     legState = iota // seen, but no Dial reached it yet
	legRinging                  // dialled, no final status yet
	legAnswered                 // picked up
	legEnded                    // gave up: busy, no answer, cancelled...
)

// maxChain bounds walks along Dial and Local links, which a well-formed
// stream never makes longer than a handful of hops.
const maxChain = 32

// channel is one Asterisk channel the tracker knows of.
type channel struct {
	id, name string
	seq      uint64
	agent    string // "" when the endpoint is not an agent's
	local    byte   // '1' or '2' for the halves of a Local channel, else 0
	partner  *channel
	parent   *channel   // the channel whose Dial created this one
	children []*channel // the channels it dialled
	// adopted: joined its call without a Dial from it (a transfer target,
	// a channel linked by Resync), so it counts as connected to the caller.
	adopted bool
	// consult: the root of an attended transfer's consultation (the Local
	// channel Asterisk dials the colleague with, named by ATTENDEDTRANSFER):
	// part of the call, but what rings through it is a colleague being
	// consulted, and answering it does not connect the caller.
	consult    bool
	call       *call
	leg        legState
	answeredAt uint64
	state      string // Asterisk channel state: Ring, Ringing, Up...
	connected  string // connected line number
	callVar    string // CallVar from the snapshot's channelvars
	// A Dial to n targets creates all n channels, then reports the n
	// begins: expect is n, seen the begins so far. The ringing set is held
	// back until the batch completes so one ring-all gives one event.
	expect, seen int
	gone         bool
}

// call is one customer call, keyed by its inbound channel.
type call struct {
	id         string
	seq        uint64
	in         *channel
	number     string // as Asterisk reports it; only callerOf decides to show it
	name       string
	restricted bool // presentation restricted or unavailable (sticky)
	presKnown  bool
	did, exten string
	legs       map[string]*channel
	announced  []string // the ringing set last reported
	// quiet are agents that stopped ringing because the dialler stopped
	// them (someone answered, the caller left, the timeout): what follows
	// (the answer, the end, the next ringing set) tells the agents, so their
	// leaving alone is not worth a ringing event.
	quiet    map[string]bool
	answered bool
	agent    string // who has it (after answer); "" while a blind transfer rings
	// rangOut are agents that stopped ringing unanswered (timeout, busy,
	// declined) since the last ringing event: their leaving is reported.
	rangOut map[string]bool
	// transferFrom is the agent who let go of the call by a blind
	// transfer, while it rings at the target; releasing is set from the
	// transfer until the agent was told.
	transferFrom string
	releasing    bool
	inApp        bool // a dialling application (Dial, Queue...) runs on the inbound channel
	hungUp       bool // a hangup was requested on the inbound channel
	abandoned    bool
	appStatus    string         // last DIALSTATUS / QUEUESTATUS
	results      map[string]int // final dial statuses of the legs
	ended        bool
	reported     bool // an event was emitted for it
	// fromResync: first seen in a channel list, where an agent's outgoing
	// call through the trunk can look like a caller. Such a call is only
	// reported ended if anything was reported of it before.
	fromResync bool
	dirty      bool // touched by the event being applied
}

// dialingApps are the applications during which a caller who hangs up
// abandons a call that was on its way to an agent.
var dialingApps = map[string]bool{"dial": true, "queue": true, "retrydial": true, "followme": true}

func (c *call) didOrExten() string {
	if c.did != "" {
		return c.did
	}
	if c.exten == "s" {
		return ""
	}
	return c.exten
}

// register returns the tracker's channel for a snapshot, creating it if
// needed, and refreshes what the snapshot says.
func (t *Tracker) register(s *ari.ChannelData) *channel {
	if s == nil || s.ID == "" {
		return nil
	}
	ch := t.chans[s.ID]
	if ch == nil {
		ch = &channel{id: s.ID, name: s.Name, seq: t.next(), agent: t.endpointAgent(s.Name)}
		t.chans[s.ID] = ch
		if strings.HasPrefix(s.Name, "Local/") && len(s.Name) > 2 && s.Name[len(s.Name)-2] == ';' {
			if half := s.Name[len(s.Name)-1]; half == '1' || half == '2' {
				ch.local = half
				other := s.Name[:len(s.Name)-1] + string('1'+'2'-half)
				if p := t.locals[other]; p != nil {
					ch.partner, p.partner = p, ch
				}
				t.locals[s.Name] = ch
			}
		}
	}
	t.refresh(ch, s)
	t.touch(ch.call)
	return ch
}

// touch marks c as changed by the event being applied: only such calls
// are looked at afterwards, which keeps a burst of many calls linear.
func (t *Tracker) touch(c *call) {
	if c != nil && !c.dirty {
		c.dirty = true
		t.dirty = append(t.dirty, c)
	}
}

func (t *Tracker) clearDirty() {
	for _, c := range t.dirty {
		c.dirty = false
	}
	t.dirty = t.dirty[:0]
}

// setParent records that p dialled ch (p nil: nobody did).
func setParent(ch, p *channel) {
	if old := ch.parent; old != nil {
		old.children = slices.DeleteFunc(old.children, func(k *channel) bool { return k == ch })
	}
	ch.parent = p
	if p != nil {
		p.children = append(p.children, ch)
	}
}

// observe refreshes a channel from an event's snapshot.
func (t *Tracker) observe(s *ari.ChannelData) *channel { return t.register(s) }

func (t *Tracker) refresh(ch *channel, s *ari.ChannelData) {
	if s.State != "" {
		ch.state = s.State
	}
	if s.Connected != nil {
		ch.connected = s.Connected.Number
	}
	if v, ok := lookupVar(s.ChannelVars, t.cfg.CallVar); ok {
		ch.callVar = v
	} else if v, ok := s.ChannelVars["CHANNEL(linkedid)"]; ok && v != "" {
		// The linked ID is the first channel of everything the call
		// created: the caller's channel for a customer's call.
		ch.callVar = v
	}
	c := ch.call
	if c == nil || c.in != ch {
		return
	}
	if s.Caller != nil {
		c.number, c.name = s.Caller.Number, s.Caller.Name
	}
	for k, v := range s.ChannelVars {
		t.applyVar(c, k, v)
	}
}

// forget drops a channel that no longer exists.
func (t *Tracker) forget(ch *channel) {
	ch.gone = true
	delete(t.chans, ch.id)
	if ch.local != 0 && t.locals[ch.name] == ch {
		delete(t.locals, ch.name)
	}
	if c := ch.call; c != nil && c.in != ch {
		delete(c.legs, ch.id)
		t.touch(c)
	}
	if ch.parent != nil {
		// Children keep their link to it: a chain through a gone
		// channel is dead, which is what the walks need to see.
		ch.parent.children = slices.DeleteFunc(ch.parent.children, func(k *channel) bool { return k == ch })
	}
}

// isInboundNew says whether a channel just created is a customer calling:
// an incoming channel (Asterisk creates those in state Ring, dialled ones
// Down) on an endpoint that is no agent's, not a Local channel, and in an
// inbound context when those are configured.
func (t *Tracker) isInboundNew(ch *channel, s *ari.ChannelData) bool {
	if ch.agent != "" || ch.local != 0 || s.State != "Ring" {
		return false
	}
	return len(t.contexts) == 0 || (s.Dialplan != nil && t.contexts[s.Dialplan.Context])
}

// isInboundLive is isInboundNew for a channel first seen in a Resync, when
// it may have moved on: the dialplan's CallVar naming the channel itself is
// proof; otherwise it must still be in an inbound context (or, with none
// configured, still unanswered).
func (t *Tracker) isInboundLive(ch *channel, s *ari.ChannelData) bool {
	if ch.agent != "" || ch.local != 0 {
		return false
	}
	if ch.callVar != "" {
		return ch.callVar == ch.id
	}
	if s.State == "Down" {
		return false
	}
	if len(t.contexts) == 0 {
		return s.State == "Ring"
	}
	return s.Dialplan != nil && t.contexts[s.Dialplan.Context]
}

// callOfUnlinked finds the call a channel first seen in a Resync belongs
// to: the CallVar the dialplan gave it, or else, for an agent's phone, the
// one call whose caller is the phone's connected line.
func (t *Tracker) callOfUnlinked(ch *channel) *call {
	if ch.callVar != "" {
		if c := t.calls[ch.callVar]; c != nil && c.in != ch {
			return c
		}
		return nil
	}
	if ch.agent == "" || ch.connected == "" {
		return nil
	}
	var found *call
	for _, c := range t.calls {
		if c.number == ch.connected {
			if found != nil {
				return nil // two calls from the same number: cannot tell
			}
			found = c
		}
	}
	return found
}

func (t *Tracker) newCall(ch *channel, s *ari.ChannelData) *call {
	c := &call{
		id:      ch.id,
		seq:     t.next(),
		in:      ch,
		legs:    map[string]*channel{},
		results: map[string]int{},
		quiet:   map[string]bool{},
		rangOut: map[string]bool{},
	}
	if s.Dialplan != nil {
		c.exten = s.Dialplan.Exten
	}
	ch.call = c
	t.calls[c.id] = c
	t.refresh(ch, s)
	return c
}

// inboundCall returns the call ch is the inbound channel of.
func inboundCall(ch *channel) *call {
	if ch == nil || ch.call == nil || ch.call.in != ch {
		return nil
	}
	return ch.call
}

// attach puts ch, its Local partner and everything they dialled into c.
func (t *Tracker) attach(ch *channel, c *call) {
	if ch == nil || ch.gone || ch.call == c {
		return
	}
	if old := ch.call; old != nil {
		if old.in == ch {
			return // an inbound channel belongs to its own call
		}
		delete(old.legs, ch.id)
	}
	ch.call = c
	c.legs[ch.id] = ch
	t.touch(c)
	t.attach(ch.partner, c)
	for _, k := range ch.children {
		t.attach(k, c)
	}
}

// adopt makes ch part of c without a Dial from c: a transfer target or
// a channel linked by Resync. answered says it is known to be talking.
func (t *Tracker) adopt(ch *channel, c *call, answered bool) {
	setParent(ch, nil)
	ch.adopted = true
	if answered && ch.leg != legAnswered {
		ch.leg, ch.answeredAt = legAnswered, t.next()
	}
	t.attach(ch, c)
}

// chainTo says whether every hop from ch up to c's inbound channel (or a
// channel adopted into c) is alive and in a state accept allows.
func (t *Tracker) chainTo(c *call, ch *channel, accept func(legState) bool) bool {
	root := t.chainRoot(c, ch, accept)
	return root != nil && !root.consult
}

// inConsult says whether ch reaches c through a consultation root, every
// hop alive and in a state accept allows.
func (t *Tracker) inConsult(c *call, ch *channel, accept func(legState) bool) bool {
	root := t.chainRoot(c, ch, accept)
	return root != nil && root.consult
}

// chainRoot walks from ch up the Dial and Local links to where it joined c:
// the inbound channel, or an adopted or consultation channel. It returns
// nil when a hop is gone or in a state accept refuses.
func (t *Tracker) chainRoot(c *call, ch *channel, accept func(legState) bool) *channel {
	n := ch
	for range maxChain {
		if n == c.in {
			return n
		}
		if n == nil || n.gone || n.call != c {
			return nil
		}
		if n.parent == nil && n.local == '2' && !n.adopted && !n.consult {
			n = n.partner
			continue
		}
		if !accept(n.leg) && !n.consult {
			// A consultation root is never dialled by the call, so its
			// leg state says nothing; that it lives is what counts.
			return nil
		}
		if n.parent == nil {
			if n.adopted || n.consult {
				return n
			}
			return nil
		}
		n = n.parent
	}
	return nil
}

func answeredOnly(s legState) bool      { return s == legAnswered }
func ringingOrAnswered(s legState) bool { return s == legRinging || s == legAnswered }

// connected says whether ch talks to the caller: answered at every hop.
func (t *Tracker) connected(c *call, ch *channel) bool {
	return t.chainTo(c, ch, answeredOnly)
}

// agentDown finds who answered at the far end of an answered leg: the leg's
// own agent, or through a Local channel the agent its other half reached.
// ok is false when the far end has not answered yet; agent is "" when
// someone who is not an agent (an outside number, an IVR) answered.
func (t *Tracker) agentDown(ch *channel, depth int) (agent string, ok bool) {
	if ch.agent != "" {
		return ch.agent, true
	}
	if ch.local == 0 {
		return "", true
	}
	if depth > maxChain {
		return "", false
	}
	half := ch
	if ch.local == '1' {
		half = ch.partner
	}
	if half == nil {
		return "", false
	}
	var best *channel
	for _, k := range half.children {
		if k.leg == legAnswered && !k.gone && (best == nil || k.answeredAt > best.answeredAt) {
			best = k
		}
	}
	if best == nil {
		return "", false
	}
	return t.agentDown(best, depth+1)
}

// ringingSet is the sorted set of agents whose phones ring for c now
// (consultations aside). A phone picked up behind a channel that has not
// connected it to the caller yet (a queue member's Local channel about to
// be answered) still counts: the answer follows. It is appended to
// set[:0]: the tracker's scratch (sets) spares an allocation per event.
func (t *Tracker) ringingSet(c *call, set []string) []string {
	set = set[:0]
	for _, l := range c.legs {
		if l.agent == "" || slices.Contains(set, l.agent) || !t.chainTo(c, l, ringingOrAnswered) {
			continue
		}
		if l.leg == legRinging || (l.leg == legAnswered && !t.connected(c, l)) {
			set = append(set, l.agent)
		}
	}
	slices.Sort(set)
	return set
}

// ringing says whether any agent's phone rings for c (ringingSet is not
// empty).
func (t *Tracker) ringing(c *call) bool {
	set := t.ringingSet(c, t.sets[0])
	t.sets[0] = set[:0]
	return len(set) > 0
}

// consultSet is the sorted set of colleagues an agent who has c consults
// about it: their phones ring, or they talk to the agent, through a
// consultation channel. It is appended to set[:0].
func (t *Tracker) consultSet(c *call, set []string) []string {
	set = set[:0]
	for _, l := range c.legs {
		if (l.leg == legRinging || l.leg == legAnswered) && l.agent != "" && l.agent != c.agent &&
			!slices.Contains(set, l.agent) && t.inConsult(c, l, ringingOrAnswered) {
			set = append(set, l.agent)
		}
	}
	slices.Sort(set)
	return set
}

// consulting says whether c is held by an agent, so that what rings for it
// is a consultation rather than the call itself.
func (c *call) consulting() bool { return c.answered && c.agent != "" }

// shownSet is the set a ringing event of c reports now, appended to
// set[:0].
func (t *Tracker) shownSet(c *call, set []string) []string {
	if c.consulting() {
		return t.consultSet(c, set)
	}
	// Answered and not consulting: let go of by a blind transfer, it
	// rings at its target.
	return t.ringingSet(c, set)
}

// shownTransfer is the transfer a ringing event of c rings for.
func shownTransfer(c *call) *screenpop.Transfer {
	switch {
	case c.consulting():
		return &screenpop.Transfer{From: c.agent, Consult: true}
	case c.answered:
		return &screenpop.Transfer{From: c.transferFrom}
	}
	return nil
}

// cloneSet copies a set out of the tracker's scratch; empty is nil, as
// a set built from nothing was.
func cloneSet(set []string) []string {
	if len(set) == 0 {
		return nil
	}
	return slices.Clone(set)
}

// held says whether a Dial batch of c is half reported.
func held(c *call) bool {
	if c.in.expect > 0 && c.in.seen > 0 {
		return true
	}
	for _, l := range c.legs {
		if l.expect > 0 && l.seen > 0 {
			return true
		}
	}
	return false
}

// flush reports c's ringing set if it changed (or always, with force, when
// it is not empty). A set that only lost quiet agents is not reported: what
// follows tells them. A set that lost agents otherwise is, even when empty:
// a phone that stopped ringing loses its pop at once, whether the call goes
// on to voicemail or rings elsewhere next.
func (t *Tracker) flush(c *call, force bool) {
	if c.ended {
		return
	}
	set := t.shownSet(c, t.sets[0])
	t.sets[0] = set[:0]
	changed := (force && len(set) > 0) || c.releasing
	rangOut := false
	for _, a := range set {
		if !slices.Contains(c.announced, a) {
			changed = true
		}
	}
	for _, a := range c.announced {
		if !slices.Contains(set, a) && !c.quiet[a] {
			changed = true
			rangOut = rangOut || c.rangOut[a]
		}
	}
	if !changed {
		return
	}
	c.announced, c.releasing = cloneSet(set), false
	clear(c.rangOut)
	transfer := shownTransfer(c)
	t.emit(c, screenpop.EventRinging, func(ev *screenpop.CallEvent) {
		ev.Agents, ev.RangOut, ev.Transfer = cloneSet(set), rangOut, transfer
	})
}

// flushAll reports the ringing sets the event changed.
func (t *Tracker) flushAll() {
	slices.SortFunc(t.dirty, func(a, b *call) int { return cmp.Compare(a.seq, b.seq) })
	for _, c := range t.dirty {
		if !held(c) {
			t.flush(c, false)
		}
	}
	t.clearDirty()
}

// connect records that agent has c now: the answer, or a transfer when it
// was answered already. agent "" (someone who is no agent answered: an
// outside number, an IVR) is reported only to withdraw pops already shown,
// and never as a transfer.
func (t *Tracker) connect(c *call, agent string) {
	switch {
	case c.ended:
	case !c.answered:
		c.answered, c.agent = true, agent
		t.settled(c)
		if agent != "" || c.reported {
			t.emit(c, screenpop.EventAnswered, func(ev *screenpop.CallEvent) { ev.Agent = agent })
		}
	case agent != "" && agent != c.agent:
		c.agent = agent
		t.settled(c)
		t.emit(c, screenpop.EventTransferred, func(ev *screenpop.CallEvent) { ev.Agent = agent })
	}
}

// settled forgets what rang before c found its agent: the answer or
// transfer event tells everyone it rang at, and consultations are over.
func (t *Tracker) settled(c *call) {
	c.announced, c.transferFrom, c.releasing = nil, "", false
	clear(c.quiet)
	clear(c.rangOut)
	for _, l := range c.legs {
		if l.consult {
			l.consult, l.adopted = false, true
		}
	}
}

// finish records a leg's final dial status. The agents it stops ringing
// (its own, or those reached through it by a Local channel) are quiet when
// the dialler cancelled it (CANCEL: answered elsewhere, caller gone), since
// the answer or the end tells them; otherwise (NOANSWER, BUSY, ...) they
// rang out, which the next ringing event reports. A consultation that is
// cancelled is never quiet: nothing else tells the colleague it is over.
func (t *Tracker) finish(l *channel, status string) {
	if l.leg == legAnswered || l.leg == legEnded {
		return
	}
	c := l.call
	var before []string
	if c != nil {
		before = t.shownSet(c, t.sets[0])
		t.sets[0] = before[:0]
	}
	l.leg = legEnded
	if c == nil {
		return
	}
	if status != "" && !t.inConsult(c, l, func(legState) bool { return true }) {
		c.results[status]++
	}
	after := t.shownSet(c, t.sets[1])
	t.sets[1] = after[:0]
	for _, a := range before {
		if slices.Contains(after, a) {
			continue
		}
		switch {
		case status != "CANCEL":
			c.rangOut[a] = true
		case !c.consulting():
			c.quiet[a] = true
		}
	}
}

// checkAbandoned marks c abandoned when its caller is going away while the
// call was on its way to an agent: a dialling application running, or
// phones ringing.
func (t *Tracker) checkAbandoned(c *call) {
	if !c.answered && !c.abandoned && (c.inApp || t.ringing(c)) {
		c.abandoned = true
	}
}

// end reports c over and forgets it.
func (t *Tracker) end(c *call) { t.endAs(c, "") }

// endAs reports c over with the given outcome ("" decides it from what
// happened) and forgets it.
func (t *Tracker) endAs(c *call, outcome screenpop.Outcome) {
	if c.ended {
		return
	}
	if !c.fromResync || c.reported {
		if outcome == "" {
			outcome = t.outcome(c)
		}
		t.emit(c, screenpop.EventEnded, func(ev *screenpop.CallEvent) {
			ev.Outcome = outcome
			if c.answered {
				ev.Agent = c.agent
			}
		})
	}
	c.ended = true
	delete(t.calls, c.id)
	for _, l := range c.legs {
		if l.call == c {
			l.call = nil
		}
	}
	if c.in.gone {
		t.forget(c.in)
	}
}

// outcome decides how an ended call went, from the strongest evidence down.
func (t *Tracker) outcome(c *call) screenpop.Outcome {
	switch {
	case c.answered:
		return screenpop.OutcomeAnswered
	case c.abandoned:
		return screenpop.OutcomeAbandoned
	}
	r := c.results
	switch {
	case r["NOANSWER"] > 0:
		return screenpop.OutcomeNoAnswer
	case r["BUSY"] > 0:
		return screenpop.OutcomeBusy
	case r["CANCEL"] > 0:
		// Phones rang and the dialplan stopped them (a queue timing out)
		// without the caller leaving.
		return screenpop.OutcomeNoAnswer
	case len(r) > 0:
		return screenpop.OutcomeFailed
	}
	switch c.appStatus {
	case "NOANSWER", "TIMEOUT":
		return screenpop.OutcomeNoAnswer
	case "BUSY", "FULL", "JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL", "LEAVEUNAVAIL":
		return screenpop.OutcomeBusy
	case "CANCEL":
		return screenpop.OutcomeAbandoned
	case "CHANUNAVAIL", "CONGESTION":
		return screenpop.OutcomeFailed
	}
	if c.hungUp {
		return screenpop.OutcomeAbandoned // left before any phone rang
	}
	return screenpop.OutcomeFailed
}

// causeStatus turns the hangup cause of a leg that ended without a final
// Dial status into one.
func causeStatus(cause int) string {
	switch cause {
	case 17, 21: // user busy, call rejected
		return "BUSY"
	case 18, 19: // no user responding, no answer
		return "NOANSWER"
	case 0, 16, 26: // unknown, normal clearing, answered elsewhere
		return "CANCEL"
	case 34, 38, 41, 42, 44:
		return "CONGESTION"
	default:
		return "CHANUNAVAIL"
	}
}

// lookupVar finds a channel variable by name, ignoring the '_'/'__'
// inheritance prefix.
func lookupVar(vars map[string]string, name string) (string, bool) {
	for k, v := range vars {
		if strings.TrimLeft(k, "_") == name {
			return v, true
		}
	}
	return "", false
}
