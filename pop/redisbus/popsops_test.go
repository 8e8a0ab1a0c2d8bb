package redisbus

import (
	"fmt"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/pop"
)

// applyOps runs popsOps' ops on a map standing for the agent's pops hash,
// as the append script does in Redis: the HSETNX, the deletions, the
// sets.
func applyOps(t *testing.T, h map[string]string, m pop.Message) {
	t.Helper()
	e, err := pop.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	ops := (&Bus{}).popsOps(nil, "pops", e)
	str := func(v any) string {
		if b, ok := v.([]byte); ok {
			return string(b)
		}
		return fmt.Sprint(v)
	}
	if len(ops) < 3 {
		t.Fatalf("ops %v", ops)
	}
	nd := ops[0].(int)
	if f := str(ops[1]); f != "" {
		if _, ok := h[f]; !ok {
			h[f] = str(ops[2])
		}
	}
	for _, f := range ops[3 : 3+nd] {
		delete(h, str(f))
	}
	sets := ops[3+nd:]
	if len(sets)%2 != 0 {
		t.Fatalf("odd sets %v", sets)
	}
	for i := 0; i < len(sets); i += 2 {
		h[str(sets[i])] = str(sets[i+1])
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
