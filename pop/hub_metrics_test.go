package pop

import (
	"testing"
)

// TestMessagesCountedByType: screenpop_pop_messages_total counts a
// message once per agent whose page takes it, by type, both for the types
// the hub looks up once (messageTypes) and for one it has not heard of,
// and not for an agent with no page open.
func TestMessagesCountedByType(t *testing.T) {
	e := startHub(t, nil)
	c := e.dial(t, "alice", "")
	readType(t, c, TypeSnapshot)

	count := func(typ string) float64 {
		return metricValue(t, e.reg, "screenpop_pop_messages_total", map[string]string{"type": typ})
	}
	pops := count(TypePop)
	m := encode(t, Message{Type: TypePop, CallID: "c1", Data: PopData{State: StateRinging}})
	e.hub.Deliver("alice", m)
	e.hub.Deliver("bob", m) // no page open: kept, not counted
	readType(t, c, TypePop)
	if got := count(TypePop); got != pops+1 {
		t.Errorf("pop messages counted %v, want %v", got, pops+1)
	}

	// A type outside messageTypes still gets its own series.
	other := m
	other.Type = "custom_test_type"
	e.hub.Deliver("alice", other)
	read(t, c)
	if got := count("custom_test_type"); got != 1 {
		t.Errorf("custom_test_type messages counted %v, want 1", got)
	}
}
