// Command popbench is make bench's load harness: it builds screenpopd and
// the floor (popfloor), runs them as processes of their own against agents,
// call events and company systems it plays itself, and writes
// bench/RESULTS.md. See bench/README.md.
//
//	go run ./bench/cmd/popbench            the full run (three repetitions; about 45 minutes)
//	go run ./bench/cmd/popbench -quick     a short run that shows everything works
//	go run ./bench/cmd/popbench -cases hit,idle
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/screenpop/screenpop/bench"
)

func main() {
	quick := len(os.Args) > 1 && hasQuick(os.Args[1:])
	o := bench.DefaultOptions(quick)
	fs := flag.NewFlagSet("popbench", flag.ExitOnError)
	fs.Bool("quick", quick, "a short run (one repetition, short windows) into bench/RESULTS-quick.md")
	fs.StringVar(&o.Out, "out", o.Out, "the report (relative to the module)")
	fs.StringVar(&o.Dir, "dir", "", "folder for the daemons' configurations, logs and the profile (default: a new temporary folder)")
	cases := fs.String("cases", "", "comma-separated cases to run (default all): "+strings.Join(bench.AllCases, ","))
	fs.IntVar(&o.Agents, "agents", o.Agents, "agent WebSocket clients in load cases")
	fs.IntVar(&o.Reps, "reps", o.Reps, "repetitions of each measurement")
	fs.DurationVar(&o.Window, "window", o.Window, "how long calls start in one measurement (at least 1,000 calls are made)")
	fs.DurationVar(&o.SourceLatency, "source-latency", o.SourceLatency, "answer time of each company system")
	fs.DurationVar(&o.Ring, "ring", o.Ring, "ringing → answered")
	fs.DurationVar(&o.Talk, "talk", o.Talk, "answered → ended")
	rates := fs.String("rates", join(o.Rates), "cache-hit rates measured against the floor, calls/s")
	ladder := fs.String("ladder", join(o.Ladder), "rates the ceiling search tries, rising")
	fs.DurationVar(&o.CeilingP99, "ceiling-p99", o.CeilingP99, "the ceiling's p99 bound")
	fs.Float64Var(&o.IntakeRate, "intake-rate", o.IntakeRate, "calls/s of the ARI vs HTTP comparison and of the cache miss")
	fs.Float64Var(&o.ARIScale, "ari-scale", o.ARIScale, "the recording's gaps multiplied by this")
	fs.StringVar(&o.Recording, "recording", o.Recording, "ARI recording the calls are copied from")
	idle := fs.String("idle", joinInts(o.Idle), "idle socket counts")
	fs.DurationVar(&o.Soak, "soak", o.Soak, "the long run on Redis (0: none)")
	fs.DurationVar(&o.SoakSlice, "soak-slice", o.SoakSlice, "its slices")
	fs.DurationVar(&o.Profile, "profile", o.Profile, "CPU profile length")
	fs.Float64Var(&o.ProfileRate, "profile-rate", o.ProfileRate, "calls/s of the profiled run (cache hit)")
	fs.StringVar(&o.GoBenchTime, "gobench-time", o.GoBenchTime, "-benchtime of the Go benchmarks")
	fs.StringVar(&o.GoBenchPkgs, "gobench-pkgs", o.GoBenchPkgs, "packages of the Go benchmarks")
	cpuProfile := fs.String("cpuprofile", "", "write the harness's own CPU profile (the whole run) to this file: the harness shares the cores with what it measures")
	_ = fs.Parse(os.Args[1:])
	var err error
	if *cases != "" {
		o.Cases = strings.Split(*cases, ",")
	}
	if o.Rates, err = floats(*rates); err == nil {
		o.Ladder, err = floats(*ladder)
	}
	if err == nil {
		o.Idle, err = ints(*idle)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "popbench:", err)
		os.Exit(2)
	}
	o.Log = os.Stderr
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "popbench: -cpuprofile:", err)
			os.Exit(2)
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		}()
	}
	if err := run(o); err != nil {
		pprof.StopCPUProfile() // os.Exit runs no deferred call
		fmt.Fprintln(os.Stderr, "popbench:", err)
		if errors.Is(err, context.Canceled) {
			os.Exit(130)
		}
		os.Exit(1)
	}
}

// run is the harness's run, stopped by an interrupt or SIGTERM.
func run(o bench.Options) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	if err := bench.Run(ctx, o); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "popbench: done in %s: %s\n", time.Since(start).Round(time.Second), o.Out)
	return nil
}

// hasQuick finds -quick before the flags are parsed: it changes their
// defaults.
func hasQuick(args []string) bool {
	for _, a := range args {
		switch a {
		case "-quick", "--quick", "-quick=true", "--quick=true":
			return true
		}
	}
	return false
}

func join(fs []float64) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strings.Join(parts, ",")
}

func joinInts(is []int) string {
	parts := make([]string, len(is))
	for i, n := range is {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

func floats(s string) ([]float64, error) {
	var out []float64
	for _, p := range strings.Split(s, ",") {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || f <= 0 {
			return nil, fmt.Errorf("%q: want positive numbers separated by commas", s)
		}
		out = append(out, f)
	}
	return out, nil
}

func ints(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q: want positive counts separated by commas", s)
		}
		out = append(out, n)
	}
	return out, nil
}
