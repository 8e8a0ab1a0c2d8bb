package redisbus

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/aggregator/rediscache"
	"github.com/screenpop/screenpop/pop"
)

// secrets are what must never be readable in Redis: the caller's number
// and name, the customer's name and id, a note's text, and an agent id
// that looks like a phone number.
var secrets = []string{"4930999888", "Erika Mustermann", "ACME Secret GmbH", "cust-4711", "Calls back on Friday", "4917012345"}

// secretBuilder builds a card full of personal data.
type secretBuilder struct{}

func (secretBuilder) Build(_ context.Context, ev screenpop.CallEvent) screenpop.Card {
	return screenpop.Card{CallID: ev.CallID, Caller: ev.Caller, Phone: ev.Caller.Number, Resolution: screenpop.ResolvedCustomer,
		Customer: &screenpop.Customer{ID: "cust-4711", Name: "ACME Secret GmbH"}, BuiltAt: time.Now()}
}

func (s secretBuilder) BuildFor(ctx context.Context, ev screenpop.CallEvent, _ string) screenpop.Card {
	return s.Build(ctx, ev)
}

// TestPersonalDataSealed: with keys, nothing personal is readable in any
// key name, stream entry, snapshot field or forwarded request; every key
// that holds any of it expires within the bounds; and two daemons in the
// middle of a key rotation (one sealing with the old key, one with the new,
// both holding both) read each other.
func TestPersonalDataSealed(t *testing.T) {
	srv := startRedisServer(t)
	k1, k2 := []byte(strings.Repeat("1", 32)), []byte(strings.Repeat("2", 32))
	oldFirst, err := rediscache.NewKeyring(k1, k2)
	if err != nil {
		t.Fatal(err)
	}
	newFirst, _ := rediscache.NewKeyring(k2, k1)
	rec := &noteRecorder{}
	a := startDaemonOpts(t, srv.addr(), "p:", daemonOpts{
		bus:  func(c *Config) { c.Sealer = oldFirst },
		disp: func(c *pop.DispatcherConfig) { c.Builder, c.Recorder = secretBuilder{}, rec },
	})
	b := startDaemonOpts(t, srv.addr(), "p:", daemonOpts{bus: func(c *Config) { c.Sealer = newFirst }})
	for _, d := range []*daemon{a, b} {
		waitFor(t, "bus up and listening", func() bool { return d.bus.Ready() == nil && d.bus.listening.Load() })
	}
	client := redis.NewClient(&redis.Options{Addr: srv.addr()})
	defer client.Close()
	ctx := context.Background()

	// Watch what travels on pub/sub: the forwarded requests, and every
	// stream entry on the agents' news channels (and their names).
	sub := client.Subscribe(ctx, "p:requests")
	defer sub.Close()
	if err := sub.PSubscribe(ctx, "p:news*"); err != nil {
		t.Fatal(err)
	}
	for range 2 { // both confirmed
		if _, err := sub.Receive(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var published []string
	var news int
	var pmu sync.Mutex
	go func() {
		for m := range sub.Channel() {
			pmu.Lock()
			published = append(published, m.Channel+" "+m.Payload)
			if m.Pattern == "p:news*" {
				news++
			}
			pmu.Unlock()
		}
	}()

	const agent = "+4917012345"
	ws := browser(t, b, agent, "")
	expect(t, ws, pop.TypeSnapshot, "")
	call := "pbx/+4930999888-1"
	a.disp.HandleCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: call,
		Caller: screenpop.Caller{Number: "+4930999888", Name: "Erika Mustermann"}, Agents: []string{agent}, Source: "test", At: time.Now()})
	var p pop.PopData
	json.Unmarshal(expect(t, ws, pop.TypePop, call).Data, &p)
	if p.Card.Customer == nil || p.Card.Customer.Name != "ACME Secret GmbH" {
		t.Fatalf("the browser must get the card in clear: %+v", p.Card)
	}
	// A note written on b about a call only a knows: forwarded, sealed.
	send(t, ws, pop.Request{Type: pop.RequestNote, CallID: call, Text: "Calls back on Friday", Ref: "n1"})
	expect(t, ws, pop.TypeNoteSaved, call)
	// Sealed by a with the old key, opened by b: the snapshot of a page
	// opening on b is whole.
	var snap pop.SnapshotData
	json.Unmarshal(expect(t, browser(t, b, agent, ""), pop.TypeSnapshot, "").Data, &snap)
	if len(snap.Pops) != 1 || snap.Pops[0].CallID != call || snap.Pops[0].Card.Customer == nil || snap.Pops[0].Card.Customer.Name != "ACME Secret GmbH" {
		t.Fatalf("snapshot from sealed values: %+v", snap.Pops)
	}

	keys, err := client.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var dump strings.Builder
	for _, k := range keys {
		dump.WriteString(k + "\n")
		switch client.Type(ctx, k).Val() {
		case "stream":
			for _, e := range client.XRange(ctx, k, "-", "+").Val() {
				for f, v := range e.Values {
					dump.WriteString(f + "=" + v.(string) + "\n")
				}
			}
		case "hash":
			for f, v := range client.HGetAll(ctx, k).Val() {
				dump.WriteString(f + "=" + v + "\n")
			}
		case "string":
			dump.WriteString(client.Get(ctx, k).Val() + "\n")
		}
		ttl := client.PTTL(ctx, k).Val()
		switch {
		case k == "p:epoch":
			// names the data set; nothing personal, never expires
		case ttl <= 0 || ttl > 24*time.Hour:
			t.Errorf("key %s: TTL %s, want at most 24h", k, ttl)
		}
	}
	pmu.Lock()
	for _, m := range published {
		dump.WriteString("published: " + m + "\n")
	}
	if len(published) == news {
		t.Error("no forwarded request seen")
	}
	if news == 0 {
		t.Error("no stream entry seen on news")
	}
	pmu.Unlock()
	for _, s := range secrets {
		if strings.Contains(dump.String(), s) {
			t.Errorf("Redis holds %q in clear:\n%s", s, dump.String())
		}
	}
}

// TestEpochs: a browser presenting a seq of an epoch its stream no longer
// has (the stream and its seq expired, or Redis lost them) gets a full
// snapshot holding the calls that still ring: not a replay of what it saw,
// not an empty list. The next message comes after the snapshot.
func TestEpochs(t *testing.T) {
	client := sharedRedis(t)
	prefix := testPrefix(t, client)
	a, b := startDaemon(t, "127.0.0.1:6379", prefix), startDaemon(t, "127.0.0.1:6379", prefix)
	for _, d := range []*daemon{a, b} {
		waitFor(t, "bus up", func() bool { return d.bus.Ready() == nil })
	}
	ws := browser(t, b, "6001", "")
	expect(t, ws, pop.TypeSnapshot, "")
	a.disp.HandleCall(ring("call-1", "6001"))
	first := expect(t, ws, pop.TypePop, "call-1")
	a.disp.HandleCall(ring("call-2", "6001"))
	expect(t, ws, pop.TypePop, "call-2")
	a.disp.HandleCall(screenpop.CallEvent{Kind: screenpop.EventEnded, CallID: "call-2", Outcome: screenpop.OutcomeAbandoned, At: time.Now()})
	expect(t, ws, pop.TypeEnded, "call-2")
	ws.Close()

	// The agent's stream and seq are gone (idle past stream_ttl, which is
	// shorter than the snapshot's pops_ttl); call-1 still rings.
	k := keysOf(prefix, "6001")
	client.Del(context.Background(), k.stream, k.meta)

	for name, d := range map[string]*daemon{"the same daemon": b, "another daemon": a} {
		ws = browser(t, d, "6001", "since="+jsonNumber(first.Seq))
		m := next(t, ws)
		var snap pop.SnapshotData
		json.Unmarshal(m.Data, &snap)
		if m.Type != pop.TypeSnapshot || len(snap.Pops) != 1 || snap.Pops[0].CallID != "call-1" || snap.Pops[0].State != pop.StateRinging {
			t.Fatalf("%s: a browser of an old epoch got %s %s, want a snapshot of call-1 ringing", name, m.Type, m.Data)
		}
		if m.Seq <= first.Seq {
			t.Fatalf("%s: snapshot seq %d not above the old epoch's %d", name, m.Seq, first.Seq)
		}
		ws.Close()
	}
	ws = browser(t, b, "6001", "since="+jsonNumber(first.Seq))
	snap := expect(t, ws, pop.TypeSnapshot, "")
	a.disp.HandleCall(screenpop.CallEvent{Kind: screenpop.EventEnded, CallID: "call-1", Outcome: screenpop.OutcomeAbandoned, At: time.Now()})
	// Not the old pop of call-2, nor its end, from b's own log: the end of
	// call-1, after the snapshot.
	if m := expect(t, ws, pop.TypeEnded, "call-1"); m.Seq <= snap.Seq {
		t.Fatalf("message after the snapshot has seq %d <= %d", m.Seq, snap.Seq)
	}
}

func jsonNumber(n uint64) string { b, _ := json.Marshal(n); return string(b) }
