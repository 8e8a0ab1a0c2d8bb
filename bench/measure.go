package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// loadSpec is one measurement: a target under calls at a rate.
type loadSpec struct {
	setup  daemonSetup
	ari    bool          // calls come over ARI (the recording), not HTTP posts
	shape  int           // agents rung per call: 1, or 3 (the recording's)
	rate   float64       // calls per second
	window time.Duration // how long calls start
	ring   time.Duration // ringing → answered (HTTP calls)
	talk   time.Duration // answered → ended (HTTP calls)
	scale  float64       // ARI calls: the recording's gaps multiplied by this
	// profile, when set, records a CPU profile of the (first) daemon this
	// long, from a quarter into the window, into profilePath.
	profile     time.Duration
	profilePath string
	heapPath    string        // when set: the (first) daemon's heap profile at the end of the window
	slice       time.Duration // when set: CPU per call and p99 per slice of the window (the soak)
	// drain is how long after the last event a pop may still come before
	// it counts as lost; 5s when zero. Tests that only check delivery
	// give a loaded machine much longer: late is not lost.
	drain time.Duration
}

// Result is what one measurement found.
type Result struct {
	Calls      int
	Latency    Latency // ring → pop
	Complete   Latency // ring → the card complete (a card sent while built: its last section)
	Incomplete int     // pops whose card never completed
	NotOK      int     // cards with a section that did not answer (a timeout: the machine too busy)
	Expected   int
	Lost       int
	Duplicated int
	Unexpected int
	CPUPerCall time.Duration // the measured processes together
	// IdleCPU is the CPU the measured processes spend per second with the
	// agents connected and no call (pings, timers); NetCPUPerCall is
	// CPUPerCall less that, over the window: what calls themselves cost,
	// which matters at low rates.
	IdleCPU       time.Duration
	NetCPUPerCall time.Duration
	RedisCPU      time.Duration // per call, the harness's redis-server
	RSS           int64         // the measured processes together, at the end
	Rate          float64       // calls per second the harness achieved
	LagP99        time.Duration // how late the harness fired events
	PostErrors    int64         // posts that failed (sent again first when they got no answer)
	PostsResent   int64         // posts answered when sent again after a network error
	FirstError    string
	// OverPath is, for uncached cards, ring → browser minus the slowest
	// chain of systems that card waited for (directory, then its slowest
	// source), as those systems measured it.
	OverPath Latency
	Slices   []sliceResult
	Types    map[string]int
	// Overloaded: the target fell so far behind that the run was stopped
	// (errOverloaded); Calls are those rung until then.
	Overloaded bool
}

// sliceResult is one slice of a long run.
type sliceResult struct {
	From       time.Duration
	Calls      int
	CPUPerCall time.Duration
	P99        time.Duration
	Lost       int
}

// measure runs spec once, on a fresh target.
func (h *harness) measure(ctx context.Context, spec loadSpec, sizes msgSizes) (Result, error) {
	t, err := h.startTarget(ctx, spec.setup, sizes)
	if err != nil {
		return Result{}, err
	}
	defer t.stop()
	rec := newRecorder()
	agents, err := dialAgents(ctx, h.opts.Agents, 32, 4096, t.wsURL, func(k int) http.Header {
		hd, _ := h.header(t, k)
		return hd
	}, rec)
	if err != nil {
		return Result{}, err
	}
	defer agents.close()
	if !t.floor {
		// Each socket's hello and snapshot: every agent is in.
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		err := agents.waitReceived(wctx, int64(2*h.opts.Agents))
		cancel()
		if err != nil {
			return Result{}, err
		}
	}
	pctx, stopPosts := context.WithCancel(ctx)
	defer stopPosts()
	p := newPoster(pctx, h.cti)
	if err := h.warm(ctx, t, rec, p, spec); err != nil {
		return Result{}, err
	}

	events, ids, nums, err := h.plan(t, rec, p, spec)
	if err != nil {
		return Result{}, err
	}
	idle0, err := t.usage()
	if err != nil {
		return Result{}, err
	}
	const idleFor = 1500 * time.Millisecond
	time.Sleep(idleFor)
	before, err := t.usage()
	if err != nil {
		return Result{}, err
	}
	var prof chan error
	if spec.profile > 0 && len(t.admin) > 0 {
		prof = make(chan error, 1)
		go func() {
			select {
			case <-time.After(spec.window / 4):
				prof <- fetchProfile(ctx, t.admin[0], spec.profile, spec.profilePath)
			case <-ctx.Done():
				prof <- context.Cause(ctx)
			}
		}()
	}
	start := time.Now()
	var smp *sampler
	if spec.slice > 0 {
		smp = t.startSampling(spec.slice)
	}
	lagP99, _, err := schedule(ctx, events)
	overloaded := errors.Is(err, errOverloaded)
	if err != nil && !overloaded {
		return Result{}, err
	}
	if overloaded {
		// What waits for an answer is let go; what was not rung is not
		// counted.
		stopPosts()
		h.log("    %v", err)
	} else {
		drain := spec.drain
		if drain <= 0 {
			drain = 5 * time.Second
		}
		wctx, cancel := context.WithTimeout(ctx, drain)
		rec.waitPops(wctx, ids)
		cancel()
	}
	samples := smp.stop()
	if spec.heapPath != "" && len(t.admin) > 0 {
		if err := fetch(ctx, t.admin[0]+"/debug/pprof/heap", spec.heapPath); err != nil {
			h.log("    heap profile: %v", err)
		}
	}
	after, err := t.usage()
	if err != nil {
		return Result{}, err
	}
	elapsed := time.Since(start)
	if prof != nil {
		if err := <-prof; err != nil {
			h.log("    profile: %v", err)
		}
	}

	for _, e := range p.seenErrors() {
		h.log("    call-event post: %s", e)
	}
	o := rec.tally(ids)
	r := Result{
		Calls: o.rung, Latency: summarize(o.latencies), Complete: summarize(o.complete), Incomplete: o.incomplete,
		NotOK:    o.notOK,
		Expected: o.expected, Lost: o.lost,
		Duplicated: o.duplicated, Unexpected: o.unexpected, RSS: after.rss, Types: o.types,
		Rate: float64(len(ids)) / spec.window.Seconds(), LagP99: lagP99,
		PostErrors: p.errors.Load(), PostsResent: p.resent.Load(), FirstError: p.firstError(), Overloaded: overloaded,
	}
	// CPU is shared by the calls rung: all of them, but for a run stopped
	// as overloaded.
	if rung := time.Duration(o.rung); rung > 0 {
		r.CPUPerCall = (after.cpu - before.cpu) / rung
		r.RedisCPU = (after.redisCPU - before.redisCPU) / rung
		r.IdleCPU = time.Duration(float64(before.cpu-idle0.cpu) / idleFor.Seconds())
		r.NetCPUPerCall = (after.cpu - before.cpu - time.Duration(float64(r.IdleCPU)*elapsed.Seconds())) / rung
	}
	if !spec.setup.cached {
		r.OverPath = h.overPath(rec, ids, nums)
	}
	if spec.slice > 0 {
		r.Slices = sliceResults(rec, ids, spec, before, samples)
	}
	return r, nil
}

// warm rings every number of the pool once (cache hit: the cache holds
// every answer afterwards) or a few fresh ones (cache miss: connections
// and code paths warm), and waits for their cards to complete and the
// calls to end. A pool card with a section that did not answer (a
// machine so busy that a source timed out) is rung again, so that the
// measurement finds every answer cached.
func (h *harness) warm(ctx context.Context, t *target, rec *recorder, p *poster, spec loadSpec) error {
	nums := h.numbers.pool
	if !spec.setup.cached {
		nums = make([]string, 50)
		for i := range nums {
			nums[i] = h.numbers.next()
		}
	}
	const ring, talk = time.Second, 200 * time.Millisecond
	const rate = 100.0
	for pass := range 3 {
		var events []event
		var ids []string
		for i, num := range nums {
			k := i % h.opts.Agents
			id := fmt.Sprintf("w%d-%d", pass, i)
			c := rec.expect("cti/"+id, []int{k})
			ids = append(ids, "cti/"+id)
			ringing, answered, ended := httpCall(id, num, []string{agentID(k)}, 0, ring, talk)
			url := t.intakeURL(i)
			at := time.Duration(float64(i) / rate * float64(time.Second))
			events = append(events,
				event{at: at, fire: func() { c.rang(rec.now()); p.post(url, ringing) }},
				event{at: at + ring, fire: func() { p.post(url, answered) }},
				event{at: at + ring + talk, fire: func() { p.post(url, ended) }})
		}
		slices.SortStableFunc(events, func(a, b event) int { return int(a.at - b.at) })
		if _, _, err := schedule(ctx, events); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		rec.waitPops(wctx, ids)
		cancel()
		if n := p.errors.Load(); n > 0 {
			return fmt.Errorf("warm-up: %d call-event posts failed, the first: %s", n, p.firstError())
		}
		o := rec.tally(ids)
		bad := o.lost + o.notOK + o.incomplete
		if bad == 0 || !spec.setup.cached && o.lost == 0 {
			time.Sleep(500 * time.Millisecond) // the last ended events are taken
			return nil
		}
		h.log("    warm-up: of %d calls, %d pops lost, %d cards incomplete or with a section that did not answer: ringing the numbers again", len(ids), o.lost, o.notOK+o.incomplete)
	}
	return errors.New("warm-up: pops lost or cards incomplete after three passes: the machine is too busy for the daemon and its sources to answer in time")
}

// plan lays out the calls of the measurement window as events.
func (h *harness) plan(t *target, rec *recorder, p *poster, spec loadSpec) (events []event, ids, nums []string, err error) {
	n := int(spec.rate * spec.window.Seconds())
	events = make([]event, 0, n*3)
	ids = make([]string, 0, n)
	nums = make([]string, 0, n)
	for i := range n {
		at := time.Duration(float64(i) / spec.rate * float64(time.Second))
		num := h.numbers.pool[i%len(h.numbers.pool)]
		if !spec.setup.cached {
			num = h.numbers.next()
		}
		nums = append(nums, num)
		agents := make([]int, spec.shape)
		names := make([]string, spec.shape)
		for j := range agents {
			agents[j] = (i*spec.shape + j) % h.opts.Agents
			names[j] = agentID(agents[j])
		}
		if spec.ari {
			h.mu.Lock()
			h.nextARI++
			copyN := h.nextARI
			h.mu.Unlock()
			call, err := h.rec.copyCall(copyN, num, names, spec.scale)
			if err != nil {
				return nil, nil, nil, err
			}
			id := "pbx/" + call.linked
			c := rec.expect(id, agents)
			ids = append(ids, id)
			for li, line := range call.lines {
				slot, rings := call.rings[li]
				events = append(events, event{at: at + call.offsets[li], inline: true, fire: func() {
					if rings {
						c.ringAt[slot].Store(rec.now())
					}
					t.ari.Send(line)
				}})
			}
			continue
		}
		id := fmt.Sprintf("c%d", i)
		c := rec.expect("cti/"+id, agents)
		ids = append(ids, "cti/"+id)
		answerer := min(1, spec.shape-1) // the second agent, as in the recording
		ringing, answered, ended := httpCall(id, num, names, answerer, spec.ring, spec.talk)
		url := t.intakeURL(i)
		events = append(events,
			event{at: at, fire: func() { c.rang(rec.now()); p.post(url, ringing) }},
			event{at: at + spec.ring, fire: func() { p.post(url, answered) }},
			event{at: at + spec.ring + spec.talk, fire: func() { p.post(url, ended) }})
	}
	slices.SortStableFunc(events, func(a, b event) int { return int(a.at - b.at) })
	return events, ids, nums, nil
}

// overPath is, per uncached card, ring → the card complete on the
// agent's socket minus the slowest chain of systems it waited for.
func (h *harness) overPath(rec *recorder, ids, nums []string) Latency {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var over []time.Duration
	for i, id := range ids {
		c := rec.calls[id]
		path, ok := h.systems.path(nums[i])
		if !ok {
			continue
		}
		for i := range c.agents {
			if ring := c.ringAt[i].Load(); ring > 0 && c.doneAt[i] > 0 {
				over = append(over, time.Duration(c.doneAt[i]-ring)-path)
			}
		}
	}
	return summarize(over)
}

// fetchProfile records a CPU profile of d from an admin listener into path.
func fetchProfile(ctx context.Context, admin string, d time.Duration, path string) error {
	return fetch(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", admin, int(d.Seconds())), path)
}

// fetch writes what GET url answers into path.
func fetch(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: HTTP %s: %s", url, resp.Status, b)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}

// targetUsage is the measured processes' CPU and memory, and Redis's CPU.
type targetUsage struct {
	cpu, redisCPU time.Duration
	rss           int64
}

func (t *target) usage() (targetUsage, error) {
	var u targetUsage
	for _, p := range t.procs {
		pu, err := readUsage(p.pid())
		if err != nil {
			return u, fmt.Errorf("%s: %w", p.name, err)
		}
		u.cpu += pu.CPU
		u.rss += pu.RSS
	}
	if t.redis != nil {
		ru, err := readUsage(t.redis.pid())
		if err != nil {
			return u, fmt.Errorf("redis-server: %w", err)
		}
		u.redisCPU = ru.CPU
	}
	return u, nil
}

// usageAt is a usage sample and when it was taken.
type usageAt struct {
	at time.Duration
	u  targetUsage
}

// sampler takes the target's usage every interval until stopped.
type sampler struct {
	done    chan struct{}
	stopped chan struct{}
	out     []usageAt
}

func (t *target) startSampling(interval time.Duration) *sampler {
	s := &sampler{done: make(chan struct{}), stopped: make(chan struct{})}
	start := time.Now()
	go func() {
		defer close(s.stopped)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-tick.C:
				if u, err := t.usage(); err == nil {
					s.out = append(s.out, usageAt{at: time.Since(start), u: u})
				}
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the samples (nil sampler: none).
func (s *sampler) stop() []usageAt {
	if s == nil {
		return nil
	}
	close(s.done)
	<-s.stopped
	return s.out
}

// sliceResults cuts a long run into slices of spec.slice: the calls that
// started in each, their p99 and lost pops, and the CPU the target spent
// meanwhile per call.
func sliceResults(rec *recorder, ids []string, spec loadSpec, before targetUsage, samples []usageAt) []sliceResult {
	per := int(spec.rate * spec.slice.Seconds())
	if per == 0 {
		return nil
	}
	var out []sliceResult
	prev := before
	for i, smp := range samples {
		lo, hi := i*per, min((i+1)*per, len(ids))
		if lo >= hi {
			break
		}
		o := rec.tally(ids[lo:hi])
		out = append(out, sliceResult{
			From: time.Duration(i) * spec.slice, Calls: hi - lo,
			CPUPerCall: (smp.u.cpu - prev.cpu) / time.Duration(hi-lo),
			P99:        summarize(o.latencies).P99, Lost: o.lost,
		})
		prev = smp.u
	}
	return out
}
