// Package callstate turns the ARI event stream of one Asterisk into the
// daemon's call model: which customer call rings at which agents, who
// answered, who has it after a transfer, and how it ended.
//
// The tracker only observes. It never asks Asterisk anything and never
// controls a channel; the ARI source feeds it events (Apply) and, after each
// (re)connect, the list of live channels (Resync). See README.md for what
// the dialplan must provide.
package callstate

import (
	"cmp"
	"slices"
	"strings"
	"time"

	ari "github.com/CyCoreSystems/ari/v5"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/telephony"
)

// Defaults of Config.
const (
	DefaultSource          = "ari"
	DefaultCallVar         = "SCREENPOP_CALL"
	DefaultPresentationVar = "SCREENPOP_PRES"
	DefaultDIDVar          = "SCREENPOP_DID"
)

// Config tells the tracker how to read this PBX.
type Config struct {
	// AgentOf maps an endpoint ("PJSIP/1001", "Local/1001@agents") to the
	// agent sitting at it; telephony.AgentMap.AgentOf fits. Nil means no
	// endpoint is an agent's, so nothing ever rings. Its answer for an
	// endpoint must not change: the tracker keeps it (a bounded cache),
	// since a pattern's regular expression would otherwise run for every
	// channel.
	AgentOf func(endpoint string) (agent string, ok bool)
	// InboundContexts are the dialplan contexts whose channels are customer
	// calls (e.g. "from-carrier"). Empty: any incoming channel whose endpoint
	// is not an agent's.
	InboundContexts []string
	// Source is CallEvent.Source; default "ari".
	Source string
	// Now stamps CallEvent.At; default time.Now.
	Now func() time.Time

	// CallVar is the channel variable the dialplan sets, inherited, to the
	// inbound channel's ${UNIQUEID} (Set(__SCREENPOP_CALL=${UNIQUEID})).
	// Listed in ari.conf channelvars it ties every channel of a call to the
	// call in the channel list Resync gets. Default "SCREENPOP_CALL".
	CallVar string
	// PresentationVar is the channel variable the dialplan sets to
	// ${CALLERID(pres)} before ringing anyone. Default "SCREENPOP_PRES".
	PresentationVar string
	// DIDVar is the channel variable holding the number the customer
	// dialled. Default "SCREENPOP_DID"; without it the extension the call
	// entered the inbound context with is used.
	DIDVar string
	// ShowUnknownPresentation shows the number of a caller whose
	// presentation the PBX never reported: no CALLERID(pres) in the
	// snapshots' channelvars, no PresentationVar, no ChannelCallerId. ARI
	// snapshots carry no presentation of their own, so on a PBX that reports
	// none a withheld number would arrive in clear: by default (false) such
	// a caller is withheld.
	ShowUnknownPresentation bool
	// Presentation, when set, is called once for each call as it is first
	// reported, saying whether the PBX reported the caller's presentation
	// (what tells IT that channelvars lacks CALLERID(pres)).
	Presentation func(known bool)
}

// Tracker is the call model of one Asterisk. It is not safe for concurrent
// use: one goroutine (the ARI session loop) owns it.
type Tracker struct {
	cfg      Config
	contexts map[string]bool
	chans    map[string]*channel // live channels by ID
	locals   map[string]*channel // live Local channel halves by name, to pair ;1 with ;2
	calls    map[string]*call    // calls in progress by inbound channel ID
	dirty    []*call             // calls the event being applied touched
	agents   map[string]string   // AgentOf's answers by endpoint ("": none); bounded
	sets     [2][]string         // scratch of ringingSet and consultSet
	seq      uint64
	out      []screenpop.CallEvent
}

// New builds a tracker. It does no I/O.
func New(cfg Config) *Tracker {
	if cfg.Source == "" {
		cfg.Source = DefaultSource
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AgentOf == nil {
		cfg.AgentOf = func(string) (string, bool) { return "", false }
	}
	if cfg.CallVar == "" {
		cfg.CallVar = DefaultCallVar
	}
	if cfg.PresentationVar == "" {
		cfg.PresentationVar = DefaultPresentationVar
	}
	if cfg.DIDVar == "" {
		cfg.DIDVar = DefaultDIDVar
	}
	t := &Tracker{
		cfg:      cfg,
		contexts: make(map[string]bool, len(cfg.InboundContexts)),
		chans:    map[string]*channel{},
		locals:   map[string]*channel{},
		calls:    map[string]*call{},
		agents:   map[string]string{},
	}
	for _, c := range cfg.InboundContexts {
		t.contexts[c] = true
	}
	return t
}

// Active is the number of calls in progress.
func (t *Tracker) Active() int { return len(t.calls) }

// Apply takes one event, in the order Asterisk sent it, and returns the call
// events it causes (often none).
func (t *Tracker) Apply(ev ari.Event) []screenpop.CallEvent {
	t.out = nil
	t.clearDirty()
	t.closeBatch(ev)
	switch e := ev.(type) {
	case *ari.ChannelCreated:
		t.onCreated(&e.Channel)
	case *ari.ChannelVarset:
		t.onVarset(e)
	case *ari.ChannelDialplan:
		t.onDialplan(e)
	case *ari.ChannelCallerID:
		t.onCallerID(e)
	case *ari.Dial:
		t.onDial(e)
	case *ari.ChannelHangupRequest:
		t.onHangupRequest(e)
	case *ari.ChannelDestroyed:
		t.onDestroyed(e)
	case *ari.BridgeBlindTransfer:
		t.onBlindTransfer(e)
	case *ari.BridgeAttendedTransfer:
		t.onAttendedTransfer(e)
	case *ari.ChannelStateChange:
		t.observe(&e.Channel)
	case *ari.ChannelConnectedLine:
		t.observe(&e.Channel)
	case *ari.ChannelEnteredBridge:
		t.observe(&e.Channel)
	case *ari.ChannelLeftBridge:
		t.observe(&e.Channel)
	default:
		// Device states, bridges, talking detection, DTMF...: nothing in
		// them changes who rings or who has the call.
		return t.out
	}
	t.flushAll()
	return t.out
}

// Restarted ends every call in progress as interrupted: the PBX restarted
// (or went down) and cut them, whatever stage they were at. The source
// calls it after a reconnect that found a PBX started anew, before Resync.
func (t *Tracker) Restarted() []screenpop.CallEvent {
	t.out = nil
	for _, c := range t.sortedCalls() {
		c.in.gone = true
		t.endAs(c, screenpop.OutcomeInterrupted)
	}
	for _, ch := range t.sortedChannels() {
		t.forget(ch)
	}
	t.clearDirty()
	return t.out
}

// Resync repairs the model after the event socket was down: channels holds
// every live channel (GET /ari/channels). Asterisk does not queue events for
// a disconnected socket, so whatever happened meanwhile is inferred:
//   - a call whose inbound channel is gone ended; its outcome comes from
//     what was known (ringing when last seen counts as abandoned);
//   - a call ringing now is reported ringing with the agents whose phones
//     ring now, even if the set did not change (a call that began while
//     disconnected is reported for the first time);
//   - a call answered now is reported answered (or transferred, when
//     another agent has it now), never ringing.
func (t *Tracker) Resync(channels []ari.ChannelData) []screenpop.CallEvent {
	t.out = nil
	live := make(map[string]bool, len(channels))
	for i := range channels {
		live[channels[i].ID] = true
	}
	// The begins of an open Dial batch may be among the lost events.
	for _, ch := range t.chans {
		ch.expect, ch.seen = 0, 0
	}
	// A call gone meanwhile is judged on how it stood when last seen,
	// before its legs are pruned.
	for _, c := range t.calls {
		if !live[c.id] {
			t.checkAbandoned(c)
		}
	}
	for _, ch := range t.sortedChannels() {
		if live[ch.id] {
			continue
		}
		if ch.leg == legRinging || ch.leg == legNone {
			// It stopped ringing while we were away; how is unknown, so it
			// does not vote on the outcome.
			ch.leg = legEnded
		}
		if c := ch.call; c != nil && c.in == ch {
			// Ended below, with the other calls, in call order.
			ch.gone = true
			continue
		}
		t.forget(ch)
	}

	snaps := make([]*ari.ChannelData, len(channels))
	for i := range channels {
		snaps[i] = &channels[i]
	}
	slices.SortStableFunc(snaps, func(a, b *ari.ChannelData) int {
		if c := cmp.Compare(createdAt(a), createdAt(b)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	for _, s := range snaps {
		t.register(s)
	}
	for _, s := range snaps {
		if ch := t.chans[s.ID]; ch.call == nil && t.isInboundLive(ch, s) {
			t.newCall(ch, s).fromResync = true
		}
	}
	for _, s := range snaps {
		ch := t.chans[s.ID]
		if ch.call != nil {
			continue
		}
		if c := t.callOfUnlinked(ch); c != nil {
			t.adopt(ch, c, false)
		}
	}

	for _, c := range t.sortedCalls() {
		if c.in.gone {
			t.end(c)
			continue
		}
		for _, l := range t.sortedLegs(c) {
			switch l.state {
			case "Up":
				if l.leg != legAnswered {
					l.leg = legAnswered
					l.answeredAt = t.next()
				}
			case "Busy":
				t.finish(l, "BUSY")
			default:
				if l.leg == legNone {
					l.leg = legRinging
				}
			}
		}
		t.resyncCall(c)
	}
	t.clearDirty() // every call was looked at
	return t.out
}

// resyncCall reports where a live call stands now.
func (t *Tracker) resyncCall(c *call) {
	var newest *channel
	holds := false
	for _, l := range t.sortedLegs(c) {
		if l.leg != legAnswered || !t.connected(c, l) {
			continue
		}
		agent, ok := t.agentDown(l, 0)
		if !ok || agent == "" {
			continue
		}
		if c.answered && agent == c.agent {
			holds = true
		}
		if newest == nil || l.answeredAt > newest.answeredAt {
			newest = l
		}
	}
	switch {
	case c.answered && c.agent == "" && newest == nil:
		// Let go of by a blind transfer that nobody has taken yet: what
		// rings for it now, as for a call never answered.
		t.flush(c, true)
	case c.answered && (holds || newest == nil):
		t.emit(c, screenpop.EventAnswered, func(ev *screenpop.CallEvent) { ev.Agent = c.agent })
	case newest != nil:
		agent, _ := t.agentDown(newest, 0)
		t.connect(c, agent)
	default:
		t.flush(c, true)
	}
}

// emit appends one call event for c.
func (t *Tracker) emit(c *call, kind screenpop.CallEventKind, fill func(*screenpop.CallEvent)) {
	ev := screenpop.CallEvent{
		Kind:   kind,
		CallID: c.id,
		Caller: t.callerOf(c),
		DID:    c.didOrExten(),
		Source: t.cfg.Source,
		At:     t.cfg.Now(),
	}
	if fill != nil {
		fill(&ev)
	}
	if !c.reported && t.cfg.Presentation != nil {
		t.cfg.Presentation(c.presKnown)
	}
	c.reported = true
	t.out = append(t.out, ev)
}

func (t *Tracker) next() uint64 {
	t.seq++
	return t.seq
}

func (t *Tracker) sortedCalls() []*call {
	out := make([]*call, 0, len(t.calls))
	for _, c := range t.calls {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *call) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

func (t *Tracker) sortedChannels() []*channel {
	out := make([]*channel, 0, len(t.chans))
	for _, ch := range t.chans {
		out = append(out, ch)
	}
	slices.SortFunc(out, func(a, b *channel) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

func (t *Tracker) sortedLegs(c *call) []*channel {
	out := make([]*channel, 0, len(c.legs))
	for _, l := range c.legs {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b *channel) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

func createdAt(s *ari.ChannelData) int64 {
	if s.Creationtime == nil {
		return 0
	}
	return s.Creationtime.Seconds*1e9 + int64(s.Creationtime.Nanos)
}

// maxCachedEndpoints bounds Tracker.agents: a PBX has a bounded set of
// endpoints, but the names come from it, so the cache starts over when
// full rather than grow.
const maxCachedEndpoints = 4096

// endpointAgent maps a channel name to its agent. AgentOf's answers are
// kept by endpoint, not by channel name: every channel has a name of its
// own ("PJSIP/1001-0000002a"), and what they share is the endpoint.
func (t *Tracker) endpointAgent(name string) string {
	endpoint := telephony.EndpointOfChannel(name)
	if agent, ok := t.agents[endpoint]; ok {
		return agent
	}
	agent, ok := t.cfg.AgentOf(endpoint)
	if !ok {
		agent = ""
	}
	if len(t.agents) >= maxCachedEndpoints {
		clear(t.agents)
	}
	t.agents[endpoint] = agent
	return agent
}
