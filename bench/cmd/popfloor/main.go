// Command popfloor is the floor of make bench: a bare gorilla/websocket
// server that takes call-event posts like screenpopd and only forwards one
// message of the same size per event to the agent's sockets. The harness
// (bench/cmd/popbench) starts it as a process of its own and measures it
// beside the daemon.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/screenpop/screenpop/bench"
)

func main() {
	var cfg bench.FloorConfig
	flag.StringVar(&cfg.Listen, "listen", "127.0.0.1:0", "address to listen on")
	flag.IntVar(&cfg.PopSize, "pop-size", 2048, "bytes sent for a ringing event (the daemon's pop)")
	flag.IntVar(&cfg.AnsweredSize, "answered-size", 160, "bytes sent for an answered event")
	flag.IntVar(&cfg.EndedSize, "ended-size", 160, "bytes sent for an ended event")
	flag.StringVar(&cfg.ARI, "ari", "", "URL of a PBX's REST interface whose events socket to read too (empty: none)")
	flag.StringVar(&cfg.ARIApp, "ari-app", "popbench", "ARI application to read events as")
	flag.StringVar(&cfg.ARIUser, "ari-user", "screenpop", "ARI user (the password is $POPFLOOR_ARI_PASSWORD)")
	flag.StringVar(&cfg.ARIName, "ari-name", "pbx", "name the ARI calls' ids start with, as the daemon's telephony entry")
	flag.StringVar(&cfg.Systems, "systems", "", "base URL of the company's systems to ask for each ringing call, as a daemon with nothing cached (empty: none)")
	flag.IntVar(&cfg.MissPopSize, "miss-pop-size", 1024, "with -systems: bytes of the pop sent once the directory answered")
	flag.IntVar(&cfg.SectionSize, "section-size", 512, "with -systems: bytes sent as each source but the last answers")
	flag.IntVar(&cfg.MissCardSize, "miss-card-size", 2048, "with -systems: bytes of the complete card sent as the last source answers (0: a section)")
	flag.Parse()
	cfg.Token = os.Getenv("POPFLOOR_TOKEN")
	cfg.ARIPassword = os.Getenv("POPFLOOR_ARI_PASSWORD")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench.ServeFloor(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "popfloor:", err)
		os.Exit(1)
	}
}
