package callstate

import (
	"strings"

	ari "github.com/CyCoreSystems/ari/v5"
)

// batchChannel is the channel whose Dial batch an event may close: the one
// the event is about (for Dial, the dialling side).
func batchChannel(ev ari.Event) (id string, dialBegin bool) {
	switch e := ev.(type) {
	case *ari.Dial:
		return e.Caller.ID, e.Dialstatus == ""
	case *ari.ChannelVarset:
		return e.Channel.ID, false
	case *ari.ChannelDialplan:
		return e.Channel.ID, false
	case *ari.ChannelStateChange:
		return e.Channel.ID, false
	case *ari.ChannelHangupRequest:
		return e.Channel.ID, false
	case *ari.ChannelDestroyed:
		return e.Channel.ID, false
	case *ari.ChannelConnectedLine:
		return e.Channel.ID, false
	case *ari.ChannelCallerID:
		return e.Channel.ID, false
	}
	return "", false
}

// closeBatch ends a half-reported Dial batch when its dialling channel moves
// on without the remaining begins (a target that could not be called sends
// none), reporting the ringing set before the event is applied so the
// ringing comes before whatever the event causes.
func (t *Tracker) closeBatch(ev ari.Event) {
	id, begin := batchChannel(ev)
	ch := t.chans[id]
	if ch == nil || ch.seen == 0 || begin {
		return
	}
	ch.expect, ch.seen = 0, 0
	if c := ch.call; c != nil && !held(c) {
		t.flush(c, false)
	}
}

func (t *Tracker) onCreated(s *ari.ChannelData) {
	ch := t.register(s)
	if ch != nil && ch.call == nil && t.isInboundNew(ch, s) {
		t.newCall(ch, s)
	}
}

func (t *Tracker) onVarset(e *ari.ChannelVarset) {
	ch := t.observe(&e.Channel)
	if c := inboundCall(ch); c != nil {
		t.applyVar(c, e.Variable, e.Value)
		return
	}
	if ch != nil && strings.TrimLeft(e.Variable, "_") == "ATTENDEDTRANSFER" {
		t.startConsult(ch, e.Value)
	}
}

// startConsult: Asterisk's attended transfer (the atxfer feature) puts the
// agent's leg on hold and dials the colleague through a Local channel, on
// which it sets ATTENDEDTRANSFER to the agent's channel name. That Local
// channel and what it dials join the agent's call as a consultation.
func (t *Tracker) startConsult(ch *channel, transferer string) {
	if ch.call != nil || transferer == "" {
		return
	}
	var from *channel
	for _, k := range t.chans {
		if k.name == transferer && !k.gone {
			from = k
			break
		}
	}
	if from == nil || from.call == nil || from.call.in == from || !from.call.consulting() {
		return // not an agent on a customer's call: an agent's own transfer
	}
	setParent(ch, nil)
	ch.consult = true
	if ch.leg == legNone {
		ch.leg = legRinging
	}
	t.attach(ch, from.call)
}

// applyVar takes in a variable of an inbound channel.
func (t *Tracker) applyVar(c *call, name, value string) {
	switch name = strings.TrimLeft(name, "_"); name {
	case t.cfg.PresentationVar, "CALLERID(pres)":
		if value != "" {
			c.setPresentation(presentationRestricted(value))
		}
	case t.cfg.DIDVar:
		c.did = value
	case "DIALSTATUS", "QUEUESTATUS":
		// Set empty when the application starts and to the result when it
		// returns.
		if value != "" {
			c.appStatus, c.inApp = strings.ToUpper(value), false
		}
	}
}

func (t *Tracker) onDialplan(e *ari.ChannelDialplan) {
	ch := t.observe(&e.Channel)
	if ch == nil {
		return
	}
	app := strings.ToLower(e.DialplanApp)
	if c := inboundCall(ch); c != nil {
		c.inApp = dialingApps[app]
	}
	ch.expect, ch.seen = 0, 0
	if app == "dial" {
		ch.expect = dialTargets(e.DialplanAppData)
	}
}

// dialTargets counts the destinations of Dial's argument
// ("PJSIP/1001&PJSIP/1002,30" has two).
func dialTargets(data string) int {
	targets, _, _ := strings.Cut(data, ",")
	n := 0
	for _, d := range strings.Split(targets, "&") {
		if strings.TrimSpace(d) != "" {
			n++
		}
	}
	return n
}

func (t *Tracker) onCallerID(e *ari.ChannelCallerID) {
	ch := t.observe(&e.Channel)
	if c := inboundCall(ch); c != nil {
		c.setPresentation(presentationCodeRestricted(e.CallerPresentation))
	}
}

func (t *Tracker) onDial(e *ari.Dial) {
	peer := t.register(&e.Peer)
	caller := t.register(&e.Caller)
	if peer == nil || caller == nil {
		return // an originate: nobody's call dialled this channel
	}
	if peer.parent == nil && !peer.adopted && peer != caller {
		setParent(peer, caller)
	}
	if c := caller.call; c != nil && peer.call != c {
		t.attach(peer, c)
	}
	switch status := strings.ToUpper(e.Dialstatus); status {
	case "":
		if peer.leg == legNone {
			peer.leg = legRinging
		}
		if c := peer.call; c != nil && peer.agent != "" {
			delete(c.quiet, peer.agent) // rings anew: its leaving counts again
			delete(c.rangOut, peer.agent)
		}
		if caller.expect > 0 {
			if caller.seen++; caller.seen >= caller.expect {
				caller.expect, caller.seen = 0, 0
			}
		}
	case "RINGING", "PROGRESS", "PROCEEDING":
		if peer.leg == legNone {
			peer.leg = legRinging
		}
	case "ANSWER":
		t.answer(peer)
	default:
		t.finish(peer, status)
	}
}

// answer records a picked-up leg and, when that connects the caller to
// someone, the answer (or transfer) of the call.
func (t *Tracker) answer(p *channel) {
	if p.leg != legAnswered {
		p.leg, p.answeredAt = legAnswered, t.next()
	}
	c := p.call
	if c == nil || c.ended || !t.connected(c, p) {
		return
	}
	if agent, ok := t.agentDown(p, 0); ok {
		t.connect(c, agent)
	}
}

func (t *Tracker) onHangupRequest(e *ari.ChannelHangupRequest) {
	ch := t.observe(&e.Channel)
	if c := inboundCall(ch); c != nil {
		t.checkAbandoned(c)
		c.hungUp = true
	}
}

func (t *Tracker) onDestroyed(e *ari.ChannelDestroyed) {
	ch := t.chans[e.Channel.ID]
	if ch == nil {
		return
	}
	if c := inboundCall(ch); c != nil {
		t.checkAbandoned(c)
		ch.gone = true
		t.end(c)
		return
	}
	t.touch(ch.call)
	if ch.leg == legRinging || ch.leg == legNone {
		t.finish(ch, causeStatus(e.Cause))
	}
	t.forget(ch)
}

// onBlindTransfer: the agent sends the caller to another extension and
// lets go at once. Usually the caller's own channel leaves the bridge and
// runs that extension, whose Dial then reaches the new agent as one more
// leg of the call; when Asterisk puts a Local channel in the transferer's
// place instead (replace_channel), that channel joins the call. The agent
// is told at once (an empty ringing set from them), the target's phone
// pops while it rings, and the transfer is reported when the target
// answers, which is when the call is theirs.
func (t *Tracker) onBlindTransfer(e *ari.BridgeBlindTransfer) {
	if !strings.EqualFold(e.Result, "Success") {
		return
	}
	c := t.callOf(&e.Transferee)
	if c == nil {
		c = t.callOf(&e.Channel)
	}
	if c == nil {
		return
	}
	if c.consulting() {
		from := c.agent
		if ch := t.chans[e.Channel.ID]; ch != nil && ch.call == c {
			if agent, ok := t.agentDown(ch, 0); ok && agent != "" {
				from = agent
			}
		}
		c.agent, c.transferFrom, c.releasing = "", from, true
		c.announced = nil
		clear(c.quiet)
		clear(c.rangOut)
		t.touch(c)
	}
	if e.ReplaceChannel.ID == "" {
		return
	}
	if rc := t.register(&e.ReplaceChannel); rc != nil {
		t.adopt(rc, c, true)
	}
}

// onAttendedTransfer: the transferer talked to the target first and then
// joined the two; the target is connected to the caller from now on.
// Whether the phone sent the transfer on the caller's side or on the
// consultation side decides which of transferee and transfer_target is the
// caller's, so the new agent is whichever of the two is not in the call.
//
// The target is the first of transfer_target, transferee and the second
// leg that is not the caller, not the transferring agent and not a plain
// leg of the call; Asterisk may leave transfer_target out when the
// colleague was consulted through a Local channel (the atxfer feature),
// and then it is the colleague who answered the consultation.
func (t *Tracker) onAttendedTransfer(e *ari.BridgeAttendedTransfer) {
	if !strings.EqualFold(e.Result, "Success") || strings.EqualFold(e.DestinationType, "threeway") {
		// In a three-way the transferer stays on the call and keeps it.
		return
	}
	var c *call
	for _, s := range []*ari.ChannelData{&e.Transferee, &e.TransferTarget, &e.TransfererFirstLeg, &e.TransfererSecondLeg} {
		if c = t.callOf(s); c != nil {
			break
		}
	}
	if c == nil {
		return
	}
	tc, agent := t.attendedTarget(c, e)
	if tc == nil {
		return
	}
	t.adopt(tc, c, true)
	t.connect(c, agent)
}

func (t *Tracker) attendedTarget(c *call, e *ari.BridgeAttendedTransfer) (*channel, string) {
	any := func(legState) bool { return true }
	for _, s := range []*ari.ChannelData{&e.TransferTarget, &e.Transferee, &e.TransfererSecondLeg} {
		ch := t.register(s)
		if ch == nil || ch == c.in || (ch.call == c && !t.inConsult(c, ch, any)) {
			continue
		}
		if agent, ok := t.agentDown(ch, 0); ok && agent != "" && agent != c.agent {
			return ch, agent
		}
	}
	var best *channel
	for _, l := range c.legs {
		if l.agent != "" && l.agent != c.agent && l.leg == legAnswered && t.inConsult(c, l, answeredOnly) &&
			(best == nil || l.answeredAt > best.answeredAt) {
			best = l
		}
	}
	if best == nil {
		return nil, ""
	}
	return best, best.agent
}

// callOf is the call a snapshot's channel takes part in.
func (t *Tracker) callOf(s *ari.ChannelData) *call {
	if ch := t.chans[s.ID]; ch != nil {
		return ch.call
	}
	return nil
}
