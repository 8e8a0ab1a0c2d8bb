package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Options say what a bench run measures and how long it takes.
type Options struct {
	Quick bool   // a short run to see that everything works: one repetition, short windows
	Out   string // the Markdown report
	Dir   string // configurations, logs and profiles of the run; default a temporary folder, kept
	// Cases lists the cases to run, in this order: hit, ceiling, miss,
	// intake, redis, soak, idle, profile, gobench. Empty: all.
	Cases []string

	Agents        int           // agent WebSocket clients of load cases
	Reps          int           // repetitions of each measurement (the report shows their median)
	Window        time.Duration // how long calls start in a measurement; at least 1,000 calls are made
	SourceLatency time.Duration // each system's answer time (directory, then three sources in parallel)
	Ring, Talk    time.Duration // one call: ringing → answered → ended
	Rates         []float64     // cache-hit rates measured against the floor
	Ladder        []float64     // rates the ceiling search tries, rising
	CeilingP99    time.Duration // the ceiling: the highest rate with p99 under this and nothing lost
	IntakeRate    float64       // calls per second of the ARI vs HTTP comparison and the cache miss
	ARIScale      float64       // the recording's gaps multiplied by this (0.1: a 9 s call lasts 0.9 s)
	Recording     string        // the ARI recording calls are copied from; relative to the module
	Idle          []int         // idle socket counts
	Soak          time.Duration // the long run on Redis (issue 12: CPU per call flat over 10 minutes)
	SoakSlice     time.Duration
	Profile       time.Duration // CPU profile of the cache-hit case at ProfileRate
	ProfileRate   float64       // calls per second of the profiled run (500; 50 shows the per-call costs a quiet floor pays)
	GoBenchTime   string        // -benchtime of the Go benchmarks
	GoBenchPkgs   string        // their packages, separated by commas or spaces

	// Race builds the binaries with the race detector (the smoke test).
	Race bool
	Log  io.Writer // progress; nil: none
}

// DefaultOptions are the full run's options, or the quick run's.
func DefaultOptions(quick bool) Options {
	o := Options{
		Out:           "bench/RESULTS.md",
		Agents:        300,
		Reps:          3,
		Window:        10 * time.Second,
		SourceLatency: 20 * time.Millisecond,
		Ring:          time.Second,
		Talk:          time.Second,
		Rates:         []float64{50, 500},
		Ladder:        []float64{100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 4000, 6000},
		CeilingP99:    10 * time.Millisecond,
		IntakeRate:    50,
		ARIScale:      0.1,
		Recording:     "telephony/ari/testdata/answered.jsonl",
		Idle:          []int{1000, 10000, 19000},
		Soak:          10 * time.Minute,
		SoakSlice:     time.Minute,
		Profile:       20 * time.Second,
		ProfileRate:   500,
		GoBenchTime:   "300ms",
		GoBenchPkgs:   "./...",
	}
	if quick {
		o.Quick = true
		o.Out = "bench/RESULTS-quick.md"
		o.Reps = 1
		o.Window = 3 * time.Second
		o.Ladder = []float64{100, 300, 1000, 3000}
		o.Idle = []int{1000}
		o.Soak = 30 * time.Second
		o.SoakSlice = 10 * time.Second
		o.Profile = 5 * time.Second
		o.GoBenchTime = "50ms"
	}
	return o
}

// AllCases are the cases in the order they run.
var AllCases = []string{"hit", "ceiling", "miss", "intake", "redis", "soak", "idle", "profile", "gobench"}

func (o Options) runs(c string) bool { return len(o.Cases) == 0 || slices.Contains(o.Cases, c) }

func (o Options) check() error {
	for _, c := range o.Cases {
		if !slices.Contains(AllCases, c) {
			return fmt.Errorf("unknown case %q: the cases are %s", c, strings.Join(AllCases, ", "))
		}
	}
	switch {
	case o.Agents < 3:
		return fmt.Errorf("-agents %d: at least 3 (an ARI call rings three)", o.Agents)
	case o.Reps < 1:
		return fmt.Errorf("-reps %d: at least 1", o.Reps)
	case o.Window <= 0 || o.Ring <= 0 || o.Talk <= 0:
		return fmt.Errorf("-window, -ring and -talk must be positive")
	case o.runs("profile") && (o.Profile <= 0 || o.ProfileRate <= 0):
		return fmt.Errorf("-profile %s -profile-rate %g: both must be positive", o.Profile, o.ProfileRate)
	}
	return nil
}

// window is how long calls start at rate: Window, longer when needed for
// 1,000 calls (a p99.9 needs that many).
func (o Options) window(rate float64) time.Duration {
	need := time.Duration(1000 / rate * float64(time.Second))
	if o.Quick {
		return o.Window
	}
	return max(o.Window, need)
}
