package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Run builds the daemon and the floor, runs the cases opts asks for and
// writes the report to opts.Out (relative to the module), section by
// section as they complete.
func Run(ctx context.Context, opts Options) error {
	if err := opts.check(); err != nil {
		return err
	}
	logf := func(format string, args ...any) {
		if opts.Log != nil {
			fmt.Fprintf(opts.Log, time.Now().Format("15:04:05 ")+format+"\n", args...)
		}
	}
	root, err := ModuleRoot(ctx)
	if err != nil {
		return err
	}
	if !filepath.IsAbs(opts.Recording) {
		opts.Recording = filepath.Join(root, opts.Recording)
	}
	if !filepath.IsAbs(opts.Out) {
		opts.Out = filepath.Join(root, opts.Out)
	}
	if opts.Dir == "" {
		if opts.Dir, err = os.MkdirTemp("", "popbench-"); err != nil {
			return err
		}
	}
	rep := newReport(opts)
	rep.machine.soft, rep.machine.hard, err = RaiseFileLimit()
	if err != nil {
		logf("open-file limit: %v", err)
	}
	rep.machine.read(ctx)
	logf("building screenpopd and popfloor (logs, configurations and profiles in %s)", opts.Dir)
	bins, err := Build(ctx, root, opts.Dir, opts.Race)
	if err != nil {
		return err
	}
	h, err := newHarness(opts, bins, opts.Dir, logf)
	if err != nil {
		return err
	}
	defer h.close()

	sizes, err := h.calibrate(ctx)
	if err != nil {
		return fmt.Errorf("calibration: %w", err)
	}
	rep.sizes = sizes
	logf("a pop is %d bytes, answered %d, ended %d; with nothing cached, a pop of %d, sections of %d and the complete card in %d: the floor sends the same", sizes.pop, sizes.answered, sizes.ended, sizes.missPop, sizes.section, sizes.missCard)

	steps := []struct {
		name string
		run  func(context.Context, msgSizes, *report) error
	}{
		{"hit", h.caseHit}, {"ceiling", h.caseCeiling}, {"miss", h.caseMiss}, {"intake", h.caseIntake},
		{"redis", h.caseRedis}, {"soak", h.caseSoak}, {"idle", h.caseIdle}, {"profile", h.caseProfile},
		{"gobench", func(ctx context.Context, _ msgSizes, r *report) error { return h.caseGoBench(ctx, root, r) }},
	}
	var failed []error
	for _, s := range steps {
		if !opts.runs(s.name) {
			continue
		}
		logf("case %s", s.name)
		if err := s.run(ctx, sizes, rep); err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			logf("case %s failed: %v", s.name, err)
			rep.failed(s.name, err)
			failed = append(failed, fmt.Errorf("case %s: %w", s.name, err))
		}
		if err := rep.write(ctx); err != nil {
			return err
		}
	}
	rep.machine.loadEnd = loadAverage()
	if err := rep.write(ctx); err != nil {
		return err
	}
	logf("report: %s", opts.Out)
	return errors.Join(failed...)
}

// calibrate rings one call at one agent of a daemon and keeps the sizes
// of its messages, which the floor sends alike, after checking that its
// card is complete: resolved to the customer, every section answered. The
// floor's pop is as large as all the daemon sends for the ring (a card
// sent while it is built comes in several messages: the pop, then its
// sections and earlier calls). The daemon is fresh, so this card is built
// with nothing cached: its first pop, its sections and its complete card
// (which holds what settled last: no section message is sent for that)
// are the sizes the floor of a cache miss sends.
func (h *harness) calibrate(ctx context.Context) (msgSizes, error) {
	t, err := h.startTarget(ctx, daemonSetup{kind: oneDaemon, cached: true, agents: h.opts.Agents}, msgSizes{})
	if err != nil {
		return msgSizes{}, err
	}
	defer t.stop()
	rec := newRecorder()
	rec.keep = true
	agents, err := dialAgents(ctx, 1, 1, 4096, t.wsURL, func(k int) http.Header {
		hd, _ := h.header(t, k)
		return hd
	}, rec)
	if err != nil {
		return msgSizes{}, err
	}
	defer agents.close()
	p := newPoster(ctx, h.cti)
	ringing, answered, ended := httpCall("calibrate", h.numbers.pool[0], []string{agentID(0)}, 0, 0, 0)
	const id = "cti/calibrate"
	c := rec.expect(id, []int{0})
	c.rang(rec.now())
	p.post(t.intakeURL(0), ringing)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	missing := rec.waitPops(wctx, []string{id})
	cancel()
	if missing > 0 {
		return msgSizes{}, fmt.Errorf("no complete card within 30s (posts failed: %d %s); see %s", p.errors.Load(), p.firstError(), h.dir)
	}
	p.post(t.intakeURL(0), answered)
	p.post(t.intakeURL(0), ended)
	if p.errors.Load() > 0 {
		return msgSizes{}, fmt.Errorf("posting the call: %s", p.firstError())
	}
	var sizes msgSizes
	status := map[string]string{}
	resolution := ""
	deadline := time.Now().Add(30 * time.Second)
	for sizes.ended == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		rec.mu.Lock()
		kept := slices.Clone(rec.kept)
		rec.mu.Unlock()
		sizes = msgSizes{}
		sections := 0
		for _, data := range kept {
			var env envelope
			var parts struct {
				Card struct {
					Resolution string `json:"resolution"`
					Sections   []struct {
						Name, Status string
					} `json:"sections"`
				} `json:"card"`
				Section struct {
					Name, Status string
				} `json:"section"`
			}
			if json.Unmarshal(data, &env) != nil || env.CallID != id {
				continue
			}
			_ = json.Unmarshal(env.Data, &parts)
			switch env.Type {
			case "pop", "card":
				resolution = parts.Card.Resolution
				for _, s := range parts.Card.Sections {
					status[s.Name] = s.Status
				}
				sizes.pop += len(data)
				if env.Type == "pop" {
					sizes.missPop = len(data)
				} else {
					sizes.missCard = len(data)
				}
			case "section":
				status[parts.Section.Name] = parts.Section.Status
				sizes.pop += len(data)
				sizes.section += len(data)
				sections++
			case "history":
				sizes.pop += len(data)
			case "answered":
				sizes.answered = len(data)
			case "ended":
				sizes.ended = len(data)
			}
		}
		if sections > 0 {
			sizes.section /= sections
		}
	}
	var bad []string
	for name, st := range status {
		if st != "ok" {
			bad = append(bad, name+": "+st)
		}
	}
	if resolution != "customer" || len(status) != 3 || len(bad) > 0 || sizes.ended == 0 {
		return sizes, fmt.Errorf("the card is not complete (resolution %q, sections %v, ended %d bytes): the harness's systems or the daemon's configuration are wrong; see %s",
			resolution, status, sizes.ended, h.dir)
	}
	return sizes, nil
}

// reps measures spec opts.Reps times.
func (h *harness) reps(ctx context.Context, label string, spec loadSpec, sizes msgSizes) ([]Result, error) {
	var out []Result
	for i := range h.opts.Reps {
		r, err := h.measure(ctx, spec, sizes)
		if err != nil {
			return out, fmt.Errorf("%s, repetition %d: %w", label, i+1, err)
		}
		h.log("    %s #%d: %s", label, i+1, r.brief())
		out = append(out, r)
	}
	return out, nil
}

func (r Result) brief() string {
	s := fmt.Sprintf("%d calls at %.0f/s: pop p50 %.2f ms, p99 %.2f ms, max %.2f ms; complete p99 %.2f ms; lost %d, dup %d, incomplete %d; CPU/call %.3f ms, RSS %.1f MiB",
		r.Calls, r.Rate, ms(r.Latency.P50), ms(r.Latency.P99), ms(r.Latency.Max), ms(r.Complete.P99), r.Lost, r.Duplicated, r.Incomplete, ms(r.CPUPerCall), float64(r.RSS)/(1<<20))
	if r.PostsResent > 0 {
		s += fmt.Sprintf(", %d posts sent again after a network error", r.PostsResent)
	}
	if r.PostErrors > 0 {
		s += fmt.Sprintf(", %d posts failed (%s)", r.PostErrors, r.FirstError)
	}
	if r.Overloaded {
		s += ", stopped: overloaded"
	}
	return s
}

// hitSpec is a cache-hit measurement at rate of kind.
func (h *harness) hitSpec(kind targetKind, rate float64) loadSpec {
	return loadSpec{
		setup: daemonSetup{kind: kind, cached: true, agents: h.opts.Agents},
		shape: 1, rate: rate, window: h.opts.window(rate), ring: h.opts.Ring, talk: h.opts.Talk,
	}
}

// caseHit: cache hit at each rate, the daemon beside the floor, their
// repetitions alternating so that the machine's moods fall on both.
func (h *harness) caseHit(ctx context.Context, sizes msgSizes, rep *report) error {
	for _, rate := range h.opts.Rates {
		var floor, daemon []Result
		for i := range h.opts.Reps {
			for _, kind := range []targetKind{floorOnly, oneDaemon} {
				r, err := h.measure(ctx, h.hitSpec(kind, rate), sizes)
				if err != nil {
					return fmt.Errorf("%s at %.0f/s, repetition %d: %w", kind, rate, i+1, err)
				}
				h.log("    %s #%d: %s", kind, i+1, r.brief())
				if kind == floorOnly {
					floor = append(floor, r)
				} else {
					daemon = append(daemon, r)
				}
			}
		}
		rep.hit = append(rep.hit, hitRow{rate: rate, floor: floor, daemon: daemon})
	}
	return nil
}

// caseCeiling searches the highest rate with p99 under CeilingP99 and
// nothing lost, for the floor, one daemon and two daemons on Redis.
func (h *harness) caseCeiling(ctx context.Context, sizes msgSizes, rep *report) error {
	for _, kind := range []targetKind{floorOnly, oneDaemon, twoDaemons} {
		if kind == twoDaemons && !h.haveRedis() {
			rep.notes = append(rep.notes, "ceiling on Redis skipped: no redis-server")
			continue
		}
		c, err := h.ceiling(ctx, kind, sizes)
		if err != nil {
			return err
		}
		rep.ceilings = append(rep.ceilings, c)
	}
	return nil
}

// ceilingResult is a ceiling search: each probe, and the repetitions that
// confirmed the ceiling.
type ceilingResult struct {
	kind    targetKind
	probes  []Result
	rates   []float64 // of the probes
	ceiling float64   // 0: not even the lowest rate passed
	confirm []Result  // at ceiling
	capped  bool      // the highest rate of the ladder passed
}

func (h *harness) passes(r Result) bool {
	return r.Latency.P99 < h.opts.CeilingP99 && r.Lost == 0 && r.PostErrors == 0 && r.Latency.N > 0 && !r.Overloaded
}

func (h *harness) ceiling(ctx context.Context, kind targetKind, sizes msgSizes) (ceilingResult, error) {
	c := ceilingResult{kind: kind}
	last := -1 // index in the ladder of the highest rate a probe passed
probing:
	for i, rate := range h.opts.Ladder {
		spec := h.hitSpec(kind, rate)
		spec.window = h.opts.Window
		// A rate fails when two probes in a row fail: one burst of another
		// process on the machine must not end the search.
		for try := range 2 {
			r, err := h.measure(ctx, spec, sizes)
			if err != nil {
				return c, fmt.Errorf("%s at %.0f/s: %w", kind, rate, err)
			}
			h.log("    %s probe: %s", kind, r.brief())
			c.probes, c.rates = append(c.probes, r), append(c.rates, rate)
			if h.passes(r) {
				break
			}
			if try == 1 || r.Overloaded {
				break probing
			}
		}
		last = i
	}
	c.capped = last == len(h.opts.Ladder)-1
	// Confirm with every repetition, stepping down while the median fails.
	for ; last >= 0; last-- {
		rate := h.opts.Ladder[last]
		spec := h.hitSpec(kind, rate)
		spec.window = h.opts.Window
		rs, err := h.reps(ctx, fmt.Sprintf("%s confirm %.0f/s", kind, rate), spec, sizes)
		if err != nil {
			return c, err
		}
		lost := 0
		for _, r := range rs {
			lost += r.Lost + int(r.PostErrors)
		}
		if time.Duration(medianOf(rs, func(r Result) float64 { return float64(r.Latency.P99) })) < h.opts.CeilingP99 && lost == 0 {
			c.ceiling, c.confirm = rate, rs
			return c, nil
		}
		c.probes, c.rates = append(c.probes, rs...), append(c.rates, repeat(rate, len(rs))...)
	}
	return c, nil
}

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func (h *harness) haveRedis() bool {
	_, err := exec.LookPath("redis-server")
	return err == nil
}

// caseMiss: no cache, a fresh number every call: every card waits for the
// directory, then for its slowest source. The floor asks the same systems
// in the same order and sends messages of the same sizes.
func (h *harness) caseMiss(ctx context.Context, sizes msgSizes, rep *report) error {
	rate := h.opts.IntakeRate
	spec := loadSpec{setup: daemonSetup{kind: oneDaemon, cached: false, agents: h.opts.Agents}, shape: 1, rate: rate,
		window: h.opts.window(rate), ring: h.opts.Ring, talk: h.opts.Talk}
	floor := spec
	floor.setup.kind = floorOnly
	rs, err := h.reps(ctx, "cache miss, the floor", floor, sizes)
	rep.missFloor = rs
	if err != nil {
		return err
	}
	rs, err = h.reps(ctx, "cache miss", spec, sizes)
	rep.miss = rs
	return err
}

// caseIntake: the same calls (three agents ring, the second answers, the
// caller hangs up) through ARI (the recording's 118 events each) and
// through HTTP posts (3 each), for the CPU each costs per call.
func (h *harness) caseIntake(ctx context.Context, sizes msgSizes, rep *report) error {
	rate := h.opts.IntakeRate
	// The recording rings at about 0.1 s, is answered 3 s later and ends
	// 6 s after that: the HTTP calls keep the same times, scaled alike.
	ring := time.Duration(3 * h.opts.ARIScale * float64(time.Second))
	talk := time.Duration(6 * h.opts.ARIScale * float64(time.Second))
	for _, run := range []struct {
		kind targetKind
		ari  bool
		to   *[]Result
	}{{floorOnly, true, &rep.ariFloor}, {oneDaemon, true, &rep.ari}, {oneDaemon, false, &rep.http3}} {
		spec := loadSpec{setup: daemonSetup{kind: run.kind, cached: true, ari: run.ari, agents: h.opts.Agents},
			ari: run.ari, shape: 3, rate: rate, window: h.opts.window(rate), ring: ring, talk: talk, scale: h.opts.ARIScale}
		label := "HTTP intake, 3 agents"
		if run.ari {
			label = "ARI intake (118 events), 3 agents"
		}
		if run.kind == floorOnly {
			label = "the floor: " + label
		}
		rs, err := h.reps(ctx, label, spec, sizes)
		if err != nil {
			return err
		}
		*run.to = rs
	}
	return nil
}

// caseRedis: two daemons on one Redis, cache hit, at each rate.
func (h *harness) caseRedis(ctx context.Context, sizes msgSizes, rep *report) error {
	if !h.haveRedis() {
		rep.notes = append(rep.notes, "Redis cases skipped: no redis-server (make services installs it)")
		return nil
	}
	for _, rate := range h.opts.Rates {
		rs, err := h.reps(ctx, fmt.Sprintf("two daemons on Redis at %.0f/s", rate), h.hitSpec(twoDaemons, rate), sizes)
		if err != nil {
			return err
		}
		rep.redis = append(rep.redis, redisRow{rate: rate, rs: rs})
	}
	return nil
}

// caseSoak: two daemons on Redis at 500 calls/s for opts.Soak, sliced.
func (h *harness) caseSoak(ctx context.Context, sizes msgSizes, rep *report) error {
	if !h.haveRedis() || h.opts.Soak <= 0 {
		return nil
	}
	spec := h.hitSpec(twoDaemons, 500)
	spec.window, spec.slice = h.opts.Soak, h.opts.SoakSlice
	r, err := h.measure(ctx, spec, sizes)
	if err != nil {
		return err
	}
	h.log("    soak: %s", r.brief())
	rep.soak = &r
	return nil
}

// caseProfile: a CPU profile of the daemon at ProfileRate calls/s, cache
// hit, from its admin listener, and the top of it.
func (h *harness) caseProfile(ctx context.Context, sizes msgSizes, rep *report) error {
	spec := h.hitSpec(oneDaemon, h.opts.ProfileRate)
	spec.window = h.opts.Profile + 2*h.opts.Profile/3
	spec.profile = h.opts.Profile
	spec.profilePath = filepath.Join(h.dir, fmt.Sprintf("cache-hit-%g.pprof", h.opts.ProfileRate))
	spec.heapPath = filepath.Join(h.dir, fmt.Sprintf("cache-hit-%g-heap.pprof", h.opts.ProfileRate))
	r, err := h.measure(ctx, spec, sizes)
	if err != nil {
		return err
	}
	h.log("    profiled run: %s", r.brief())
	rep.profile = &profileResult{run: r, path: spec.profilePath}
	for _, q := range []struct {
		title, path string
		args        []string
	}{
		{"CPU, by function (flat)", spec.profilePath, []string{"-top", "-nodecount=25"}},
		{"CPU, by function and what it calls (cumulative)", spec.profilePath, []string{"-top", "-cum", "-nodecount=40"}},
		{"memory in use at the end of the window, by allocating function (cumulative)", spec.heapPath, []string{"-top", "-cum", "-sample_index=inuse_space", "-nodecount=25"}},
	} {
		cmd := exec.CommandContext(ctx, "go", append(append([]string{"tool", "pprof"}, q.args...), h.bins.Daemon, q.path)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("go tool pprof %s %s: %w\n%s", strings.Join(q.args, " "), q.path, err, out)
		}
		rep.profile.tops = append(rep.profile.tops, profileTop{title: q.title, text: string(out)})
	}
	return nil
}

// caseGoBench runs the Go benchmarks of the hot paths.
func (h *harness) caseGoBench(ctx context.Context, root string, rep *report) error {
	args := []string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-benchtime", h.opts.GoBenchTime, "-timeout", "30m"}
	args = append(args, strings.FieldsFunc(h.opts.GoBenchPkgs, func(r rune) bool { return r == ',' || r == ' ' })...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	var keep []string
	failing := false // the lines under a --- FAIL say why
	for line := range strings.SplitSeq(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "--- "):
			failing = strings.HasPrefix(line, "--- FAIL")
			keep = append(keep, line)
		case failing && strings.HasPrefix(line, "    "):
			keep = append(keep, line)
		case strings.HasPrefix(line, "Benchmark") || strings.HasPrefix(line, "pkg:") || strings.HasPrefix(line, "FAIL"):
			failing = false
			keep = append(keep, line)
		default:
			failing = false
		}
	}
	rep.gobench = &goBench{cmd: "go " + strings.Join(args, " "), lines: keep}
	if err != nil {
		return fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// runtimeMetric reads one number from a daemon's /debug/metrics.
func runtimeMetrics(ctx context.Context, admin string) (map[string]json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, admin+"/debug/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var m map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return nil, fmt.Errorf("%s/debug/metrics: %w", admin, err)
	}
	return m, nil
}

// goMemory is the Go heap objects and stacks in use, from /debug/metrics.
func goMemory(ctx context.Context, admin string) (int64, error) {
	m, err := runtimeMetrics(ctx, admin)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, name := range []string{"/memory/classes/heap/objects:bytes", "/memory/classes/heap/stacks:bytes"} {
		var v int64
		if err := json.Unmarshal(m[name], &v); err != nil {
			return 0, fmt.Errorf("%s: %s: %w", admin, name, err)
		}
		total += v
	}
	return total, nil
}
