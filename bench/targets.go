package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/screenpop/screenpop/pop"
	"github.com/screenpop/screenpop/telephony/ari/fakeari"
)

// harness is what every run of one bench invocation shares: the binaries,
// the company's systems, the secrets, the numbers and the recording.
type harness struct {
	opts    Options
	bins    Binaries
	dir     string // configurations, logs, profiles of this invocation
	systems *systems
	numbers *numbers
	rec     *recording
	secret  string
	cti     string // call-event bearer token
	tokens  *pop.TokenAuth
	log     func(format string, args ...any)

	mu      sync.Mutex
	issued  []string // agent tokens by index
	runs    int      // runs started: each gets call ids of its own
	nextARI int      // ARI call copies made
}

func newHarness(opts Options, bins Binaries, dir string, logf func(string, ...any)) (*harness, error) {
	h := &harness{opts: opts, bins: bins, dir: dir, log: logf, secret: randomHex(24), cti: randomHex(16)}
	var err error
	if h.tokens, err = pop.NewTokenAuth([]byte(h.secret)); err != nil {
		return nil, err
	}
	if h.systems, err = startSystems(opts.SourceLatency); err != nil {
		return nil, err
	}
	// The soak rings the numbers cached at its warm-up for its whole
	// window: a 10-minute soak on 10-minute answers ended on misses.
	h.systems.cacheFor = max(time.Hour, opts.Soak+15*time.Minute)
	h.numbers = newNumbers(opts.Agents)
	if h.rec, err = loadRecording(opts.Recording, "+4930123456"); err != nil {
		h.systems.close()
		return nil, err
	}
	return h, nil
}

func (h *harness) close() { h.systems.close() }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// agentID is the id of agent k: extensions from 20000 up.
func agentID(k int) string { return strconv.Itoa(20000 + k) }

// token is agent k's sign-in token, as screenpopd token issues it.
func (h *harness) token(k int) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(h.issued) <= k {
		i := len(h.issued)
		tok, err := h.tokens.Issue(agentID(i), "Agent "+agentID(i), []string{"agent", "credit"}, 12*time.Hour)
		if err != nil {
			return "", err
		}
		h.issued = append(h.issued, tok)
	}
	return h.issued[k], nil
}

// targetKind is what a run measures.
type targetKind int

const (
	oneDaemon  targetKind = iota // screenpopd with its in-process cache and hub
	twoDaemons                   // two screenpopd on one Redis, agents and calls split between them
	floorOnly                    // popfloor
)

func (k targetKind) String() string {
	switch k {
	case oneDaemon:
		return "screenpopd"
	case twoDaemons:
		return "2 × screenpopd + Redis"
	}
	return "floor"
}

// target is the running thing a run measures.
type target struct {
	kind   targetKind
	procs  []*proc // measured: the daemons, or the floor
	redis  *proc   // measured apart
	intake []string
	ws     []string // WebSocket URL of each daemon (…/ws)
	admin  []string // admin listener of each daemon (http://…)
	ari    *fakeari.Server
	floor  bool
}

func (t *target) stop() {
	var wg sync.WaitGroup
	for _, p := range t.procs {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop() }()
	}
	wg.Wait()
	if t.ari != nil {
		t.ari.Close()
	}
	t.redis.stop()
}

// wsURL is where agent k connects: the daemons take agents in turn.
func (t *target) wsURL(k int) string {
	u := t.ws[k%len(t.ws)]
	if t.floor {
		return u + "?agent=" + agentID(k)
	}
	return u
}

// intakeURL is where call i's events are posted. With two daemons, calls
// go to them two by two while agents alternate (wsURL), so that half the
// pops are for an agent on the other daemon.
func (t *target) intakeURL(i int) string { return t.intake[(i/2)%len(t.intake)] }

// daemonSetup says how to configure the daemons of a run.
type daemonSetup struct {
	kind     targetKind
	cached   bool
	ari      bool // a fake PBX and an ari telephony entry
	agents   int  // agents listed by name in the configuration
	adminOff bool
}

// startTarget starts what setup asks for, fresh.
func (h *harness) startTarget(ctx context.Context, s daemonSetup, sizes msgSizes) (*target, error) {
	h.mu.Lock()
	h.runs++
	run := h.runs
	h.mu.Unlock()
	if s.kind == floorOnly {
		return h.startFloor(ctx, run, sizes, s.ari, !s.cached)
	}
	t := &target{kind: s.kind}
	n := 1
	redisAddr := ""
	if s.kind == twoDaemons {
		n = 2
		var err error
		if t.redis, redisAddr, err = startRedis(ctx, h.dir); err != nil {
			return nil, err
		}
	}
	if s.ari {
		t.ari = fakeari.New(nil, fakeari.WithWriteTimeout(10*time.Second))
		t.ari.SetChannels() // no call before the run; and Send need not follow the channels
	}
	for d := range n {
		adminPort, err := freePort()
		if err != nil {
			t.stop()
			return nil, err
		}
		cfg := h.daemonYAML(s, adminPort, redisAddr, t.ari)
		path := filepath.Join(h.dir, fmt.Sprintf("run%03d-daemon%d.yaml", run, d+1))
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.stop()
			return nil, err
		}
		env := []string{"POPBENCH_SECRET=" + h.secret, "POPBENCH_CTI_TOKENS=" + h.cti, "POPBENCH_ARI_PASSWORD=" + fakeari.DefaultPassword}
		p, rest, err := startProc(ctx, fmt.Sprintf("screenpopd %d", d+1), h.bins.Daemon, []string{"-config", path}, env,
			strings.TrimSuffix(path, ".yaml")+".log", "screenpop is running: ")
		if err != nil {
			t.stop()
			return nil, err
		}
		t.procs = append(t.procs, p)
		base, _, _ := strings.Cut(rest, " ")
		t.intake = append(t.intake, base+"/api/v1/call-events/cti")
		t.ws = append(t.ws, "ws"+strings.TrimPrefix(base, "http")+"/ws")
		if !s.adminOff {
			t.admin = append(t.admin, fmt.Sprintf("http://127.0.0.1:%d", adminPort))
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = waitHTTP(wctx, base+"/readyz") // the ARI socket is up and resynced
		cancel()
		if err != nil {
			t.stop()
			return nil, err
		}
	}
	return t, nil
}

// daemonYAML is a daemon's configuration for setup.
func (h *harness) daemonYAML(s daemonSetup, adminPort int, redisAddr string, ari *fakeari.Server) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# written by make bench (bench/targets.go)
listen: 127.0.0.1:0
log_level: info
region: DE
deadline: 1500ms
history_limit: 10
lines:
  "+493090182000": Customer service

auth:
  secret_env: POPBENCH_SECRET

agents:
  patterns: ["PJSIP/{agent}"]
  names:
`)
	for k := range s.agents {
		fmt.Fprintf(&b, "    %q: Agent %s\n", agentID(k), agentID(k))
	}
	b.WriteString(`
telephony:
  - {name: cti, type: http, tokens_env: POPBENCH_CTI_TOKENS}
`)
	if ari != nil {
		fmt.Fprintf(&b, `  - name: pbx
    type: ari
    url: %s
    user: %s
    password_env: POPBENCH_ARI_PASSWORD
    app: popbench
    inbound_contexts: [from-carrier]
    on_unknown_presentation: show
`, ari.URL(), fakeari.DefaultUser)
	}
	if !s.adminOff {
		fmt.Fprintf(&b, "\nadmin:\n  listen: 127.0.0.1:%d\n", adminPort)
	}
	if redisAddr != "" {
		fmt.Fprintf(&b, "\nredis:\n  address: %s\n  key_prefix: \"popbench:\"\n", redisAddr)
	}
	b.WriteString("\n")
	b.WriteString(h.systems.sourcesYAML(s.cached))
	return b.String()
}

// msgSizes are the sizes of the daemon's messages for one call, which
// the floor sends alike: pop is all it sends for a ring (a card sent
// while it is built comes in several messages); missPop, section and
// missCard are those messages of a card built with nothing cached: its
// first pop, a section (their mean) and the complete card, which holds
// what settled last.
type msgSizes struct{ pop, answered, ended, missPop, section, missCard int }

// startFloor starts popfloor; with ari, a fake PBX whose events socket
// it reads too, as the daemon's ari entry would; with miss, asking the
// harness's systems for every ring, as a daemon with nothing cached.
func (h *harness) startFloor(ctx context.Context, run int, sizes msgSizes, ari, miss bool) (*target, error) {
	log := filepath.Join(h.dir, fmt.Sprintf("run%03d-floor.log", run))
	args := []string{"-pop-size", strconv.Itoa(sizes.pop), "-answered-size", strconv.Itoa(sizes.answered), "-ended-size", strconv.Itoa(sizes.ended)}
	if miss {
		args = append(args, "-systems", h.systems.url, "-miss-pop-size", strconv.Itoa(sizes.missPop), "-section-size", strconv.Itoa(sizes.section), "-miss-card-size", strconv.Itoa(sizes.missCard))
	}
	t := &target{kind: floorOnly, floor: true}
	if ari {
		t.ari = fakeari.New(nil, fakeari.WithWriteTimeout(10*time.Second))
		t.ari.SetChannels()
		args = append(args, "-ari", t.ari.URL(), "-ari-user", fakeari.DefaultUser, "-ari-app", "popbench", "-ari-name", "pbx")
	}
	p, rest, err := startProc(ctx, "popfloor", h.bins.Floor, args,
		[]string{"POPFLOOR_TOKEN=" + h.cti, "POPFLOOR_ARI_PASSWORD=" + fakeari.DefaultPassword}, log, floorPrefix)
	if err != nil {
		t.stop()
		return nil, err
	}
	t.procs = []*proc{p}
	t.intake = []string{rest + "/api/v1/call-events/cti"}
	t.ws = []string{"ws" + strings.TrimPrefix(rest, "http") + "/ws"}
	return t, nil
}

// header is how agent k signs in: a bearer token, as a non-browser client
// does (the floor takes the agent from the URL).
func (h *harness) header(t *target, k int) (http.Header, error) {
	if t.floor {
		return nil, nil
	}
	tok, err := h.token(k)
	if err != nil {
		return nil, err
	}
	return http.Header{"Authorization": {"Bearer " + tok}}, nil
}
