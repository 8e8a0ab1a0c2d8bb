package redisbus

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/aggregator/rediscache"
	"github.com/screenpop/screenpop/internal/redistest"
	"github.com/screenpop/screenpop/pop"
)

// benchCard is a card of the size agents see (about 4 KB of JSON).
func benchCard(callID string) screenpop.Card {
	rows := make([]map[string]any, 12)
	for i := range rows {
		rows[i] = map[string]any{"number": fmt.Sprintf("INV-%04d", i), "due": "2025-03-01", "amount": 640.5 + float64(i), "currency": "EUR"}
	}
	c := screenpop.Card{CallID: callID, Caller: screenpop.Caller{Number: "+4930123456", Name: "ACME LOGISTICS"}, Phone: "+4930123456",
		Resolution: screenpop.ResolvedCustomer, Customer: &screenpop.Customer{ID: "k1", Name: "ACME GmbH", Kind: "company", Tags: []string{"supplier"}},
		Sections: []screenpop.CardSection{
			{Name: "accounting", Title: "Accounting", Status: screenpop.SectionOK,
				Fields: []screenpop.Field{{Key: "balance", Label: "Open balance", Value: 1234.5, Format: "money"}},
				Lists: []screenpop.List{{Key: "overdue", Label: "Overdue invoices",
					Columns: []screenpop.Column{{Key: "number", Label: "Invoice"}, {Key: "due", Label: "Due", Format: "date"}, {Key: "amount", Label: "Amount", Format: "money"}},
					Rows:    rows}}},
			{Name: "credit", Title: "Credit", Status: screenpop.SectionTimeout, Error: "no answer within 800ms"},
		}}
	for i := range 5 {
		c.History = append(c.History, screenpop.PastCall{CallID: fmt.Sprint("old-", i), Phone: "+4930123456", At: time.Unix(1700000000+int64(i)*86400, 0).UTC(),
			Agent: "1002", Outcome: screenpop.OutcomeAnswered, Duration: 4 * time.Minute,
			Notes: []screenpop.Note{{Agent: "1002", At: time.Unix(1700000300+int64(i)*86400, 0).UTC(), Text: strings.Repeat("Asked for a quote. ", 4)}}})
	}
	return c
}

// BenchmarkDeliverThroughRedis measures one pop on its way through Redis:
// encoded (as the Dispatcher does), Deliver, the append script (stream,
// pops hash, news), the hand-over to the Hub, one browser tab. One op is
// the message read by the tab.
func BenchmarkDeliverThroughRedis(b *testing.B) {
	srv := startRedisServer(b)
	client := redis.NewClient(&redis.Options{Addr: srv.addr()})
	defer client.Close()
	prefix := "bench:"
	auth, err := pop.NewTokenAuth(testSecret)
	if err != nil {
		b.Fatal(err)
	}
	hub, err := pop.NewHub(pop.HubConfig{Auth: auth})
	if err != nil {
		b.Fatal(err)
	}
	bus, err := New(Config{Client: client, Hub: hub, KeyPrefix: prefix, Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	hub.SetShared(bus)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { bus.Run(ctx) })
	web := httptest.NewServer(hub.Handler())
	defer func() {
		hub.Close()
		web.Close()
		cancel()
		wg.Wait()
	}()
	waitBusReady(b, bus)
	tok, err := auth.Issue("b1", "Bench", []string{"agent"}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(web.URL, "http")+"/ws", http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		b.Fatal(err)
	}
	defer ws.Close()
	if _, _, err := ws.ReadMessage(); err != nil { // the snapshot
		b.Fatal(err)
	}
	waitHearing(b, bus)
	got := make(chan struct{}, 64)
	go func() {
		for {
			_, r, err := ws.NextReader()
			if err != nil {
				return
			}
			io.Copy(io.Discard, r)
			got <- struct{}{}
		}
	}()
	card := benchCard("c1")
	b.ReportAllocs()
	cpu := startCPU(client)
	defer cpu.report(b)
	for b.Loop() {
		m, err := pop.Encode(pop.Message{Type: pop.TypePop, CallID: "c1", At: time.Now(), Data: pop.PopData{State: pop.StateRinging, Card: card}})
		if err != nil {
			b.Fatal(err)
		}
		bus.Deliver("b1", m)
		<-got
	}
}

// countingHub is a LocalHub that counts the messages it gets, for the
// throughput benchmark: no WebSocket, only the bus and Redis.
type countingHub struct {
	got chan struct{}
}

func (h *countingHub) Deliver(string, pop.Encoded) { h.got <- struct{}{} }

func (h *countingHub) DeliverNumbered(string, pop.Encoded) { h.got <- struct{}{} }

// BenchmarkThroughput measures the bus under load: 1000 agents connected
// to this daemon of whom 10 get pops (4 KB cards, each for a new call, so
// that the de-duplication state grows as in a busy hour). One op is one
// message appended, read back and handed to the hub.
func BenchmarkThroughput(b *testing.B) {
	srv := startRedisServer(b)
	client := redis.NewClient(&redis.Options{Addr: srv.addr()})
	defer client.Close()
	benchThroughput(b, client)
}

// BenchmarkThroughputCluster is BenchmarkThroughput on a Redis Cluster of
// three masters (on the same machine): the agents' streams spread over
// them, each master publishing its entries' news. redis-cpu-ns/op sums
// the masters.
func BenchmarkThroughputCluster(b *testing.B) {
	cl := redistest.StartCluster(b, 3)
	client, err := rediscache.NewClient(rediscache.ClientConfig{ClusterAddrs: cl.Addrs()})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	benchThroughput(b, client)
}

func benchThroughput(b *testing.B, client redis.UniversalClient) {
	prefix := "bench:"
	hub := &countingHub{got: make(chan struct{}, 1<<16)}
	bus, err := New(Config{Client: client, Hub: hub, KeyPrefix: prefix, Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { bus.Run(ctx) })
	defer func() {
		cancel()
		wg.Wait()
	}()
	waitBusReady(b, bus)
	const agents, active = 1000, 10
	for i := range agents {
		if _, _, err := bus.Open(ctx, pop.Agent{ID: fmt.Sprint("agent-", i)}, 0, false); err != nil {
			b.Fatal(err)
		}
	}
	msgs := make([]pop.Encoded, 64)
	for i := range msgs {
		id := fmt.Sprint("c", i)
		m, err := pop.Encode(pop.Message{Type: pop.TypePop, CallID: id, At: time.Now(), Data: pop.PopData{State: pop.StateRinging, Card: benchCard(id)}})
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = m
	}
	waitHearing(b, bus)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU(client)
	const window = 256 // messages in flight
	sent, received := 0, 0
	for received < b.N {
		for sent < b.N && sent-received < window {
			m := msgs[sent%len(msgs)]
			m.CallID = fmt.Sprint("call-", sent) // a new call each: new de-duplication names
			bus.Deliver(fmt.Sprint("agent-", sent%active), m)
			sent++
		}
		<-hub.got
		received++
	}
	b.StopTimer() // not the shutdown
	cpu.report(b)
}

// BenchmarkDedupNames measures naming a message for de-duplication while
// 100000 names are live (a busy quarter of an hour): each op names the
// pop of a new call.
func BenchmarkDedupNames(b *testing.B) {
	bus, err := New(Config{Client: redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), Hub: &countingHub{}, Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	m, err := pop.Encode(pop.Message{Type: pop.TypePop, CallID: "c", At: time.Now(), Data: pop.PopData{State: pop.StateRinging}})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 100000 {
		m.CallID = fmt.Sprint("warm-", i)
		bus.dedupName("agent-1", m)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.CallID = fmt.Sprint("call-", i)
		bus.dedupName("agent-1", m)
		i++
	}
}

// waitHearing waits, at most 30s, for the bus's subscriptions to the
// news of the agents it watches.
func waitHearing(b *testing.B, buses ...*Bus) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, bus := range buses {
		for !hearsAll(bus) {
			if time.Now().After(deadline) {
				b.Fatal("the bus is not subscribed to its agents' news after 30s")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// waitBusReady waits, at most 30s, for the bus to reach Redis.
func waitBusReady(b *testing.B, bus *Bus) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := bus.Ready()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("the bus is not ready after 30s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkThroughputTwoDaemons is BenchmarkThroughput with two buses (two
// daemons, each with its own connections) on one Redis, as make bench runs
// them: agents alternate between the daemons, and calls go to them two by
// two, so that half the messages are for an agent on the other daemon.
// cpu-ns/op is both daemons' CPU. The sealed case encrypts at rest.
func BenchmarkThroughputTwoDaemons(b *testing.B) {
	for _, sealed := range []bool{false, true} {
		name := "plain"
		if sealed {
			name = "sealed"
		}
		b.Run(name, func(b *testing.B) {
			srv := startRedisServer(b)
			var sealer Sealer
			if sealed {
				k, err := rediscache.ParseKeyring("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
				if err != nil {
					b.Fatal(err)
				}
				sealer = k
			}
			got := make(chan struct{}, 1<<16)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer func() {
				cancel()
				wg.Wait()
			}()
			var buses [2]*Bus
			var client redis.UniversalClient
			for d := range buses {
				c := redis.NewClient(&redis.Options{Addr: srv.addr()})
				defer c.Close()
				client = c
				bus, err := New(Config{Client: c, Hub: &countingHub{got: got}, KeyPrefix: "bench:", Sealer: sealer, Registerer: prometheus.NewRegistry()})
				if err != nil {
					b.Fatal(err)
				}
				wg.Go(func() { bus.Run(ctx) })
				waitBusReady(b, bus)
				buses[d] = bus
			}
			const agents, active = 1000, 10
			for i := range agents {
				if _, _, err := buses[i%2].Open(ctx, pop.Agent{ID: fmt.Sprint("agent-", i)}, 0, false); err != nil {
					b.Fatal(err)
				}
			}
			msgs := make([]pop.Encoded, 64)
			for i := range msgs {
				id := fmt.Sprint("c", i)
				m, err := pop.Encode(pop.Message{Type: pop.TypePop, CallID: id, At: time.Now(), Data: pop.PopData{State: pop.StateRinging, Card: benchCard(id)}})
				if err != nil {
					b.Fatal(err)
				}
				msgs[i] = m
			}
			waitHearing(b, buses[:]...)
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPU(client)
			const window = 256
			sent, received := 0, 0
			for received < b.N {
				for sent < b.N && sent-received < window {
					m := msgs[sent%len(msgs)]
					m.CallID = fmt.Sprint("call-", sent)
					buses[(sent/2)%2].Deliver(fmt.Sprint("agent-", sent%active), m)
					sent++
				}
				<-got
				received++
			}
			b.StopTimer()
			cpu.report(b)
		})
	}
}
