package main

import (
	"context"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/metrics"
	"time"

	"golang.org/x/sync/errgroup"
)

// The admin listener serves what an operator needs to see inside a running
// daemon: net/http/pprof (CPU, heap, goroutines, mutex and block profiles,
// execution traces), expvar's /debug/vars and the Go runtime's own metrics
// (/debug/metrics). It is off unless admin.listen is set, and configs
// refuses any address but a loopback one: profiles and stacks show
// internals, so they are never on the agents' listener nor on the network.

// listenAdmin opens the admin listener when the configuration asks for one;
// nil otherwise.
func (m *Main) listenAdmin() (net.Listener, error) {
	addr := m.config().Admin.Listen
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin.listen: listen on %s: %w", addr, err)
	}
	m.mu.Lock()
	m.adminLn = ln
	m.mu.Unlock()
	return ln, nil
}

// serveAdmin serves the admin handler on ln until ctx ends.
func (m *Main) serveAdmin(ctx context.Context, g *errgroup.Group, ln net.Listener) {
	srv := &http.Server{
		Handler:           adminHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		// No WriteTimeout: a CPU profile or a trace answers after the
		// seconds it was asked to record (pprof refuses a duration longer
		// than the server's WriteTimeout).
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(m.logger.Handler(), slog.LevelWarn),
	}
	m.logger.Info("admin listener: profiles and runtime metrics", "addr", ln.Addr().String(),
		"paths", "/debug/pprof/ /debug/metrics /debug/vars")
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("admin listener: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		// A profile being recorded is cut short rather than holding the
		// daemon's stop.
		return srv.Close()
	})
}

// AdminAddr is the admin listener's address once Run has started, or nil
// without admin.listen.
func (m *Main) AdminAddr() net.Addr {
	<-m.started
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.adminLn == nil {
		return nil
	}
	return m.adminLn.Addr()
}

// adminHandler mounts pprof, expvar and the runtime metrics on a mux of
// their own: importing net/http/pprof also registers on
// http.DefaultServeMux, which the daemon never serves.
func adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // and every named profile: heap, goroutine, mutex, block, allocs, ...
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("GET /debug/vars", expvar.Handler())
	mux.HandleFunc("GET /debug/metrics", serveRuntimeMetrics)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, adminIndex)
	})
	return mux
}

const adminIndex = `screenpopd admin listener
/debug/pprof/          profiles (go tool pprof http://HOST/debug/pprof/profile?seconds=30)
/debug/pprof/trace     execution trace (?seconds=5; go tool trace)
/debug/metrics         the Go runtime's metrics (runtime/metrics), JSON
/debug/vars            expvar: memstats and the command line, JSON
`

// serveRuntimeMetrics writes every metric runtime/metrics supports as one
// JSON object, by name: counters and gauges as numbers, distributions
// (GC pauses, scheduling latencies) as their count and quantiles.
func serveRuntimeMetrics(w http.ResponseWriter, _ *http.Request) {
	descs := metrics.All()
	samples := make([]metrics.Sample, len(descs))
	for i := range descs {
		samples[i].Name = descs[i].Name
	}
	metrics.Read(samples)
	out := make(map[string]any, len(samples))
	for _, s := range samples {
		switch s.Value.Kind() {
		case metrics.KindUint64:
			out[s.Name] = s.Value.Uint64()
		case metrics.KindFloat64:
			out[s.Name] = finite(s.Value.Float64())
		case metrics.KindFloat64Histogram:
			out[s.Name] = summarize(s.Value.Float64Histogram())
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out) // map keys come out sorted
}

// histogramSummary is a runtime distribution in a form a person or a
// script reads at a glance. A quantile is the upper bound of the bucket it
// falls in (runtime/metrics keeps buckets, not samples).
type histogramSummary struct {
	Count uint64   `json:"count"`
	P50   *float64 `json:"p50,omitempty"`
	P90   *float64 `json:"p90,omitempty"`
	P99   *float64 `json:"p99,omitempty"`
	Max   *float64 `json:"max,omitempty"`
}

func summarize(h *metrics.Float64Histogram) histogramSummary {
	var s histogramSummary
	for _, c := range h.Counts {
		s.Count += c
	}
	if s.Count == 0 {
		return s
	}
	// bound is the upper edge of bucket i, the last finite edge for the
	// open-ended last bucket.
	bound := func(i int) *float64 {
		v := h.Buckets[i+1]
		if math.IsInf(v, 0) {
			v = h.Buckets[i]
		}
		v = finite(v)
		return &v
	}
	at := func(q float64) *float64 {
		rank := max(uint64(math.Ceil(q*float64(s.Count))), 1)
		var seen uint64
		for i, c := range h.Counts {
			if seen += c; seen >= rank {
				return bound(i)
			}
		}
		return bound(len(h.Counts) - 1)
	}
	s.P50, s.P90, s.P99 = at(0.50), at(0.90), at(0.99)
	for i := len(h.Counts) - 1; i >= 0; i-- {
		if h.Counts[i] > 0 {
			s.Max = bound(i)
			break
		}
	}
	return s
}

// finite keeps JSON encodable: NaN and infinities become 0.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}
