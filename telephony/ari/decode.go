package ari

import (
	"encoding/json"
	"unicode/utf8"

	arilib "github.com/CyCoreSystems/ari/v5"
)

// eventDecoder decodes event frames. ari/v5's DecodeEvent was about four
// fifths of the ARI source's time (encoding/json with reflection, twice
// for the type, once more for every channel snapshot, every field of
// every snapshot); the frames the call model reads are decoded here by
// hand instead, in one pass, keeping only what screenpop reads (which
// fields: decodedFields in decode_test.go) and validating the rest.
//
// It is sure of itself or it does not answer: anything it is not sure
// about (a type it does not decode, a key in another case or written
// with escapes, a key twice, a null where encoding/json would do
// something of its own, a number that is no int, a timestamp not in
// Asterisk's own form, invalid JSON anywhere, …) goes to ari.DecodeEvent,
// which decides and words the error. Whatever it accepts, DecodeEvent
// accepts too, with the same values in every field screenpop reads:
// TestDecodeRecordings and FuzzDecodeEvent check that.
//
// One decoder belongs to one goroutine (the session loop).
type eventDecoder struct {
	data  []byte
	i     int
	depth int
	// strs interns the short strings of the frames: channel IDs and names,
	// states, numbers, contexts, variable names and values repeat across
	// the events of a call, and then cost no allocation. Bounded: cleared
	// when full.
	strs map[string]string
	// f and discard are the decoder's scratch: the fields of the frame in
	// hand, and the snapshots only validated.
	f       frameFields
	discard snapshot
}

// Bounds of the decoder.
const (
	maxInterned    = 4096 // strings in eventDecoder.strs
	maxInternedLen = 64   // longer strings are not interned
	maxFastDepth   = 32   // deeper JSON is left to encoding/json
)

func newEventDecoder() *eventDecoder {
	return &eventDecoder{strs: make(map[string]string, 256)}
}

// decode decodes one frame as ari.DecodeEvent does: the event, nil for a
// type ari/v5 does not know, or an error.
func (d *eventDecoder) decode(frame []byte) (arilib.Event, error) {
	if ev, ok := d.fast(frame); ok {
		return ev, nil
	}
	return arilib.DecodeEvent(frame)
}

// snapshot is what the decoder keeps of a channel snapshot (ChannelData).
type snapshot struct {
	id, name, state, accountcode string
	hasCaller, hasConnected      bool
	hasDialplan                  bool
	caller, connected            callerID
	context, exten               string
	priority                     int64
	vars                         map[string]string
}

type callerID struct{ name, number string }

// snapshotBox holds a snapshot's pointed-to parts.
type snapshotBox struct {
	caller, connected arilib.CallerID
	dialplan          arilib.DialplanCEP
}

// boxed is an event with the boxes of its snapshots: one allocation.
type boxed[E any, B any] struct {
	ev    E
	boxes B
}

// data is the snapshot as ari/v5's ChannelData, with the fields the fast
// decoder keeps, its pointed-to parts in b.
func (s *snapshot) data(b *snapshotBox) arilib.ChannelData {
	cd := arilib.ChannelData{ID: s.id, Name: s.name, State: s.state, Accountcode: s.accountcode, ChannelVars: s.vars}
	if s.hasCaller {
		b.caller.Name, b.caller.Number = s.caller.name, s.caller.number
		cd.Caller = &b.caller
	}
	if s.hasConnected {
		b.connected.Name, b.connected.Number = s.connected.name, s.connected.number
		cd.Connected = &b.connected
	}
	if s.hasDialplan {
		b.dialplan.Context, b.dialplan.Exten, b.dialplan.Priority = s.context, s.exten, s.priority
		cd.Dialplan = &b.dialplan
	}
	return cd
}

// frameFields is the union of the top-level fields of the event types the
// fast decoder takes; each key means the same Go type in every one of
// them (TestFastDecoderFields).
type frameFields struct {
	seen                                uint64
	typ, application, dialog, node      string
	variable, value                     string
	dialplanApp, dialplanAppData        string
	dialstatus, result, destinationType string
	cause, callerPresentation           int64
	deviceName, deviceState             string
	channel, caller, peer               snapshot
	replaceChannel, transferee          snapshot
	transferTarget, firstLeg, secondLeg snapshot
}

// fast decodes frame if it is sure to decode it as ari.DecodeEvent would.
func (d *eventDecoder) fast(frame []byte) (arilib.Event, bool) {
	d.data, d.i, d.depth = frame, 0, 0
	d.f = frameFields{}
	f := &d.f
	ok := d.top(f)
	d.space()
	ok = ok && d.i == len(d.data) && f.typ != ""
	d.data = nil
	if !ok {
		return nil, false
	}
	ed := arilib.EventData{Type: f.typ, Application: f.application, Dialog: f.dialog, Node: f.node}
	switch f.typ {
	case arilib.Events.ChannelCreated:
		a := &boxed[arilib.ChannelCreated, [1]snapshotBox]{}
		a.ev = arilib.ChannelCreated{EventData: ed, Channel: f.channel.data(&a.boxes[0])}
		return &a.ev, true
	case arilib.Events.ChannelVarset:
		a := &boxed[arilib.ChannelVarset, [1]snapshotBox]{}
		a.ev = arilib.ChannelVarset{EventData: ed, Channel: f.channel.data(&a.boxes[0]), Variable: f.variable, Value: f.value}
		return &a.ev, true
	case arilib.Events.ChannelDialplan:
		a := &boxed[arilib.ChannelDialplan, [1]snapshotBox]{}
		a.ev = arilib.ChannelDialplan{EventData: ed, Channel: f.channel.data(&a.boxes[0]),
			DialplanApp: f.dialplanApp, DialplanAppData: f.dialplanAppData}
		return &a.ev, true
	case arilib.Events.ChannelCallerID:
		a := &boxed[arilib.ChannelCallerID, [1]snapshotBox]{}
		a.ev = arilib.ChannelCallerID{EventData: ed, Channel: f.channel.data(&a.boxes[0]),
			CallerPresentation: int(f.callerPresentation)}
		return &a.ev, true
	case arilib.Events.Dial:
		a := &boxed[arilib.Dial, [2]snapshotBox]{}
		a.ev = arilib.Dial{EventData: ed, Caller: f.caller.data(&a.boxes[0]), Peer: f.peer.data(&a.boxes[1]),
			Dialstatus: f.dialstatus}
		return &a.ev, true
	case arilib.Events.ChannelHangupRequest:
		a := &boxed[arilib.ChannelHangupRequest, [1]snapshotBox]{}
		a.ev = arilib.ChannelHangupRequest{EventData: ed, Channel: f.channel.data(&a.boxes[0]), Cause: int(f.cause)}
		return &a.ev, true
	case arilib.Events.ChannelDestroyed:
		a := &boxed[arilib.ChannelDestroyed, [1]snapshotBox]{}
		a.ev = arilib.ChannelDestroyed{EventData: ed, Channel: f.channel.data(&a.boxes[0]), Cause: int(f.cause)}
		return &a.ev, true
	case arilib.Events.ChannelStateChange:
		a := &boxed[arilib.ChannelStateChange, [1]snapshotBox]{}
		a.ev = arilib.ChannelStateChange{EventData: ed, Channel: f.channel.data(&a.boxes[0])}
		return &a.ev, true
	case arilib.Events.ChannelConnectedLine:
		a := &boxed[arilib.ChannelConnectedLine, [1]snapshotBox]{}
		a.ev = arilib.ChannelConnectedLine{EventData: ed, Channel: f.channel.data(&a.boxes[0])}
		return &a.ev, true
	case arilib.Events.ChannelEnteredBridge:
		a := &boxed[arilib.ChannelEnteredBridge, [1]snapshotBox]{}
		a.ev = arilib.ChannelEnteredBridge{EventData: ed, Channel: f.channel.data(&a.boxes[0])}
		return &a.ev, true
	case arilib.Events.ChannelLeftBridge:
		a := &boxed[arilib.ChannelLeftBridge, [1]snapshotBox]{}
		a.ev = arilib.ChannelLeftBridge{EventData: ed, Channel: f.channel.data(&a.boxes[0])}
		return &a.ev, true
	case arilib.Events.BridgeBlindTransfer:
		a := &boxed[arilib.BridgeBlindTransfer, [3]snapshotBox]{}
		a.ev = arilib.BridgeBlindTransfer{EventData: ed, Channel: f.channel.data(&a.boxes[0]),
			Transferee: f.transferee.data(&a.boxes[1]), ReplaceChannel: f.replaceChannel.data(&a.boxes[2]), Result: f.result}
		return &a.ev, true
	case arilib.Events.BridgeAttendedTransfer:
		a := &boxed[arilib.BridgeAttendedTransfer, [5]snapshotBox]{}
		a.ev = arilib.BridgeAttendedTransfer{EventData: ed, Result: f.result, DestinationType: f.destinationType,
			Transferee: f.transferee.data(&a.boxes[0]), TransferTarget: f.transferTarget.data(&a.boxes[1]),
			TransfererFirstLeg: f.firstLeg.data(&a.boxes[2]), TransfererSecondLeg: f.secondLeg.data(&a.boxes[3]),
			ReplaceChannel: f.replaceChannel.data(&a.boxes[4])}
		return &a.ev, true
	case arilib.Events.DeviceStateChanged:
		return &arilib.DeviceStateChanged{EventData: ed,
			DeviceState: arilib.DeviceStateData{Name: f.deviceName, State: f.deviceState}}, true
	case arilib.Events.BridgeCreated:
		return &arilib.BridgeCreated{EventData: ed}, true
	case arilib.Events.BridgeDestroyed:
		return &arilib.BridgeDestroyed{EventData: ed}, true
	case arilib.Events.ApplicationReplaced:
		return &arilib.ApplicationReplaced{EventData: ed}, true
	}
	return nil, false
}

// fastTypes are the event types the fast decoder takes.
var fastTypes = []string{
	arilib.Events.ChannelCreated, arilib.Events.ChannelVarset, arilib.Events.ChannelDialplan,
	arilib.Events.ChannelCallerID, arilib.Events.Dial, arilib.Events.ChannelHangupRequest,
	arilib.Events.ChannelDestroyed, arilib.Events.ChannelStateChange, arilib.Events.ChannelConnectedLine,
	arilib.Events.ChannelEnteredBridge, arilib.Events.ChannelLeftBridge, arilib.Events.BridgeBlindTransfer,
	arilib.Events.BridgeAttendedTransfer, arilib.Events.DeviceStateChanged, arilib.Events.BridgeCreated,
	arilib.Events.BridgeDestroyed, arilib.Events.ApplicationReplaced,
}

// JSON names of the structs the fast decoder reads, by level: an unknown
// key that matches one of them in another case is one encoding/json
// would take (it matches keys case-insensitively), so such a frame is
// left to it. TestFastDecoderFields checks them against ari/v5's types.
var (
	topNames = names("application", "dialog", "asterisk_id", "timestamp", "type",
		"channel", "variable", "value", "dialplan_app", "dialplan_app_data",
		"caller_presentation", "caller_presentation_txt", "caller", "dialstatus", "dialstring",
		"forward", "forwarded", "peer", "cause", "soft", "cause_txt", "bridge", "context", "exten",
		"is_external", "replace_channel", "result", "transferee", "destination_application",
		"destination_bridge", "destination_link_first_leg", "destination_link_second_leg",
		"destination_threeway_bridge", "destination_threeway_channel", "destination_type",
		"transfer_target", "transferer_first_leg", "transferer_first_leg_bridge",
		"transferer_second_leg", "transferer_second_leg_bridge", "device_state")
	channelNames  = names("key", "id", "name", "state", "accountcode", "caller", "connected", "creationtime", "dialplan", "channelvars")
	callerNames   = names("name", "number")
	dialplanNames = names("context", "exten", "priority")
	bridgeNames   = names("key", "id", "bridge_class", "bridge_type", "channels", "creator", "name", "technology")
	deviceNames   = names("key", "name", "state")
)

func names(n ...string) map[string]bool {
	out := make(map[string]bool, len(n))
	for _, s := range n {
		out[s] = true
	}
	return out
}

// top reads the event object into f.
func (d *eventDecoder) top(f *frameFields) bool {
	d.space()
	return d.fieldsSeen(&f.seen, func(key []byte) (uint64, bool) {
		switch string(key) {
		case "type":
			return 1 << 0, d.str(&f.typ)
		case "application":
			return 1 << 1, d.str(&f.application)
		case "dialog":
			return 1 << 2, d.str(&f.dialog)
		case "asterisk_id":
			return 1 << 3, d.str(&f.node)
		case "timestamp":
			return 1 << 4, d.dateTime()
		case "channel":
			return 1 << 5, d.snapshot(&f.channel)
		case "variable":
			return 1 << 6, d.str(&f.variable)
		case "value":
			return 1 << 7, d.str(&f.value)
		case "dialplan_app":
			return 1 << 8, d.str(&f.dialplanApp)
		case "dialplan_app_data":
			return 1 << 9, d.str(&f.dialplanAppData)
		case "caller_presentation":
			return 1 << 10, d.integer(&f.callerPresentation)
		case "caller_presentation_txt":
			return 1 << 11, d.str(nil)
		case "caller":
			return 1 << 12, d.snapshot(&f.caller)
		case "dialstatus":
			return 1 << 13, d.str(&f.dialstatus)
		case "dialstring":
			return 1 << 14, d.str(nil)
		case "forward":
			return 1 << 15, d.str(nil)
		case "forwarded":
			return 1 << 16, d.snapshot(nil)
		case "peer":
			return 1 << 17, d.snapshot(&f.peer)
		case "cause":
			return 1 << 18, d.integer(&f.cause)
		case "soft":
			return 1 << 19, d.boolean()
		case "cause_txt":
			return 1 << 20, d.str(nil)
		case "bridge":
			return 1 << 21, d.bridge()
		case "context":
			return 1 << 22, d.str(nil)
		case "exten":
			return 1 << 23, d.str(nil)
		case "is_external":
			return 1 << 24, d.boolean()
		case "replace_channel":
			return 1 << 25, d.snapshot(&f.replaceChannel)
		case "result":
			return 1 << 26, d.str(&f.result)
		case "transferee":
			return 1 << 27, d.snapshot(&f.transferee)
		case "destination_application":
			return 1 << 28, d.str(nil)
		case "destination_bridge":
			return 1 << 29, d.str(nil)
		case "destination_link_first_leg":
			return 1 << 30, d.snapshot(nil)
		case "destination_link_second_leg":
			return 1 << 31, d.snapshot(nil)
		case "destination_threeway_bridge":
			return 1 << 32, d.bridge()
		case "destination_threeway_channel":
			return 1 << 33, d.snapshot(nil)
		case "destination_type":
			return 1 << 34, d.str(&f.destinationType)
		case "transfer_target":
			return 1 << 35, d.snapshot(&f.transferTarget)
		case "transferer_first_leg":
			return 1 << 36, d.snapshot(&f.firstLeg)
		case "transferer_first_leg_bridge":
			return 1 << 37, d.bridge()
		case "transferer_second_leg":
			return 1 << 38, d.snapshot(&f.secondLeg)
		case "transferer_second_leg_bridge":
			return 1 << 39, d.bridge()
		case "device_state":
			return 1 << 40, d.deviceState(f)
		default:
			return 0, d.unknown(key, topNames)
		}
	})
}

// snapshot reads a channel snapshot into s (nil: only validated). A null
// is a zero snapshot, as ChannelData.UnmarshalJSON makes it.
func (d *eventDecoder) snapshot(s *snapshot) bool {
	if d.null() {
		return true
	}
	keep := s != nil
	if !keep {
		s = &d.discard
	}
	return d.fields(func(key []byte) (uint64, bool) {
		switch string(key) {
		case "id":
			return 1 << 0, d.str(keepStr(keep, &s.id))
		case "name":
			return 1 << 1, d.str(keepStr(keep, &s.name))
		case "state":
			return 1 << 2, d.str(keepStr(keep, &s.state))
		case "accountcode":
			return 1 << 3, d.str(keepStr(keep, &s.accountcode))
		case "caller":
			return 1 << 4, d.callerID(&s.hasCaller, &s.caller, keep)
		case "connected":
			return 1 << 5, d.callerID(&s.hasConnected, &s.connected, keep)
		case "creationtime":
			return 1 << 6, d.dateTime()
		case "dialplan":
			return 1 << 7, d.dialplan(s, keep)
		case "channelvars":
			return 1 << 8, d.vars(&s.vars, keep)
		case "key":
			return 0, false // not Asterisk's: ari-proxy's
		default:
			return 0, d.unknown(key, channelNames)
		}
	})
}

func keepStr(keep bool, dst *string) *string {
	if keep {
		return dst
	}
	return nil
}

// callerID reads a *CallerID: null leaves it nil.
func (d *eventDecoder) callerID(has *bool, c *callerID, keep bool) bool {
	if d.null() {
		return true
	}
	*has = true
	return d.fields(func(key []byte) (uint64, bool) {
		switch string(key) {
		case "name":
			return 1, d.str(keepStr(keep, &c.name))
		case "number":
			return 2, d.str(keepStr(keep, &c.number))
		default:
			return 0, d.unknown(key, callerNames)
		}
	})
}

// dialplan reads a *DialplanCEP: null leaves it nil.
func (d *eventDecoder) dialplan(s *snapshot, keep bool) bool {
	if d.null() {
		return true
	}
	s.hasDialplan = true
	return d.fields(func(key []byte) (uint64, bool) {
		switch string(key) {
		case "context":
			return 1, d.str(keepStr(keep, &s.context))
		case "exten":
			return 2, d.str(keepStr(keep, &s.exten))
		case "priority":
			return 4, d.integer(&s.priority)
		default:
			return 0, d.unknown(key, dialplanNames)
		}
	})
}

// vars reads channelvars, a map[string]string: null leaves it nil, {} is
// empty. A null value or a key twice is left to encoding/json.
func (d *eventDecoder) vars(dst *map[string]string, keep bool) bool {
	if d.null() {
		return true
	}
	more, ok := d.objectStart()
	if !ok {
		return false
	}
	m := map[string]string{}
	for ok && more {
		var k, v string
		if d.peek() != '"' || !d.str(&k) {
			return false
		}
		d.space()
		if d.next() != ':' {
			return false
		}
		d.space()
		if d.peek() != '"' || !d.str(&v) {
			return false
		}
		if _, dup := m[k]; dup {
			return false
		}
		m[k] = v
		more, ok = d.objectNext()
	}
	if ok && keep {
		*dst = m
	}
	return ok
}

// bridge validates a BridgeData (screenpop reads none of it).
func (d *eventDecoder) bridge() bool {
	if d.null() {
		return true
	}
	return d.fields(func(key []byte) (uint64, bool) {
		switch string(key) {
		case "id":
			return 1 << 0, d.str(nil)
		case "bridge_class":
			return 1 << 1, d.str(nil)
		case "bridge_type":
			return 1 << 2, d.str(nil)
		case "channels":
			return 1 << 3, d.stringArray()
		case "creator":
			return 1 << 4, d.str(nil)
		case "name":
			return 1 << 5, d.str(nil)
		case "technology":
			return 1 << 6, d.str(nil)
		case "key":
			return 0, false
		default:
			return 0, d.unknown(key, bridgeNames)
		}
	})
}

// deviceState reads a DeviceStateData.
func (d *eventDecoder) deviceState(f *frameFields) bool {
	if d.null() {
		return true
	}
	return d.fields(func(key []byte) (uint64, bool) {
		switch string(key) {
		case "name":
			return 1, d.str(&f.deviceName)
		case "state":
			return 2, d.str(&f.deviceState)
		case "key":
			return 0, false
		default:
			return 0, d.unknown(key, deviceNames)
		}
	})
}

// fields reads an object whose keys field reads, each value in turn:
// field returns the key's bit (0 for a key it skipped) and whether the
// value was read. A key twice is left to encoding/json.
func (d *eventDecoder) fields(field func(key []byte) (uint64, bool)) bool {
	var seen uint64
	return d.fieldsSeen(&seen, field)
}

// fieldsSeen is fields with the keys seen kept in *seen.
func (d *eventDecoder) fieldsSeen(seen *uint64, field func(key []byte) (uint64, bool)) bool {
	more, ok := d.objectStart()
	for ok && more {
		var key []byte
		if key, ok = d.key(); !ok {
			return false
		}
		var bit uint64
		if bit, ok = field(key); !ok || *seen&bit != 0 {
			return false
		}
		*seen |= bit
		more, ok = d.objectNext()
	}
	return ok
}

// unknown skips the value of a key the struct at this level does not
// have, unless encoding/json would take it for one of its fields in
// another case.
func (d *eventDecoder) unknown(key []byte, known map[string]bool) bool {
	for i, c := range key {
		if 'A' <= c && c <= 'Z' {
			var buf [64]byte
			if len(key) > len(buf) {
				break // longer than any field name
			}
			lower := buf[:len(key)]
			copy(lower, key)
			for j := i; j < len(lower); j++ {
				if c := lower[j]; 'A' <= c && c <= 'Z' {
					lower[j] = c + 'a' - 'A'
				}
			}
			if known[string(lower)] {
				return false
			}
			break
		}
	}
	return d.skip()
}

// Scanning.

func (d *eventDecoder) peek() byte {
	if d.i < len(d.data) {
		return d.data[d.i]
	}
	return 0
}

func (d *eventDecoder) next() byte {
	c := d.peek()
	d.i++
	return c
}

// space skips JSON white space.
func (d *eventDecoder) space() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// objectStart reads the '{' of an object; more says it has members.
func (d *eventDecoder) objectStart() (more, ok bool) {
	if d.next() != '{' {
		return false, false
	}
	d.space()
	if d.peek() == '}' {
		d.i++
		return false, true
	}
	return true, true
}

// objectNext reads what follows a member: ',' (more) or '}'.
func (d *eventDecoder) objectNext() (more, ok bool) {
	d.space()
	switch d.next() {
	case ',':
		d.space()
		return true, true
	case '}':
		return false, true
	}
	return false, false
}

// key reads `"key":` and leaves the decoder at the value. Only plain ASCII
// keys: encoding/json unescapes keys and folds non-ASCII letters before
// it matches them (U+212A is a K), so those are left to it.
func (d *eventDecoder) key() ([]byte, bool) {
	if d.next() != '"' {
		return nil, false
	}
	start := d.i
	for ; d.i < len(d.data); d.i++ {
		switch c := d.data[d.i]; {
		case !special[c]:
		case c == '"':
			key := d.data[start:d.i]
			d.i++
			d.space()
			if d.next() != ':' {
				return nil, false
			}
			d.space()
			return key, true
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return nil, false
		}
	}
	return nil, false
}

// null reads a null if there is one.
func (d *eventDecoder) null() bool {
	if len(d.data)-d.i >= 4 && string(d.data[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

// str reads a string into *dst (nil: only validated), or a null, which
// leaves a string field as it is.
func (d *eventDecoder) str(dst *string) bool {
	if d.null() {
		return true
	}
	if d.peek() != '"' {
		return false
	}
	start := d.i
	plain := true
	j := start + 1
	for ; j < len(d.data); j++ {
		c := d.data[j]
		if !special[c] {
			continue
		}
		if c == '"' {
			break
		}
		switch {
		case c < 0x20:
			return false
		case c >= utf8.RuneSelf:
			plain = false
		case c == '\\':
			plain = false
			if j+1 >= len(d.data) {
				return false
			}
			switch d.data[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j++
			case 'u':
				if j+5 >= len(d.data) {
					return false
				}
				for _, h := range d.data[j+2 : j+6] {
					if !isHexDigit(h) {
						return false
					}
				}
				j += 5
			default:
				return false
			}
		}
	}
	if j >= len(d.data) {
		return false
	}
	d.i = j + 1
	if dst == nil {
		return true
	}
	raw := d.data[start+1 : j]
	if !plain && !hasEscape(raw) && utf8.Valid(raw) {
		plain = true
	}
	if !plain {
		// Escapes or invalid UTF-8 (rare): encoding/json's own unquoting.
		var s string
		if err := json.Unmarshal(d.data[start:j+1], &s); err != nil {
			return false
		}
		*dst = d.intern([]byte(s))
		return true
	}
	*dst = d.intern(raw)
	return true
}

// special are the bytes a string's scan must look at: its end, escapes,
// control characters (not JSON) and non-ASCII (maybe not UTF-8).
var special = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf
	}
	return t
}()

func hasEscape(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

func isHexDigit(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// intern returns b as a string, the same string each time while it is in
// the table.
func (d *eventDecoder) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > maxInternedLen {
		return string(b)
	}
	if s, ok := d.strs[string(b)]; ok {
		return s
	}
	if len(d.strs) >= maxInterned {
		clear(d.strs)
	}
	s := string(b)
	d.strs[s] = s
	return s
}

// stringArray validates an array of strings ([]string), or a null.
func (d *eventDecoder) stringArray() bool {
	if d.null() {
		return true
	}
	if d.next() != '[' {
		return false
	}
	d.space()
	if d.peek() == ']' {
		d.i++
		return true
	}
	for {
		if d.peek() != '"' || !d.str(nil) {
			return false
		}
		d.space()
		switch d.next() {
		case ',':
			d.space()
			continue
		case ']':
			return true
		}
		return false
	}
}

// integer reads a JSON integer that fits an int64 (an int on every
// platform screenpop runs on), or a null, which leaves it as it is. A
// fraction or an exponent (which encoding/json refuses for an int) is
// left to encoding/json, as are 19 digits and more.
func (d *eventDecoder) integer(dst *int64) bool {
	if d.null() {
		return true
	}
	j := d.i
	neg := false
	if j < len(d.data) && d.data[j] == '-' {
		neg = true
		j++
	}
	start := j
	var n int64
	for j < len(d.data) && '0' <= d.data[j] && d.data[j] <= '9' {
		n = n*10 + int64(d.data[j]-'0')
		j++
	}
	digits := j - start
	switch {
	case digits == 0 || digits > 18:
		return false
	case digits > 1 && d.data[start] == '0':
		return false // not JSON
	case j < len(d.data) && (d.data[j] == '.' || d.data[j] == 'e' || d.data[j] == 'E'):
		return false
	}
	if neg {
		n = -n
	}
	*dst = n
	d.i = j
	return true
}

// boolean validates a bool, or a null.
func (d *eventDecoder) boolean() bool {
	rest := d.data[d.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		d.i += 4
	case len(rest) >= 5 && string(rest[:5]) == "false":
		d.i += 5
	default:
		return d.null()
	}
	return true
}

// dateTime validates an ari.DateTime: a string in Asterisk's form
// (ari.DateFormat, 2006-01-02T15:04:05.000-0700), every part in range, so
// that time.Parse takes it. A null (which DateTime refuses), escapes or
// anything else are left to encoding/json.
func (d *eventDecoder) dateTime() bool {
	const n = len(`"2006-01-02T15:04:05.000-0700"`)
	if len(d.data)-d.i < n {
		return false
	}
	s := d.data[d.i : d.i+n]
	if s[0] != '"' || s[n-1] != '"' || s[5] != '-' || s[8] != '-' || s[11] != 'T' || s[14] != ':' ||
		s[17] != ':' || s[20] != '.' || (s[24] != '+' && s[24] != '-') {
		return false
	}
	for _, k := range [...]int{1, 2, 3, 4, 6, 7, 9, 10, 12, 13, 15, 16, 18, 19, 21, 22, 23, 25, 26, 27, 28} {
		if s[k] < '0' || s[k] > '9' {
			return false
		}
	}
	num := func(k int) int { return int(s[k]-'0')*10 + int(s[k+1]-'0') }
	year := num(1)*100 + num(3)
	month, day := num(6), num(9)
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		num(12) > 23 || num(15) > 59 || num(18) > 59 || num(25) > 23 || num(27) > 59 {
		return false
	}
	d.i += n
	return true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// skip validates any JSON value and moves past it.
func (d *eventDecoder) skip() bool {
	switch c := d.peek(); {
	case c == '"':
		return d.str(nil)
	case c == '{':
		if d.depth++; d.depth > maxFastDepth {
			return false
		}
		more, ok := d.objectStart()
		for ok && more {
			if d.peek() != '"' || !d.str(nil) {
				return false
			}
			d.space()
			if d.next() != ':' {
				return false
			}
			d.space()
			if !d.skip() {
				return false
			}
			more, ok = d.objectNext()
		}
		d.depth--
		return ok
	case c == '[':
		if d.depth++; d.depth > maxFastDepth {
			return false
		}
		d.i++
		d.space()
		if d.peek() == ']' {
			d.i++
			d.depth--
			return true
		}
		for {
			if !d.skip() {
				return false
			}
			d.space()
			switch d.next() {
			case ',':
				d.space()
				continue
			case ']':
				d.depth--
				return true
			}
			return false
		}
	case c == '-' || ('0' <= c && c <= '9'):
		return d.number()
	case c == 't' || c == 'f' || c == 'n':
		return d.boolean()
	}
	return false
}

// number validates a JSON number.
func (d *eventDecoder) number() bool {
	j := d.i
	digits := func() int {
		k := j
		for j < len(d.data) && '0' <= d.data[j] && d.data[j] <= '9' {
			j++
		}
		return j - k
	}
	if j < len(d.data) && d.data[j] == '-' {
		j++
	}
	if j < len(d.data) && d.data[j] == '0' {
		j++
	} else if digits() == 0 {
		return false
	}
	if j < len(d.data) && d.data[j] == '.' {
		j++
		if digits() == 0 {
			return false
		}
	}
	if j < len(d.data) && (d.data[j] == 'e' || d.data[j] == 'E') {
		j++
		if j < len(d.data) && (d.data[j] == '+' || d.data[j] == '-') {
			j++
		}
		if digits() == 0 {
			return false
		}
	}
	d.i = j
	return true
}
