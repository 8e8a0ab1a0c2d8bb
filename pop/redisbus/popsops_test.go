package redisbus

import (
	"fmt"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/pop"
)

// applyOps runs popsOps' (op, field, value) triples on a map standing for
// the agent's pops hash, as the append script does in Redis.
func applyOps(t *testing.T, h map[string]string, m pop.Message) {
	t.Helper()
	e, err := pop.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	ops := (&Bus{}).popsOps(nil, "pops", e)
	for i := 0; i+2 < len(ops); i += 3 {
		op, f, v := ops[i].(string), ops[i+1].(string), fmt.Sprint(ops[i+2])
		if b, ok := ops[i+2].([]byte); ok {
			v = string(b)
		}
		switch op {
		case "set":
			h[f] = v
		case "setnx":
			if _, ok := h[f]; !ok {
				h[f] = v
			}
		case "del":
			delete(h, f)
		default:
			t.Fatalf("unknown op %q", op)
		}
	}
}

func snapshotOf(h map[string]string) []pop.PopView {
	flat := make([]any, 0, 2*len(h))
	for k, v := range h {
		flat = append(flat, k, v)
	}
	pops, bad := (&Bus{}).decodePops("pops", flat)
	if bad > 0 {
		panic("unreadable pops")
	}
	return pops
}

// What a snapshot served from Redis says of a ringing pop for a transfer,
// and that the transfer goes once the agent has the call.
func TestSnapshotKeepsTransfer(t *testing.T) {
	h := map[string]string{}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	card := screenpop.Card{CallID: "pbx/1", Phone: "+4930123456"}
	applyOps(t, h, pop.Message{Type: pop.TypePop, CallID: "pbx/1", At: at, Data: pop.PopData{
		State: pop.StateRinging, Card: card,
		Transfer: &pop.TransferInfo{From: pop.AgentRef{ID: "1002", Name: "Bob"}, Consult: true},
	}})
	got := snapshotOf(h)
	if len(got) != 1 || got[0].State != pop.StateRinging || got[0].Transfer == nil ||
		got[0].Transfer.From.ID != "1002" || !got[0].Transfer.Consult || got[0].Card.Phone != card.Phone {
		t.Fatalf("ringing consultation: %+v", got)
	}
	applyOps(t, h, pop.Message{Type: pop.TypeAnswered, CallID: "pbx/1", At: at, Data: pop.AnsweredData{
		Agent: pop.AgentRef{ID: "1003"}, Transferred: true,
	}})
	got = snapshotOf(h)
	if len(got) != 1 || got[0].State != pop.StateAnswered || got[0].Transfer != nil {
		t.Fatalf("after the transfer completed: %+v", got)
	}
	applyOps(t, h, pop.Message{Type: pop.TypeWithdrawn, CallID: "pbx/1", At: at, Data: pop.WithdrawnData{Reason: pop.ReasonRangOut}})
	// Only the mark that the agent no longer holds the call stays.
	if got = snapshotOf(h); len(got) != 0 || len(h) != 1 || h[fieldGone+callField("pbx/1")] != "1" {
		t.Fatalf("after withdrawn: %+v, hash %v", got, h)
	}
}
