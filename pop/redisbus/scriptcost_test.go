package redisbus

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/pop"
)

// BenchmarkAppendScript measures what the append script (deliverScript)
// costs Redis, nothing else: one op is one call for one of 50 agents, its
// three messages (a 4 KB pop, answered, ended) appended with the
// arguments the sender builds (appendArgs), 16 calls per pipeline, with
// two daemons subscribed to the news. redis-cpu-ns/op is Redis's CPU per
// call; evalsha-us/msg is Redis's own time per script (INFO
// commandstats), which the machine's load blurs least.
func BenchmarkAppendScript(b *testing.B) {
	client := redis.NewClient(&redis.Options{Addr: startRedisServer(b).addr()})
	defer client.Close()
	ctx := context.Background()
	bus, err := New(Config{Client: client, Hub: &countingHub{}, KeyPrefix: "bench:", Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	if err := deliverScript.Load(ctx, client).Err(); err != nil {
		b.Fatal(err)
	}
	const agents, perPipe = 50, 16
	channels := make([]string, agents)
	for i := range channels {
		channels[i] = bus.newsChannelOf(tagOf(fmt.Sprint("agent-", i)))
	}
	for range 2 { // two daemons hear every entry (each watching every agent)
		ps := client.Subscribe(ctx, channels...)
		defer ps.Close()
		for range channels {
			if _, err := ps.Receive(ctx); err != nil {
				b.Fatal(err)
			}
		}
		go func() {
			for range ps.Channel() {
			}
		}()
	}
	card := benchCard("c1")
	encode := func(m pop.Message) pop.Encoded {
		e, err := pop.Encode(m)
		if err != nil {
			b.Fatal(err)
		}
		return e
	}
	call := func(i int) []outgoing {
		agent, id := fmt.Sprint("agent-", (i+agents)%agents), fmt.Sprint("call-", i)
		now := time.Now()
		var out []outgoing
		for _, m := range []pop.Message{
			{Type: pop.TypePop, CallID: id, At: now, Data: pop.PopData{State: pop.StateRinging, Card: card}},
			{Type: pop.TypeAnswered, CallID: id, At: now, Data: pop.AnsweredData{Agent: pop.AgentRef{ID: agent, Name: "Agent"}}},
			{Type: pop.TypeEnded, CallID: id, At: now, Data: pop.EndedData{Outcome: screenpop.OutcomeAnswered, Agent: &pop.AgentRef{ID: agent}}},
		} {
			e := encode(m)
			out = append(out, outgoing{agent: agent, msg: e, dedup: bus.dedupName(agent, e), at: now})
		}
		return out
	}
	run := func(from, to int) {
		pipe := client.Pipeline()
		var cmds []*redis.Cmd
		for i := from; i < to; i++ {
			for _, o := range call(i) {
				keys, args := bus.appendArgs(o)
				cmds = append(cmds, deliverScript.EvalSha(ctx, pipe, keys, args...))
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
		for _, c := range cmds {
			if res, _ := c.Text(); strings.HasPrefix(res, "d") {
				b.Fatalf("deduplicated: %s", res)
			}
		}
	}
	run(-agents, 0) // every agent's keys exist
	client.ConfigResetStat(ctx)
	b.ResetTimer()
	cpu := startCPU(client)
	for i := 0; i < b.N; i += perPipe {
		run(i, min(i+perPipe, b.N))
	}
	b.StopTimer()
	cpu.report(b)
	stats, _ := client.Info(ctx, "commandstats").Result()
	for line := range strings.Lines(stats) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "cmdstat_evalsha:") {
			for kv := range strings.SplitSeq(strings.TrimPrefix(line, "cmdstat_evalsha:"), ",") {
				if v, ok := strings.CutPrefix(kv, "usec_per_call="); ok {
					f, _ := strconv.ParseFloat(v, 64)
					b.ReportMetric(f, "evalsha-us/msg")
				}
			}
		}
		if strings.HasPrefix(line, "cmdstat_") {
			b.Log(line)
		}
	}
}
