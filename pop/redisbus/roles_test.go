package redisbus

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/pop"
)

// creditSecret is in the credit section of creditCards' cards only.
const creditSecret = "CREDIT-LIMIT-4711"

// creditCards builds cards with a credit section only the credit role
// may see.
type creditCards struct{ cardBuilder }

func (creditCards) Build(ctx context.Context, ev screenpop.CallEvent) screenpop.Card {
	c := cardBuilder{}.Build(ctx, ev)
	c.Sections = []screenpop.CardSection{
		{Name: "accounting", Title: "Accounting", Status: screenpop.SectionOK},
		{Name: "credit", Title: "Credit", Status: screenpop.SectionOK, Roles: []string{"credit"},
			Fields: []screenpop.Field{{Key: "limit", Label: "Limit", Value: creditSecret}}},
	}
	return c
}

// TestHiddenSectionNotInRedis: what Redis keeps for an agent (the stream a
// browser resumes from, the pops hash a snapshot is made of) and what the
// agent's browser on another daemon gets hold no section the agent may
// not see; the agent with the role gets it through the same path.
func TestHiddenSectionNotInRedis(t *testing.T) {
	client := sharedRedis(t)
	prefix := testPrefix(t, client)
	roles := map[string][]string{"4001": {"agent", "credit"}}
	a := startDaemonConfig(t, "127.0.0.1:6379", prefix, func(c *pop.DispatcherConfig) {
		c.Builder = creditCards{}
		c.AgentRoles = func(id string) []string { return roles[id] }
	})
	b := startDaemon(t, "127.0.0.1:6379", prefix)
	for _, d := range []*daemon{a, b} {
		waitFor(t, "bus up", func() bool { return d.bus.Ready() == nil })
	}
	withRole, without := browser(t, b, "4001", ""), browser(t, b, "4002", "")
	expect(t, withRole, pop.TypeSnapshot, "")
	expect(t, without, pop.TypeSnapshot, "")
	a.disp.HandleCall(ring("call-1", "4001", "4002"))

	raw := func(ws *websocket.Conn) string {
		t.Helper()
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	if f := raw(withRole); !strings.Contains(f, creditSecret) || strings.Contains(f, `"roles"`) {
		t.Errorf("4001 (credit role) got: %s", f)
	}
	if f := raw(without); !strings.Contains(f, `"type":"pop"`) || strings.Contains(strings.ToLower(f), "credit") {
		t.Errorf("4002 (no credit role) got: %s", f)
	}
	ctx := context.Background()
	stored := func(agent string) string {
		t.Helper()
		keys := keysOf(prefix, agent)
		entries, err := client.XRange(ctx, keys.stream, "-", "+").Result()
		if err != nil || len(entries) != 1 {
			t.Fatalf("%s's stream: %v %v", agent, entries, err)
		}
		pops, err := client.HGetAll(ctx, keys.pops).Result()
		if err != nil || len(pops) == 0 {
			t.Fatalf("%s's pops: %v %v", agent, pops, err)
		}
		var b strings.Builder
		b.WriteString(entries[0].Values["m"].(string))
		for k, v := range pops {
			b.WriteString(k + "=" + v + "\n")
		}
		return b.String()
	}
	if s := stored("4002"); strings.Contains(strings.ToLower(s), "credit") {
		t.Errorf("Redis holds the credit section for 4002: %s", s)
	}
	if s := stored("4001"); strings.Count(s, creditSecret) != 2 {
		t.Errorf("Redis holds for 4001 (stream, then pops hash): %s", s)
	}
	// A page of 4002 opening now gets its snapshot from the pops hash.
	ws := browser(t, b, "4002", "")
	if f := raw(ws); !strings.Contains(f, `"call_id":"call-1"`) || strings.Contains(strings.ToLower(f), "credit") {
		t.Errorf("4002's snapshot: %s", f)
	}
}
