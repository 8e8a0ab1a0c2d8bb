package ari

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/internal/logbuf"
	"github.com/screenpop/screenpop/telephony/ari/fakeari"
)

// patience bounds every wait of these tests: generous, since the machine
// is shared, and never a claim about speed.
const patience = 30 * time.Second

// agentOf maps PJSIP/1001..1003 to agents 1001..1003, like the PBX of the
// recordings; the trunk is nobody.
func agentOf(endpoint string) (string, bool) {
	switch endpoint {
	case "PJSIP/1001", "PJSIP/1002", "PJSIP/1003":
		return strings.TrimPrefix(endpoint, "PJSIP/"), true
	}
	return "", false
}

// collector is a sink that records every CallEvent.
type collector struct {
	mu      sync.Mutex
	events  []screenpop.CallEvent
	ended   int
	changed chan struct{}
}

func newCollector() *collector { return &collector{changed: make(chan struct{})} }

func (c *collector) HandleCall(ev screenpop.CallEvent) {
	c.mu.Lock()
	c.events = append(c.events, ev)
	if ev.Kind == screenpop.EventEnded {
		c.ended++
	}
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *collector) snapshot() []screenpop.CallEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.events)
}

// waitFor waits until cond holds for the events collected so far (cond
// must not keep the slice).
func (c *collector) waitFor(t *testing.T, what string, cond func([]screenpop.CallEvent) bool) []screenpop.CallEvent {
	t.Helper()
	return c.wait(t, what, func(evs []screenpop.CallEvent, _ int) bool { return cond(evs) })
}

// waitEnded waits until at least n ended events arrived.
func (c *collector) waitEnded(t *testing.T, what string, n int) []screenpop.CallEvent {
	t.Helper()
	return c.wait(t, what, func(_ []screenpop.CallEvent, ended int) bool { return ended >= n })
}

func (c *collector) wait(t *testing.T, what string, cond func([]screenpop.CallEvent, int) bool) []screenpop.CallEvent {
	t.Helper()
	deadline := time.NewTimer(patience)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ok := cond(c.events, c.ended)
		ch := c.changed
		if ok {
			evs := slices.Clone(c.events)
			c.mu.Unlock()
			return evs
		}
		c.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			evs := c.snapshot()
			t.Fatalf("timed out waiting for %s; got %d events: %s", what, len(evs), describe(evs))
		}
	}
}

func describe(evs []screenpop.CallEvent) string {
	var b strings.Builder
	for i, ev := range evs {
		if i == 40 {
			fmt.Fprintf(&b, "\n  ... %d more", len(evs)-i)
			break
		}
		fmt.Fprintf(&b, "\n  %s %s agents=%v agent=%s outcome=%s", ev.Kind, ev.CallID, ev.Agents, ev.Agent, ev.Outcome)
	}
	return b.String()
}

func endedCount(evs []screenpop.CallEvent) int {
	n := 0
	for _, ev := range evs {
		if ev.Kind == screenpop.EventEnded {
			n++
		}
	}
	return n
}

func hasEnded(id string) func([]screenpop.CallEvent) bool {
	return func(evs []screenpop.CallEvent) bool {
		return slices.ContainsFunc(evs, func(ev screenpop.CallEvent) bool {
			return ev.CallID == id && ev.Kind == screenpop.EventEnded
		})
	}
}

// harness runs a Source against a fake Asterisk.
type harness struct {
	t    *testing.T
	srv  *fakeari.Server
	src  *Source
	reg  *prometheus.Registry
	sink *collector
	logs *logbuf.Buffer
	done chan error
}

func start(t *testing.T, srv *fakeari.Server, tweak func(*Config)) *harness {
	t.Helper()
	return startWith(t, srv, tweak, nil)
}

// startWith runs the source with the sink wrap makes around the collector.
func startWith(t *testing.T, srv *fakeari.Server, tweak func(*Config), wrap func(*collector) screenpop.CallSink) *harness {
	t.Helper()
	cfg := Config{
		URL: srv.URL(), User: fakeari.DefaultUser, Password: fakeari.DefaultPassword, App: "screenpop",
		AgentOf: agentOf, InboundContexts: []string{"from-carrier"},
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		// The recordings come from a PBX that reports no presentation;
		// the tests check their numbers (TestUnknownPresentation the default).
		OnUnknownPresentation: PresentationShow,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	h := &harness{t: t, srv: srv, reg: prometheus.NewRegistry(), sink: newCollector(), logs: &logbuf.Buffer{}, done: make(chan error, 1)}
	logger := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	src, err := New(cfg, logger, h.reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.src = src
	ctx, cancel := context.WithCancel(context.Background())
	var sink screenpop.CallSink = h.sink
	if wrap != nil {
		sink = wrap(h.sink)
	}
	go func() { h.done <- src.Run(ctx, sink) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-h.done:
			if err != nil {
				t.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-time.After(patience):
			t.Errorf("Run did not return after cancel")
		}
		if t.Failed() {
			t.Logf("source log:\n%s", h.logs.String())
		}
	})
	return h
}

// waitReady polls Ready until it returns nil.
func (h *harness) waitReady() {
	h.t.Helper()
	h.waitReadiness("ready", func(err error) bool { return err == nil })
}

// waitSocket waits until the fake has registered the source's n-th event
// socket (counted since the fake started) and it is open. Ready alone does
// not say so: the fake files a socket only after its handshake, and on a
// reconnect the application already exists, so the source can be ready
// before the fake knows the new socket; an event sent then reaches none.
func (h *harness) waitSocket(n int) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := h.srv.WaitAccepted(ctx, n); err != nil {
		h.t.Fatalf("%v (%d accepted, %d open)", err, h.srv.Accepted(), h.srv.Sockets())
	}
}

func (h *harness) waitReadiness(what string, cond func(error) bool) error {
	h.t.Helper()
	deadline := time.Now().Add(patience)
	for {
		err := h.src.Ready()
		if cond(err) {
			return err
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for the source to be %s; Ready() = %v", what, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (h *harness) counter(name string, labels ...string) float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	h.t.Fatalf("metric %s%v not found", name, labels)
	return 0
}

// eventsTotal sums screenpop_ari_events_total over every type.
func (h *harness) eventsTotal() float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "screenpop_ari_events_total" {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// waitAllEnded waits until n calls ended. There is no limit on the whole
// wait: a loaded machine may take minutes for a burst, and that is no
// failure. It fails when the source makes no progress (no event taken
// from the socket, no call ended) for patience, and then says how far the
// source got, which tells a stuck call model from lost events.
func (h *harness) waitAllEnded(n, sent int) []screenpop.CallEvent {
	h.t.Helper()
	stall := time.NewTimer(patience)
	defer stall.Stop()
	lastTaken, lastEnded := h.eventsTotal(), -1
	for {
		h.sink.mu.Lock()
		ended, ch := h.sink.ended, h.sink.changed
		h.sink.mu.Unlock()
		if ended >= n {
			return h.sink.snapshot()
		}
		select {
		case <-ch:
		case <-stall.C:
			taken := h.eventsTotal()
			if taken > lastTaken || ended > lastEnded {
				lastTaken, lastEnded = taken, ended
				stall.Reset(patience)
				continue
			}
			h.t.Fatalf("no progress for %s: %d of %d calls ended, %v of %d events taken from the socket and processed "+
				"(events lost, or the call model stuck)", patience, ended, n, taken, sent)
		}
	}
}

// waitEvents waits until events_total counts n events, and fails if it
// counts more, or if it stops moving for patience short of n.
func (h *harness) waitEvents(n int) {
	h.t.Helper()
	last, deadline := -1.0, time.Now()
	for {
		got := h.eventsTotal()
		if got == float64(n) {
			return
		}
		if got > last {
			last, deadline = got, time.Now().Add(patience)
		}
		if got > float64(n) || time.Now().After(deadline) {
			h.t.Fatalf("events_total = %v, want %d: events were lost or invented", got, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (h *harness) lint() {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, p := range problems {
		h.t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
}

// recording reads a testdata recording, one event per line.
func recording(t *testing.T, name string) [][]byte {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			out = append(out, slices.Clone(line))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// indexOf finds the first line of a recording holding every needle.
func indexOf(t *testing.T, lines [][]byte, needles ...string) int {
	t.Helper()
	for i, l := range lines {
		ok := true
		for _, n := range needles {
			if !bytes.Contains(l, []byte(n)) {
				ok = false
				break
			}
		}
		if ok {
			return i
		}
	}
	t.Fatalf("no line holds %q", needles)
	return -1
}

var (
	channelIDRe   = regexp.MustCompile(`\b1795426\d{3}\.\d+\b`)
	channelNameRe = regexp.MustCompile(`(PJSIP/[a-z0-9]+)-([0-9a-f]{8})`)
	uuidRe        = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
)

// callCopier rewrites a recording into the events of other calls: other
// channel ids, channel names, bridge ids and caller number, so that many
// copies can run at once on one PBX.
type callCopier struct {
	lines   []string
	ids     []string // channel ids of the recording
	names   [][2]string
	uuids   []string
	numbers string
}

func newCallCopier(lines [][]byte) *callCopier {
	c := &callCopier{numbers: "+4930123456"}
	seen := map[string]bool{}
	for _, l := range lines {
		s := string(l)
		c.lines = append(c.lines, s)
		for _, id := range channelIDRe.FindAllString(s, -1) {
			if !seen[id] {
				seen[id] = true
				c.ids = append(c.ids, id)
			}
		}
		for _, m := range channelNameRe.FindAllStringSubmatch(s, -1) {
			if !seen[m[0]] {
				seen[m[0]] = true
				c.names = append(c.names, [2]string{m[0], m[1]})
			}
		}
		for _, u := range uuidRe.FindAllString(s, -1) {
			if !seen[u] {
				seen[u] = true
				c.uuids = append(c.uuids, u)
			}
		}
	}
	return c
}

// copy makes the n-th copy, with caller number.
func (c *callCopier) copy(n int, number string) [][]byte {
	var pairs []string
	for _, id := range c.ids {
		_, seq, _ := strings.Cut(id, ".")
		pairs = append(pairs, `"`+id+`"`, fmt.Sprintf(`"%d.%s"`, 1900000000+n, seq))
	}
	for i, nm := range c.names {
		pairs = append(pairs, nm[0], fmt.Sprintf("%s-%08x", nm[1], n*64+i))
	}
	for i, u := range c.uuids {
		pairs = append(pairs, u, fmt.Sprintf("00000000-0000-4000-%04x-%012x", i, n))
	}
	pairs = append(pairs, c.numbers, number)
	r := strings.NewReplacer(pairs...)
	out := make([][]byte, len(c.lines))
	for i, l := range c.lines {
		out[i] = []byte(r.Replace(l))
	}
	return out
}

// callCopy is newCallCopier(lines).copy(n, number).
func callCopy(lines [][]byte, n int, number string) [][]byte {
	return newCallCopier(lines).copy(n, number)
}

// interleave merges several calls' events into one stream, keeping each
// call's own order, in a random (seeded) interleaving.
func interleave(seed uint64, calls [][][]byte) [][]byte {
	r := rand.New(rand.NewPCG(seed, seed))
	pos := make([]int, len(calls))
	live := make([]int, len(calls))
	total := 0
	for i, c := range calls {
		live[i] = i
		total += len(c)
	}
	out := make([][]byte, 0, total)
	for len(live) > 0 {
		k := r.IntN(len(live))
		c := live[k]
		out = append(out, calls[c][pos[c]])
		pos[c]++
		if pos[c] == len(calls[c]) {
			live[k] = live[len(live)-1]
			live = live[:len(live)-1]
		}
	}
	return out
}

func sendAll(t *testing.T, srv *fakeari.Server, lines [][]byte) {
	t.Helper()
	for i, l := range lines {
		if n := srv.Send(l); n != 1 {
			t.Fatalf("event %d of %d went to %d sockets, want 1 (%d sockets accepted, %d open)", i, len(lines), n, srv.Accepted(), srv.Sockets())
		}
	}
}
