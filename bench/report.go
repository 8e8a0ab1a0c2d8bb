package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// report collects what the cases found and writes bench/RESULTS.md.
type report struct {
	opts      Options
	machine   machine
	started   time.Time
	sizes     msgSizes
	hit       []hitRow
	ceilings  []ceilingResult
	miss      []Result
	missFloor []Result // the floor asking the same systems
	ari       []Result
	ariFloor  []Result // popfloor reading the same ARI events
	http3     []Result
	redis     []redisRow
	soak      *Result
	idle      []idleResult
	profile   *profileResult
	gobench   *goBench
	notes     []string
	failures  []string
}

type hitRow struct {
	rate          float64
	floor, daemon []Result
}

type redisRow struct {
	rate float64
	rs   []Result
}

type profileResult struct {
	run  Result
	path string
	tops []profileTop
}

type profileTop struct{ title, text string }

type goBench struct {
	cmd   string
	lines []string
}

func newReport(opts Options) *report { return &report{opts: opts, started: time.Now()} }

func (r *report) failed(name string, err error) {
	r.failures = append(r.failures, fmt.Sprintf("case %s: %v", name, err))
}

// machine is where and how the run ran.
type machine struct {
	cpus       int
	model      string
	kernel     string
	memTotal   string
	goVersion  string
	soft, hard uint64
	loadStart  string
	loadEnd    string
	command    string
}

func (m *machine) read(ctx context.Context) {
	m.cpus = runtime.NumCPU()
	m.model = "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kb int64
				fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
				m.memTotal = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	if out, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output(); err == nil {
		m.goVersion = strings.TrimSpace(string(out))
	}
	m.loadStart = loadAverage()
	args := append([]string{"popbench"}, os.Args[1:]...)
	m.command = "`" + strings.Join(args, " ") + "`"
	if os.Getenv("MAKELEVEL") != "" {
		m.command = "`make bench` → " + m.command
	}
}

// loadAverage is the 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// busy says whether a load average (as loadAverage writes it) is above
// the machine's cores.
func busy(load string, cpus int) bool {
	var one float64
	if _, err := fmt.Sscanf(load, "%g", &one); err != nil {
		return false
	}
	return one > float64(cpus)
}

// med is the median of a duration over repetitions.
func med(rs []Result, pick func(Result) time.Duration) time.Duration {
	return time.Duration(medianOf(rs, func(r Result) float64 { return float64(pick(r)) }))
}

func medF(rs []Result, pick func(Result) float64) float64 { return medianOf(rs, pick) }

func sumLost(rs []Result) (lost, dup, expected int) {
	for _, r := range rs {
		lost += r.Lost + int(r.PostErrors)
		dup += r.Duplicated
		expected += r.Expected
	}
	return
}

// sumBad is how many cards of the repetitions never completed or had a
// section that did not answer.
func sumBad(rs []Result) (incomplete, notOK int) {
	for _, r := range rs {
		incomplete += r.Incomplete
		notOK += r.NotOK
	}
	return
}

func completeP99(r Result) time.Duration { return r.Complete.P99 }

func netCPU(r Result) time.Duration { return r.NetCPUPerCall }

func fms(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f", ms(d))
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1f", ms(d))
	}
	return fmt.Sprintf("%.0f", ms(d))
}

func fmib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}

// each lists a value of every repetition ("1.9 / 2.0 / 1.8").
func each(rs []Result, pick func(Result) time.Duration) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fms(pick(r))
	}
	return strings.Join(parts, " / ")
}

func p99(r Result) time.Duration        { return r.Latency.P99 }
func cpuPerCall(r Result) time.Duration { return r.CPUPerCall }

// verdict says whether measured meets a target of at most (atMost) or at
// least goal, and by how much it misses.
func verdict(measured, goal float64, atMost bool, unit string) string {
	met := measured <= goal
	if !atMost {
		met = measured >= goal
	}
	if met {
		return "**met**"
	}
	pct := (measured - goal) / goal * 100
	return fmt.Sprintf("**missed** by %s%s (%+.0f%%)", trim(abs(measured-goal)), unit, pct)
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func trim(x float64) string {
	s := fmt.Sprintf("%.2f", x)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

// write renders the report into opts.Out.
func (r *report) write(ctx context.Context) error {
	var b bytes.Buffer
	r.render(&b)
	if err := os.MkdirAll(filepath.Dir(r.opts.Out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(r.opts.Out, b.Bytes(), 0o644)
}

func (r *report) render(b *bytes.Buffer) {
	o := r.opts
	m := r.machine
	p := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	p("# make bench — results")
	p("")
	p("Written by `make bench` (`bench/`, see `bench/README.md`); every figure below comes from the run described here.")
	if o.Quick {
		p("")
		p("**A quick run** (`-quick`: one repetition, %s windows): it shows that the harness works; its figures are not the ones to quote.", o.Window)
	}
	p("")
	p("| | |")
	p("|---|---|")
	p("| date | %s (run took %s) |", r.started.UTC().Format("2006-01-02 15:04 MST"), time.Since(r.started).Round(time.Second))
	p("| command | %s |", m.command)
	p("| machine | %d × %s, %s, %s |", m.cpus, m.model, m.memTotal, m.kernel)
	p("| Go | %s |", m.goVersion)
	p("| open files | soft %d, hard %d (the harness raises the soft limit to the hard one; the daemons inherit it) |", m.soft, m.hard)
	end := m.loadEnd
	if end == "" {
		end = "(run not finished)"
	}
	p("| load average (1, 5, 15 min) | start %s; end %s |", m.loadStart, end)
	p("")
	if busy(m.loadStart, m.cpus) || busy(m.loadEnd, m.cpus) {
		p("**The machine was busy**: the load average was above its %d cores at the start or at the end, so other processes took CPU time from the measured ones and from the harness. Latencies and ceilings below are worse than on a quiet machine, and comparable only with runs under the same load; CPU per call is the least affected.", m.cpus)
		p("")
	}
	p("## Set-up")
	p("")
	p("- Everything on this machine: the harness (`bench/cmd/popbench`: agents, call-event poster, fake ARI server, the company's systems), the daemon built from `./cmd/screenpopd` and run as a process of its own (CPU time from its threads' `/proc/<pid>/task/*/schedstat`, RSS from `/proc/<pid>/status`), and the floor `popfloor` (`bench/cmd/popfloor`), a bare gorilla/websocket server that takes the same posts and only forwards one message of the same size per event (in the ARI comparison it reads the same events socket too).")
	p("- %d agents, each a WebSocket client signed in with an HS256 token (as `screenpopd token` issues), held open through every run; a call rings one agent (agents in turn) through the HTTP call-event intake (`telephony/httpin`): `ringing`, `answered` %s later, `ended` %s after that.", o.Agents, o.Ring, o.Talk)
	p("- The card: a directory (phone → customer), then accounting, sales and credit in parallel, each an `http` source (`adapters/http`) the harness answers after %s. Cache hit: every number of a pool of %d rung once before the window (`cache_ttl` and `fresh_for` an hour, or the soak and 15 minutes if longer: nothing expires or is revalidated meanwhile), then rung again and again; cache miss: no `cache_ttl` and a fresh number every call.", o.SourceLatency, o.Agents)
	p("- Ring → browser: from just before the harness posts `ringing` (or sends the ARI `Dial` of that agent) to the moment the agent's socket read returns the `pop` of that call, on one monotonic clock. A pop not there 5 s after the last event of the window is **lost**; a second `pop` of one call to one agent is **duplicated**. Open loop: each event is posted at its time on a goroutine of its own, whatever the answers to earlier ones; a post that gets no answer (a network error) is sent once more, as the intake's README asks of a PBX, and counted.")
	p("- Messages: pop %d bytes, answered %d, ended %d; a card with nothing cached: a pop of %d bytes with its sections loading, then each section but the last in %d bytes (their mean), then the complete card in %d bytes (the floor sends the same sizes). Each measurement starts the processes afresh. Repetitions: %d; the tables show their median (lost and duplicated: the sum over them).", r.sizes.pop, r.sizes.answered, r.sizes.ended, r.sizes.missPop, r.sizes.section, r.sizes.missCard, o.Reps)
	p("- Daemon logs, configurations and the profile: `%s` (not kept in the repository).", o.Dir)
	p("")
	r.renderTargets(p)
	r.renderHit(p)
	r.renderCeiling(p)
	r.renderMiss(p)
	r.renderIntake(p)
	r.renderRedis(p)
	r.renderSoak(p)
	r.renderIdle(p)
	r.renderProfile(p)
	r.renderGoBench(p)
	if len(r.notes)+len(r.failures) > 0 {
		p("## Notes")
		p("")
		for _, n := range r.notes {
			p("- %s", n)
		}
		for _, f := range r.failures {
			p("- **failed**: %s", strings.ReplaceAll(f, "\n", " "))
		}
		p("")
	}
}

func (r *report) hitAt(rate float64) *hitRow {
	for i := range r.hit {
		if r.hit[i].rate == rate {
			return &r.hit[i]
		}
	}
	return nil
}

func (r *report) renderTargets(p func(string, ...any)) {
	p("## Targets")
	p("")
	p("*The floor* is what the bare forwarder (`popfloor`), which takes the same posts and writes messages of the same sizes, measured in this run on the same measure. Where the floor itself misses a target, the verdict says so: no daemon doing the same I/O on this machine could meet it.")
	p("")
	p("| target (issue) | measured | the floor | |")
	p("|---|---|---|---|")
	// floorToo adds, to a missed target the floor misses as well, that
	// the floor misses it.
	floorToo := func(v string, floorMisses bool) string {
		if floorMisses && strings.HasPrefix(v, "**missed**") {
			return v + "; the floor misses it too"
		}
		return v
	}
	floorCPU := func(rate float64) (string, float64) {
		if h := r.hitAt(rate); h != nil && len(h.floor) > 0 {
			c := med(h.floor, cpuPerCall)
			return fmt.Sprintf("%s ms (cache hit at %.0f calls/s, one agent)", fms3(c), rate), ms(c)
		}
		return "–", 0
	}
	if h := r.hitAt(500); h != nil && len(h.floor) > 0 && len(h.daemon) > 0 {
		d, f := med(h.daemon, p99), med(h.floor, p99)
		x := float64(d) / float64(f)
		p("| cache hit at 500 calls/s: p99 at most 1.5× the floor (15) | %.2f× (%s ms against %s ms) | 1× | %s |", x, fms(d), fms(f), verdict(x, 1.5, true, "×"))
	} else {
		p("| cache hit at 500 calls/s: p99 at most 1.5× the floor (15) | not measured | | |")
	}
	floorCeiling, floorCapped := -1.0, false
	for _, c := range r.ceilings {
		if c.kind == floorOnly {
			floorCeiling, floorCapped = c.ceiling, c.capped
		}
	}
	for _, c := range r.ceilings {
		goal := 0.0
		switch c.kind {
		case oneDaemon:
			goal = 2000
		case twoDaemons:
			goal = 1000
		default:
			continue
		}
		got := fmt.Sprintf("%.0f calls/s", c.ceiling)
		switch {
		case c.capped:
			got = fmt.Sprintf("≥ %.0f calls/s (the ladder's top)", c.ceiling)
		case c.ceiling == 0:
			got = fmt.Sprintf("below %.0f calls/s, the ladder's lowest rate", r.opts.Ladder[0])
		}
		fl := "–"
		if floorCeiling >= 0 {
			fl = fmt.Sprintf("%.0f calls/s", floorCeiling)
			if floorCapped {
				fl = "≥ " + fl
			}
		}
		p("| ceiling, p99 under %s ms and nothing lost, %s: at least %.0f calls/s (15) | %s | %s | %s |", fms(r.opts.CeilingP99), c.kind, goal, got, fl,
			floorToo(verdict(c.ceiling, goal, false, " calls/s"), floorCeiling >= 0 && !floorCapped && floorCeiling < goal))
	}
	if h := r.hitAt(500); h != nil && len(h.daemon) > 0 {
		c := med(h.daemon, cpuPerCall)
		fl, fc := floorCPU(500)
		p("| CPU per call through HTTP intake at most 0.4 ms (15): cache hit at 500 calls/s, one agent, 3 posts | %s ms (%s ms less the idle CPU) | %s | %s |", fms3(c), fms3(med(h.daemon, netCPU)), fl, floorToo(verdict(ms(c), 0.4, true, " ms"), fc > 0.4))
	}
	// The floor at the intake comparison's rate: one agent, so fewer
	// messages than calls shaped like the recording; still what posts and
	// socket writes cost at that rate.
	fl, fc := floorCPU(r.opts.IntakeRate)
	if len(r.http3) > 0 {
		c := med(r.http3, cpuPerCall)
		p("| CPU per call through HTTP intake at most 0.4 ms (15): calls shaped like the recording (3 agents ring, one answers), %.0f calls/s | %s ms (%s ms less the idle CPU) | %s | %s |", r.opts.IntakeRate, fms3(c), fms3(med(r.http3, netCPU)), fl, floorToo(verdict(ms(c), 0.4, true, " ms"), fc > 0.4))
	}
	if len(r.ari) > 0 {
		c := med(r.ari, cpuPerCall)
		afl, afc := fl, fc
		if len(r.ariFloor) > 0 {
			// The floor reading the same events socket and sending the same
			// messages to the same three agents.
			afc = ms(med(r.ariFloor, cpuPerCall))
			afl = fmt.Sprintf("%s ms (the same ARI events, 3 agents)", fms3(med(r.ariFloor, cpuPerCall)))
		}
		p("| CPU per call through ARI (118 events) at most 1 ms (15), %.0f calls/s | %s ms (%s ms less the idle CPU) | %s | %s |", r.opts.IntakeRate, fms3(c), fms3(med(r.ari, netCPU)), afl, floorToo(verdict(ms(c), 1, true, " ms"), afc > 1))
	}
	if len(r.miss) > 0 {
		over := med(r.miss, func(r Result) time.Duration { return r.OverPath.P99 })
		// The floor asks the same systems in the same order and sends
		// the same messages: where its own time above the path is over
		// the bound, no daemon could keep within it.
		fl, floorOver := "–", false
		if len(r.missFloor) > 0 {
			fo := med(r.missFloor, func(r Result) time.Duration { return r.OverPath.P99 })
			fl = fmt.Sprintf("%s ms above it", fms(fo))
			floorOver = ms(fo) > 1
		}
		p("| cache miss: p99 at most 1 ms above the slowest path of sources (15) | %s ms above it (ring → card complete p99 %s ms; nominal path %s) | %s | %s |",
			fms(over), fms(med(r.miss, completeP99)), 2*r.opts.SourceLatency, fl, floorToo(verdict(ms(over), 1, true, " ms"), floorOver))
	}
	floorSocket := "–"
	for _, ir := range r.idle {
		if ir.kind == floorOnly && len(ir.rows) > 0 {
			last := ir.rows[len(ir.rows)-1]
			floorSocket = fmt.Sprintf("%.1f KiB at %d", last.perSocket/1024, last.sockets)
		}
	}
	for _, ir := range r.idle {
		if ir.kind != oneDaemon || len(ir.rows) == 0 {
			continue
		}
		last := ir.rows[len(ir.rows)-1]
		kib := last.perSocket / 1024
		note := ""
		if last.sockets != 19000 {
			why := "not asked for"
			if ir.limitMsg != "" {
				why = ir.limitMsg
			}
			note = fmt.Sprintf(" at %d sockets (19,000 not measured: %s)", last.sockets, why)
		}
		p("| idle agent socket at most 16 KiB at 19,000 sockets (15) | %.1f KiB%s; 50,000 agents: %s | %s | %s |", kib, note,
			fmib(ir.baseRSS+int64(last.perSocket*50000)), floorSocket, verdict(kib, 16, true, " KiB"))
	}
	if len(r.redis) > 0 {
		if h := r.hitAt(500); h != nil && len(h.daemon) > 0 {
			for _, rr := range r.redis {
				if rr.rate != 500 {
					continue
				}
				x := float64(med(rr.rs, p99)) / float64(med(h.daemon, p99))
				v := verdict(x, 2, true, "×")
				// A ratio is only worth something against an in-process
				// path that kept up: an overloaded one-daemon run (its p99
				// past the ceiling's bound) makes any Redis figure look good.
				if lost, dup, _ := sumLost(rr.rs); lost+dup > 0 {
					v = fmt.Sprintf("**missed**: %d pops lost and %d duplicated on Redis", lost, dup)
				} else if inproc := med(h.daemon, p99); inproc > r.opts.CeilingP99 {
					v = fmt.Sprintf("**not judged**: the in-process p99 (%s ms) is past the %s ms bound, so that run was overloaded and the ratio means nothing", fms(inproc), fms(r.opts.CeilingP99))
				}
				p("| Redis path p99 on a cache hit at 500 calls/s with two daemons within 2× of in-process (12, item 7) | %.2f× (%s ms against %s ms) | – | %s |",
					x, fms(med(rr.rs, p99)), fms(med(h.daemon, p99)), v)
			}
		}
	}
	if s := r.soak; s != nil && len(s.Slices) >= 2 {
		first, last := s.Slices[0].CPUPerCall, s.Slices[len(s.Slices)-1].CPUPerCall
		x := float64(last) / float64(first)
		v := verdict(x, 1.1, true, "×")
		if s.Lost > 0 || s.Overloaded {
			v = fmt.Sprintf("**missed**: the daemons did not keep up (%d of %d pops lost or late); a flat CPU per call means nothing then", s.Lost, s.Expected)
		}
		if s.PostErrors > 0 {
			v += fmt.Sprintf("; %d call-event posts failed (Soak, below)", s.PostErrors)
		}
		p("| CPU per call flat over a %s run, two daemons on Redis, 500 calls/s (12, item 7): last slice within 10%% of the first | %s → %s ms (%.2f×) | – | %s |",
			r.opts.Soak, fms3(first), fms3(last), x, v)
	}
	p("")
}

func (r *report) renderHit(p func(string, ...any)) {
	if len(r.hit) == 0 {
		return
	}
	p("## Cache hit: the daemon against the floor")
	p("")
	p("Ring → browser in ms: *pop* is the `pop` message; *complete* the moment the card is whole on the socket (a card the daemon sends while it is built comes as the pop with sections still loading, then each section: complete is the last of them; the floor's pop is complete). CPU per call: the process's time on a CPU over the window (with the answered and ended of every call) divided by the calls; RSS at the end. *Cards not whole*: pops whose card did not complete, and cards with a section that did not answer in time (on a busy machine a source times out; with the cache warm, only the machine can make it so).")
	p("")
	p("| calls/s | process | pop p50 | pop p99 | pop p99.9 | pop max | pop p99 of each repetition | complete p99 | lost | dup | cards not whole | CPU/call (ms) | RSS | pop p99 ÷ floor | complete p99 ÷ floor | CPU ÷ floor |")
	p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, h := range r.hit {
		for _, row := range []struct {
			name string
			rs   []Result
		}{{"floor", h.floor}, {"screenpopd", h.daemon}} {
			if len(row.rs) == 0 {
				continue
			}
			lost, dup, _ := sumLost(row.rs)
			inc, bad := sumBad(row.rs)
			rp99, rc99, rcpu := "1", "1", "1"
			if row.name != "floor" {
				rp99, rc99, rcpu = "–", "–", "–"
				if len(h.floor) > 0 {
					rp99 = ratio(med(row.rs, p99), med(h.floor, p99))
					rc99 = ratio(med(row.rs, completeP99), med(h.floor, completeP99))
					rcpu = ratio(med(row.rs, cpuPerCall), med(h.floor, cpuPerCall))
				}
			}
			p("| %.0f | %s | %s | %s | %s | %s | %s | %s | %d | %d | %d + %d | %s | %s | %s | %s | %s |", h.rate, row.name,
				fms(med(row.rs, func(r Result) time.Duration { return r.Latency.P50 })), fms(med(row.rs, p99)),
				fms(med(row.rs, func(r Result) time.Duration { return r.Latency.P999 })),
				fms(med(row.rs, func(r Result) time.Duration { return r.Latency.Max })),
				each(row.rs, p99), fms(med(row.rs, completeP99)), lost, dup, inc, bad, fms3(med(row.rs, cpuPerCall)),
				fmib(int64(medF(row.rs, func(r Result) float64 { return float64(r.RSS) }))), rp99, rc99, rcpu)
		}
	}
	p("")
}

// fms3 is a duration in ms with three decimals (CPU per call).
func fms3(d time.Duration) string { return fmt.Sprintf("%.3f", ms(d)) }

func (r *report) renderCeiling(p func(string, ...any)) {
	if len(r.ceilings) == 0 {
		return
	}
	p("## Ceiling")
	p("")
	ladder := make([]string, len(r.opts.Ladder))
	for i, l := range r.opts.Ladder {
		ladder[i] = fmt.Sprintf("%.0f", l)
	}
	p("The highest rate of the ladder (%s calls/s) at which the median pop p99 of %d repetitions stays under %s ms and no repetition loses a pop; cache hit, %s windows. The search probes each rate, rising, until one fails twice in a row (or once, overloaded), then confirms the last rate that passed with every repetition (stepping down while the median fails).",
		strings.Join(ladder, ", "), r.opts.Reps, fms(r.opts.CeilingP99), r.opts.Window)
	p("")
	p("| process | ceiling (calls/s) | pop p99 there (ms, each repetition) | complete p99 there | CPU/call there (ms) | probes: calls/s → pop p99 ms, lost |")
	p("|---|---|---|---|---|---|")
	for _, c := range r.ceilings {
		var probes []string
		for i, pr := range c.probes {
			probes = append(probes, fmt.Sprintf("%.0f → %s, %d", c.rates[i], fms(pr.Latency.P99), pr.Lost+int(pr.PostErrors)))
		}
		ceil := fmt.Sprintf("%.0f", c.ceiling)
		if c.capped {
			ceil = "≥ " + ceil
		}
		if c.ceiling == 0 {
			ceil = fmt.Sprintf("below %.0f", r.opts.Ladder[0])
		}
		there, complete, cpu := "–", "–", "–"
		if len(c.confirm) > 0 {
			there, complete, cpu = each(c.confirm, p99), fms(med(c.confirm, completeP99)), fms3(med(c.confirm, cpuPerCall))
		}
		p("| %s | %s | %s | %s | %s | %s |", c.kind, ceil, there, complete, cpu, strings.Join(probes, "; "))
	}
	p("")
	p("Above its ceiling the machine is the limit as much as the process: the harness (poster, %d clients) shares the %d cores with the process it measures.", r.opts.Agents, r.machine.cpus)
	p("")
}

func (r *report) renderMiss(p func(string, ...any)) {
	if len(r.miss) == 0 {
		return
	}
	p("## Cache miss")
	p("")
	p("%.0f calls/s, a fresh number each call, nothing cached: every card waits for the directory (%s), then for the slowest of three sources (%s each). *Above the path* is, per card, ring → card complete on the agent's socket minus the directory's and the slowest source's answer times for that very card as the harness's systems measured them (so the sleep's own overshoot is not counted against the daemon). The floor (`popfloor -systems`) asks the same systems in the same order for each ring — the directory, then the three sources at once — and sends the pop (its sections loading) once the directory answered, each section as its source answers but the last, and the complete card as the last answers (as the daemon does), in messages of the daemon's sizes: what the two requests in a row, the post and the messages cost on this machine, with no card built.",
		r.opts.IntakeRate, r.opts.SourceLatency, r.opts.SourceLatency)
	p("")
	p("| process | measure | p50 | p99 | p99.9 | max | p99 of each repetition |")
	p("|---|---|---|---|---|---|---|")
	for _, run := range []struct {
		name string
		rs   []Result
	}{{"floor", r.missFloor}, {"screenpopd", r.miss}} {
		if len(run.rs) == 0 {
			continue
		}
		rs := run.rs
		row := func(what string, pick func(Result) Latency) {
			at := func(q func(Latency) time.Duration) string {
				return fms(med(rs, func(r Result) time.Duration { return q(pick(r)) }))
			}
			p("| %s | %s | %s | %s | %s | %s | %s |", run.name, what, at(func(l Latency) time.Duration { return l.P50 }), at(func(l Latency) time.Duration { return l.P99 }),
				at(func(l Latency) time.Duration { return l.P999 }), at(func(l Latency) time.Duration { return l.Max }),
				each(rs, func(r Result) time.Duration { return pick(r).P99 }))
		}
		row("ring → pop (ms)", func(r Result) Latency { return r.Latency })
		row("ring → card complete (ms)", func(r Result) Latency { return r.Complete })
		row("above the path (ms)", func(r Result) Latency { return r.OverPath })
	}
	p("")
	for _, run := range []struct {
		name string
		rs   []Result
	}{{"The floor", r.missFloor}, {"The daemon", r.miss}} {
		if len(run.rs) == 0 {
			continue
		}
		lost, dup, _ := sumLost(run.rs)
		inc, bad := sumBad(run.rs)
		p("%s: lost %d, duplicated %d, cards not complete %d, with a section that did not answer %d; CPU per call %s ms (the systems are the harness's).", run.name, lost, dup, inc, bad, fms3(med(run.rs, cpuPerCall)))
		p("")
	}
}

func (r *report) renderIntake(p func(string, ...any)) {
	if len(r.ari)+len(r.http3) == 0 {
		return
	}
	p("## ARI against HTTP intake")
	p("")
	p("The same calls, %.0f calls/s, cache hit: three agents ring, the second answers, the caller hangs up — through the fake ARI server replaying `%s` with new channel ids, names, bridges, caller and agents per copy and its gaps × %.2g (118 events a call over one socket), and through HTTP posts with the same times (3 a call). *ARI, the floor*: `popfloor` reading the same events socket; it reads every frame but looks only at the Dial events that ring or answer an agent and at the caller's channel destroyed, and sends those agents the daemon's messages (a pop to each agent rung, an answered and an ended to the agent who answered): what reading the PBX's events and pushing the pops cost on this machine, with no call model and no card.",
		r.opts.IntakeRate, filepath.Base(r.opts.Recording), r.opts.ARIScale)
	p("")
	p("| intake | events a call | CPU/call (ms, each repetition) | idle CPU (ms/s) | CPU/call less idle (ms) | pop p50 | pop p99 | pop max | complete p99 | lost | dup |")
	p("|---|---|---|---|---|---|---|---|---|---|---|")
	for _, row := range []struct {
		name   string
		events int
		rs     []Result
	}{{"ARI, the floor", 118, r.ariFloor}, {"ARI", 118, r.ari}, {"HTTP", 3, r.http3}} {
		if len(row.rs) == 0 {
			continue
		}
		lost, dup, _ := sumLost(row.rs)
		cpus := make([]string, len(row.rs))
		for i, x := range row.rs {
			cpus[i] = fms3(x.CPUPerCall)
		}
		p("| %s | %d | %s (%s) | %s | %s | %s | %s | %s | %s | %d | %d |", row.name, row.events, fms3(med(row.rs, cpuPerCall)), strings.Join(cpus, " / "),
			fms(med(row.rs, func(r Result) time.Duration { return r.IdleCPU })), fms3(med(row.rs, func(r Result) time.Duration { return r.NetCPUPerCall })),
			fms(med(row.rs, func(r Result) time.Duration { return r.Latency.P50 })), fms(med(row.rs, p99)),
			fms(med(row.rs, func(r Result) time.Duration { return r.Latency.Max })), fms(med(row.rs, completeP99)), lost, dup)
	}
	p("")
}

func (r *report) renderRedis(p func(string, ...any)) {
	if len(r.redis) == 0 {
		return
	}
	p("## One daemon against two on Redis")
	p("")
	p("Two daemons share a `redis-server` the harness starts (nothing persisted); agents alternate between them, and so do calls, so a pop reaches the other daemon's agent through Redis half of the time. CPU per call: both daemons; Redis's apart.")
	p("")
	p("| calls/s | pop p50 | pop p99 | pop p99.9 | pop max | pop p99 of each repetition | complete p99 | lost | dup | CPU/call (ms) | Redis CPU/call (ms) | RSS (both) | pop p99 ÷ one daemon |")
	p("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, rr := range r.redis {
		lost, dup, _ := sumLost(rr.rs)
		vs := "–"
		if h := r.hitAt(rr.rate); h != nil && len(h.daemon) > 0 {
			vs = ratio(med(rr.rs, p99), med(h.daemon, p99))
		}
		p("| %.0f | %s | %s | %s | %s | %s | %s | %d | %d | %s | %s | %s | %s |", rr.rate,
			fms(med(rr.rs, func(r Result) time.Duration { return r.Latency.P50 })), fms(med(rr.rs, p99)),
			fms(med(rr.rs, func(r Result) time.Duration { return r.Latency.P999 })), fms(med(rr.rs, func(r Result) time.Duration { return r.Latency.Max })),
			each(rr.rs, p99), fms(med(rr.rs, completeP99)), lost, dup, fms3(med(rr.rs, cpuPerCall)), fms3(med(rr.rs, func(r Result) time.Duration { return r.RedisCPU })),
			fmib(int64(medF(rr.rs, func(r Result) float64 { return float64(r.RSS) }))), vs)
	}
	p("")
}

func (r *report) renderSoak(p func(string, ...any)) {
	s := r.soak
	if s == nil {
		return
	}
	p("## Soak: two daemons on Redis, 500 calls/s for %s", r.opts.Soak)
	p("")
	failed := ""
	if s.PostsResent > 0 {
		failed += fmt.Sprintf("; %d call-event posts got no answer and were answered when sent again", s.PostsResent)
	}
	if s.PostErrors > 0 {
		failed += fmt.Sprintf("; **%d call-event posts failed** (the first: %s)", s.PostErrors, s.FirstError)
	}
	p("%d calls; p99 %s ms, max %s ms, lost %d, duplicated %d%s; RSS of both daemons at the end %s.", s.Calls, fms(s.Latency.P99), fms(s.Latency.Max), s.Lost, s.Duplicated, failed, fmib(s.RSS))
	p("")
	p("| from | calls | CPU/call (ms) | pop p99 (ms) | lost |")
	p("|---|---|---|---|---|")
	for _, sl := range s.Slices {
		p("| %s | %d | %s | %s | %d |", sl.From, sl.Calls, fms3(sl.CPUPerCall), fms(sl.P99), sl.Lost)
	}
	p("")
}

func (r *report) renderIdle(p func(string, ...any)) {
	if len(r.idle) == 0 {
		return
	}
	p("## Idle agent sockets")
	p("")
	p("Sockets opened one agent each and left idle (the daemon's hello and snapshot taken, pings answered), %s to settle, then the process's resident memory; per socket: (RSS − RSS before the first socket) ÷ sockets. For the daemon also the Go heap objects and goroutine stacks in use (its admin listener's `/debug/metrics`), per socket.", settle)
	p("")
	p("| process | sockets | RSS | per socket (RSS) | per socket (Go heap + stacks) |")
	p("|---|---|---|---|---|")
	for _, ir := range r.idle {
		p("| %s | 0 | %s | | |", ir.kind, fmib(ir.baseRSS))
		for _, row := range ir.rows {
			goPer := "–"
			if row.goMem >= 0 {
				goPer = fmt.Sprintf("%.1f KiB", row.goPer/1024)
			}
			p("| %s | %d | %s | %.1f KiB | %s |", ir.kind, row.sockets, fmib(row.rss), row.perSocket/1024, goPer)
		}
		for _, s := range ir.skipped {
			p("| %s | %d | not measured: %s | | |", ir.kind, s, ir.limitMsg)
		}
	}
	p("")
	for _, ir := range r.idle {
		if ir.kind == oneDaemon && len(ir.rows) > 0 {
			last := ir.rows[len(ir.rows)-1]
			p("Projection: 50,000 agents on one daemon ≈ %s resident (%s before the first socket + 50,000 × %.1f KiB), before any call; it needs an open-file limit above 50,000 (`LimitNOFILE=65536` in the unit), which this machine's hard limit (%d) does not allow one process.",
				fmib(ir.baseRSS+int64(last.perSocket*50000)), fmib(ir.baseRSS), last.perSocket/1024, r.machine.hard)
			p("")
		}
	}
}

func (r *report) renderProfile(p func(string, ...any)) {
	pr := r.profile
	if pr == nil {
		return
	}
	p("## Where the time goes: CPU profile at %g calls/s, cache hit", r.opts.ProfileRate)
	p("")
	p("`go tool pprof` on %s of the daemon's `/debug/pprof/profile` (admin listener) and on its `/debug/pprof/heap` at the end of the window, taken during this run: %s.", r.opts.Profile, pr.run.brief())
	p("")
	for _, t := range pr.tops {
		p("%s:", t.title)
		p("")
		p("```")
		for line := range strings.SplitSeq(strings.TrimSpace(t.text), "\n") {
			if strings.HasPrefix(line, "File:") || strings.HasPrefix(line, "Build ID:") || strings.HasPrefix(line, "Type:") || strings.HasPrefix(line, "Time:") {
				continue
			}
			p("%s", line)
		}
		p("```")
		p("")
	}
}

func (r *report) renderGoBench(p func(string, ...any)) {
	g := r.gobench
	if g == nil {
		return
	}
	p("## Go benchmarks")
	p("")
	p("`%s`", g.cmd)
	p("")
	p("```")
	for _, l := range g.lines {
		p("%s", l)
	}
	p("```")
	p("")
}
