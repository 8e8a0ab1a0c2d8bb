package redisbus

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/screenpop/screenpop/pop"
)

// Fields of an agent's pops hash, each followed by the call's hashed id
// (callField): the card (the call id, a NUL, the card's JSON), who
// answered, the transfer a ringing pop rings for, and the time of the pop
// (snapshots list the oldest call first). All but the time are sealed
// when the bus has a Sealer.
const (
	fieldCard     = "c:"
	fieldAnswered = "a:"
	fieldTransfer = "x:"
	fieldAt       = "t:"
	// fieldGone marks a call the agent no longer holds (withdrawn, ended):
	// a daemon putting back live calls after Redis lost them (fillScript)
	// must not bring it back because its dispatcher has not seen the end
	// yet that another daemon appended.
	fieldGone = "z:"
)

// cardValue is what the pops hash keeps of a card: the call id (field
// names hold only its hash) and the card's JSON.
func cardValue(callID string, card []byte) []byte {
	v := make([]byte, 0, len(callID)+1+len(card))
	v = append(v, callID...)
	v = append(v, 0)
	return append(v, card...)
}

// popsOps appends a message's effect on the agent's current pops, as the
// append script takes it: the number of fields to delete, the field and
// value of an HSETNX ("" and "" for none), the fields to delete, then the
// (field, value) pairs to set; the script runs them in that order, in one
// command each (HSETNX, HDEL, HSET), with no loop of its own. The values
// are cut from the message's JSON (its card, who answered, the transfer),
// not encoded again, and sealed for the field they go to. A message's
// ops touch distinct fields.
func (b *Bus) popsOps(args []any, popsKey string, m pop.Encoded) []any {
	h := callField(m.CallID)
	// One pass over the message's data (a card is most of the bytes).
	var parts [4]gjson.Result // card, transfer, answered_by, agent
	var data gjson.Result
	switch m.Type {
	case pop.TypePop, pop.TypeCard, pop.TypeAnswered:
		data = gjson.GetBytes(m.Unnumbered(), "data")
	}
	data.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "card":
			parts[0] = v
		case "transfer":
			parts[1] = v
		case "answered_by":
			parts[2] = v
		case "agent":
			parts[3] = v
		}
		return true
	})
	part := func(path string) ([]byte, bool) {
		var r gjson.Result
		switch path {
		case "data.card":
			r = parts[0]
		case "data.transfer":
			r = parts[1]
		case "data.answered_by":
			r = parts[2]
		case "data.agent":
			r = parts[3]
		}
		return []byte(r.Raw), r.Exists() && r.Type != gjson.Null
	}
	var (
		dels      [4]any
		sets      [6]any
		nd, ns    int
		nx, nxVal any = "", ""
	)
	set := func(field string, v []byte) {
		sets[ns], sets[ns+1] = field, b.seal(v, popsKey, field)
		ns += 2
	}
	del := func(field string) {
		dels[nd] = field
		nd++
	}
	switch m.Type {
	case pop.TypePop:
		card, _ := part("data.card")
		set(fieldCard+h, cardValue(m.CallID, card))
		nx, nxVal = fieldAt+h, strconv.FormatInt(m.At.UnixNano(), 10)
		del(fieldGone + h)
		if tr, ok := part("data.transfer"); ok {
			set(fieldTransfer+h, tr)
		} else {
			del(fieldTransfer + h)
		}
		if by, ok := part("data.answered_by"); ok {
			set(fieldAnswered+h, by)
		} else {
			del(fieldAnswered + h)
		}
	case pop.TypeCard:
		card, _ := part("data.card")
		set(fieldCard+h, cardValue(m.CallID, card))
	case pop.TypeAnswered:
		by, _ := part("data.agent")
		set(fieldAnswered+h, by)
		del(fieldTransfer + h)
	case pop.TypeWithdrawn, pop.TypeEnded:
		for _, f := range []string{fieldCard, fieldAnswered, fieldTransfer, fieldAt} {
			del(f + h)
		}
		sets[0], sets[1], ns = fieldGone+h, "1", 2
	}
	args = append(args, nd, nx, nxVal)
	args = append(args, dels[:nd]...)
	return append(args, sets[:ns]...)
}

// decodePops turns the HGETALL of an agent's pops into a snapshot's list,
// oldest call first. A value that does not open (another key ring) or
// parse is left out, and reported by bad.
func (b *Bus) decodePops(popsKey string, flat []any) (pops []pop.PopView, bad int) {
	type entry struct {
		view    pop.PopView
		at      int64
		hasCard bool
	}
	byCall := map[string]*entry{}
	get := func(h string) *entry {
		e := byCall[h]
		if e == nil {
			e = &entry{view: pop.PopView{State: pop.StateRinging}}
			byCall[h] = e
		}
		return e
	}
	for i := 0; i+1 < len(flat); i += 2 {
		f, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		kind, h, ok := strings.Cut(f, ":")
		if !ok {
			continue
		}
		kind += ":"
		switch kind {
		case fieldAt:
			get(h).at, _ = strconv.ParseInt(v, 10, 64)
			continue
		case fieldGone:
			continue
		}
		raw, err := b.unseal([]byte(v), popsKey, f)
		if err != nil {
			bad++
			continue
		}
		e := get(h)
		switch kind {
		case fieldCard:
			id, card, ok := bytes.Cut(raw, []byte{0})
			if ok && json.Unmarshal(card, &e.view.Card) == nil {
				e.view.CallID, e.hasCard = string(id), true
			} else {
				bad++
			}
		case fieldAnswered:
			var by pop.AgentRef
			if json.Unmarshal(raw, &by) == nil {
				e.view.State, e.view.AnsweredBy = pop.StateAnswered, &by
			}
		case fieldTransfer:
			var tr pop.TransferInfo
			if json.Unmarshal(raw, &tr) == nil {
				e.view.Transfer = &tr
			}
		}
	}
	list := make([]*entry, 0, len(byCall))
	for _, e := range byCall {
		if e.hasCard { // a pop without its card is half a write: skip it
			list = append(list, e)
		}
	}
	slices.SortFunc(list, func(x, y *entry) int {
		if x.at != y.at {
			if x.at < y.at {
				return -1
			}
			return 1
		}
		return strings.Compare(x.view.CallID, y.view.CallID)
	})
	pops = make([]pop.PopView, len(list))
	for i, e := range list {
		pops[i] = e.view
	}
	return pops, bad
}

// mergeLocal corrects a snapshot from Redis with this daemon's
// dispatcher, the source of truth for the calls it knows (live, or ended
// lately): its view of such a call replaces Redis's, a call it knows that
// the agent no longer holds goes, and a call the agent holds that Redis
// lacks (not appended yet, or lost) is added.
func mergeLocal(fromRedis, local []pop.PopView, knows func(string) bool) []pop.PopView {
	mine := make(map[string]int, len(local))
	for i, p := range local {
		mine[p.CallID] = i
	}
	used := make([]bool, len(local))
	out := make([]pop.PopView, 0, len(fromRedis)+len(local))
	for _, p := range fromRedis {
		if i, ok := mine[p.CallID]; ok {
			out = append(out, local[i])
			used[i] = true
			continue
		}
		if knows(p.CallID) {
			continue
		}
		out = append(out, p)
	}
	for i, p := range local {
		if !used[i] {
			out = append(out, p)
		}
	}
	return out
}
