package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/adapters/postgres"
	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/configs"
)

// BenchmarkDemoCard measures building one complete card on the demo
// configuration (directory + five file sources fanned out in parallel,
// merge), with and without the per-source cache. It is the in-process
// floor of pop latency: real sources add their own time on top.
func BenchmarkDemoCard(b *testing.B) {
	for _, cached := range []bool{false, true} {
		name := "uncached"
		if cached {
			name = "cached"
		}
		b.Run(name, func(b *testing.B) {
			cfg, err := configs.Demo()
			if err != nil {
				b.Fatal(err)
			}
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			pools := postgres.NewPools(logger)
			defer pools.Close()
			ac, err := aggregatorConfig(cfg, pools, noEnv, logger)
			if err != nil {
				b.Fatal(err)
			}
			opts := aggregator.Options{Logger: logger, Registerer: prometheus.NewRegistry()}
			if cached {
				opts.Cache = aggregator.NewMemoryCache(1000)
			} else {
				for i := range ac.Sources {
					ac.Sources[i].CacheTTL = 0
					ac.Sources[i].FreshFor = 0
				}
			}
			agg, err := aggregator.New(ac, opts)
			if err != nil {
				b.Fatal(err)
			}
			call := screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "bench",
				Caller: screenpop.Caller{Number: "+48 601-234-567"}, Agents: []string{"1001"}, At: time.Now()}
			b.ReportAllocs()
			for b.Loop() {
				card := agg.Build(context.Background(), call)
				if card.Resolution != screenpop.ResolvedCustomer {
					b.Fatalf("resolution %s", card.Resolution)
				}
			}
		})
	}
}
