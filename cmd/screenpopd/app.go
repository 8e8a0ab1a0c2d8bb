package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/screenpop/screenpop/adapters/postgres"
	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/aggregator/rediscache"
	"github.com/screenpop/screenpop/auth"
	"github.com/screenpop/screenpop/bearer"
	"github.com/screenpop/screenpop/configs"
	"github.com/screenpop/screenpop/floor"
	"github.com/screenpop/screenpop/history"
	"github.com/screenpop/screenpop/pop"
	"github.com/screenpop/screenpop/pop/redisbus"
)

// Options are the process-level things Main must not take from globals, so
// that a test can run the whole daemon in-process.
type Options struct {
	Env    func(string) string
	Stdout io.Writer // sign-in links
	Stderr io.Writer // logs
	// Registry receives every metric; a fresh one when nil.
	Registry *prometheus.Registry
	// IdPClient reaches the identity provider (auth.oidc, auth.jwt); nil:
	// the auth package's default client.
	IdPClient *http.Client
	// Daemon names this daemon in the history (the calls it records, the
	// access log); default: the host's name and the listen port.
	Daemon string
}

// Main is the whole daemon: built by NewMain (validation, no I/O), started
// by Run, stopped by cancelling Run's context and Close.
type Main struct {
	// cfg is the configuration running: set by NewMain, replaced by
	// Reload under cfgMu. Read it at run time with config().
	cfg      *configs.Config
	cfgMu    sync.RWMutex
	reloadMu sync.Mutex // one Reload at a time
	opts     Options
	logger   *slog.Logger
	logLevel *slog.LevelVar // log_level follows a reload
	reg      *prometheus.Registry
	pools    *postgres.Pools
	agg      *aggregator.Aggregator
	evict    *bearer.Set // nil without api.evict_tokens_env
	history  history.Store
	auth     *pop.TokenAuth // nil without an HS256 secret (company sign-in only)
	signIn   *auth.Authenticator
	signedIn signedInRoles // the roles of the agents' current sign-ins
	timeouts httpTimeouts
	hub      *pop.Hub
	disp     *pop.Dispatcher
	calls    []namedCallSource
	redis    redis.UniversalClient // nil without a redis block
	rcache   *rediscache.Cache     // the card cache on it; its near cache listens in Run
	keys     *rediscache.Keyring   // nil without redis.encryption_key_env
	bus      *redisbus.Bus         // nil without a redis block
	floor    *floor.Floor          // the supervisors' floor view (floor.go)

	mu      sync.Mutex
	ln      net.Listener
	adminLn net.Listener  // nil without admin.listen (admin.go)
	started chan struct{} // closed once the listener is up
}

// NewMain builds every component from the configuration. Nothing connects
// yet: a database or PBX that is down must not stop the daemon from starting.
func NewMain(cfg *configs.Config, opts Options) (*Main, error) {
	if opts.Env == nil {
		opts.Env = func(string) string { return "" }
	}
	if opts.Stdout == nil {
		opts.Stdout = io.Discard
	}
	if opts.Stderr == nil {
		opts.Stderr = io.Discard
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
		opts.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := &Main{cfg: cfg, opts: opts, reg: opts.Registry, timeouts: defaultHTTPTimeouts, started: make(chan struct{})}
	m.logLevel = new(slog.LevelVar)
	m.logLevel.Set(logLevel(cfg.LogLevel))
	m.logger = slog.New(newLogHandler(cfg.LogFormat, opts.Stderr, m.logLevel))
	m.pools = postgres.NewPools(m.logger.With("component", "postgres"))

	ac, err := aggregatorConfig(cfg, m.pools, opts.Env, m.logger)
	if err != nil {
		return nil, err
	}
	var cache aggregator.Cache = aggregator.NewMemoryCache(10000)
	if rc := cfg.Redis; rc != nil {
		if cache, err = m.openRedis(rc); err != nil {
			return nil, err
		}
	}
	if err := m.newHistory(cfg); err != nil {
		return nil, err
	}
	m.agg, err = aggregator.New(ac, aggregator.Options{
		Cache:   cache,
		History: m.history,
		// A background refresh found fresher data: cards on screen for
		// that caller are rebuilt and re-sent. m.disp is set below, before
		// any card is built.
		OnRefresh: func(phone, customerID string) {
			if m.disp != nil {
				m.disp.Refresh(phone, customerID)
			}
		},
		Logger:     m.logger.With("component", "aggregator"),
		Registerer: m.reg,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	if m.evict, err = evictTokens(cfg, opts.Env); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	if errs := distinctAPITokens(cfg, opts.Env); len(errs) > 0 {
		return nil, errs
	}

	secret, err := signingSecret(cfg, opts.Env)
	if err != nil {
		return nil, cfg.ErrorsIn("", err) // at its option's line, as config check says it
	}
	if secret != nil {
		if m.auth, err = pop.NewTokenAuth(secret); err != nil {
			return nil, err
		}
	}
	if m.signIn, err = m.newSignIn(secret); err != nil {
		return nil, err
	}
	// The lines of agents signing in and out and of calls ending name the
	// daemon: with several, a log pipeline tells them apart (and sees a
	// call two daemons watched once per daemon).
	daemon := daemonName(opts.Daemon, cfg.Listen)
	m.hub, err = pop.NewHub(pop.HubConfig{
		Auth:           rememberRoles{Authenticator: pop.FromAuth(m.signIn), roles: &m.signedIn},
		LoginURL:       m.signIn.LoginURL,
		SignOutOrigins: m.signIn.SignOutOrigins(),
		AllowedOrigins: cfg.Auth.AllowedOrigins,
		Logger:         m.logger.With("component", "hub", "daemon", daemon),
		Registerer:     m.reg,
	})
	if err != nil {
		return nil, err
	}
	var deliverer pop.Deliverer = m.hub
	if m.redis != nil {
		// Pops go through the agent's Redis stream, so they reach the
		// browser whichever daemon holds it; the bus falls back to this
		// hub by itself while Redis is down.
		bc := redisbus.Config{
			Client:     m.redis,
			Hub:        m.hub,
			KeyPrefix:  cfg.Redis.KeyPrefix,
			DownAfter:  cfg.Redis.DownAfter,
			Logger:     m.logger.With("component", "redisbus"),
			Registerer: m.reg,
		}
		if m.keys != nil {
			bc.Sealer = m.keys // streams, snapshots, forwarded requests
		}
		m.bus, err = redisbus.New(bc)
		if err != nil {
			return nil, err
		}
		m.hub.SetShared(m.bus)
		deliverer = m.bus
	}
	if m.floor, err = m.newFloor(daemon); err != nil {
		return nil, err
	}
	m.hub.SetAcks(m.floor) // pages acknowledge the pops they paint
	m.disp, err = pop.NewDispatcher(pop.DispatcherConfig{
		Builder:    m.agg,
		Recorder:   m.history,
		WrapUp:     wrapUpSettings(cfg.History),
		Directory:  m.agg, // agents search it for unknown callers, and link their numbers
		OnShown:    m.logAccess,
		Deliverer:  deliverer,
		AgentNames: m.agentName,
		AgentRoles: m.agentRoles,
		Observer:   m.floor,           // every call, from every source, for the floor and its metrics
		Connected:  m.floor.Connected, // a page on any daemon: a pop to nobody's screen is no delivery
		Logger:     m.logger.With("component", "dispatcher", "daemon", daemon),
		Registerer: m.reg,
	})
	if err != nil {
		return nil, err
	}
	m.hub.SetRequests(m.disp)

	if m.calls, err = buildTelephony(cfg, opts.Env, m.logger, m.reg); err != nil {
		return nil, err
	}
	return m, nil
}

// redisClientConfig is the client the daemon makes of the redis block
// (config check -connect makes the same).
func redisClientConfig(rc *configs.Redis, env func(string) string) rediscache.ClientConfig {
	secret := func(name string) string {
		if name == "" {
			return ""
		}
		return env(name)
	}
	return rediscache.ClientConfig{Addr: rc.Address, Password: secret(rc.PasswordEnv), DB: rc.DB,
		MasterName: rc.MasterName, SentinelAddrs: rc.SentinelAddresses, SentinelPassword: secret(rc.SentinelPasswordEnv),
		ClusterAddrs: rc.ClusterAddresses}
}

// redisKeys reads the key ring of redis.encryption_key_env as the daemon
// does (nil without the option; the current key first, then previous ones
// still read). A variable named but unset is refused, never taken for "no
// encryption": personal data would go to Redis in clear because a secret
// went missing in deployment. What is wrong is an aggregator.Problem at
// the option, so that the daemon and config check say it at its line.
// (An unset password_env is no password, as the shipped configurations
// say.)
func redisKeys(rc *configs.Redis, env func(string) string) (*rediscache.Keyring, error) {
	name := rc.EncryptionKeyEnv
	if name == "" {
		return nil, nil
	}
	keys, err := rediscache.ParseKeyring(env(name))
	if err != nil {
		return nil, aggregator.Problem{Path: "redis.encryption_key_env", Msg: fmt.Sprintf("%s: %s", name, strings.TrimPrefix(err.Error(), "rediscache: ")),
			Fix: fmt.Sprintf("export %s=$(openssl rand -base64 32) (keys to rotate out follow it, comma-separated), or remove encryption_key_env to store cards in clear", name)}
	}
	return keys, nil
}

// openRedis makes the shared Redis client and the card cache on it. Nothing
// connects yet: Redis being down at start only means not-ready.
func (m *Main) openRedis(rc *configs.Redis) (aggregator.Cache, error) {
	keys, err := redisKeys(rc, m.opts.Env)
	if err != nil {
		return nil, m.cfg.ErrorsIn("", err) // at its line, as config check says it
	}
	m.keys = keys
	client, err := rediscache.NewClient(redisClientConfig(rc, m.opts.Env))
	if err != nil {
		return nil, fmt.Errorf("%s: redis: %w", m.cfg.File, err)
	}
	m.redis = client
	redis.SetLogger(redisLog{m.logger.With("component", "go-redis")})
	if m.rcache, err = rediscache.New(rediscache.Config{
		Client:     client,
		KeyPrefix:  rc.KeyPrefix,
		MaxTTL:     rc.CardTTL,
		Keys:       m.keys,
		Logger:     m.logger.With("component", "rediscache"),
		Registerer: m.reg,
	}); err != nil {
		return nil, err
	}
	return m.rcache, nil
}

// signingSecret is the HS256 secret of agent tokens (screenpopd token, the
// demo links), or nil when agents sign in only through the identity
// provider (auth.oidc or auth.jwt, and neither secret_env nor demo_links).
// What is wrong is an aggregator.Problem at its option, so that the daemon
// and config check report it at the same line.
func signingSecret(cfg *configs.Config, env func(string) string) ([]byte, error) {
	if name := cfg.Auth.SecretEnv; name != "" {
		const fix = "export it with at least 32 random bytes, e.g. export %s=$(openssl rand -hex 32)"
		if s := env(name); s != "" {
			if len(s) < 32 {
				return nil, aggregator.Problem{Path: "auth.secret_env", Msg: fmt.Sprintf("the secret in %s is %d bytes; use at least 32 random bytes", name, len(s)), Fix: fmt.Sprintf(fix, name)}
			}
			return []byte(s), nil
		}
		if !cfg.Auth.DemoLinks {
			return nil, aggregator.Problem{Path: "auth.secret_env", Msg: fmt.Sprintf("environment variable %s is empty or unset", name), Fix: fmt.Sprintf(fix, name)}
		}
	} else if !cfg.Auth.DemoLinks {
		if cfg.Auth.OIDC != nil || cfg.Auth.JWT != nil {
			return nil, nil
		}
		return nil, aggregator.Problem{Path: "auth", Msg: "no way to sign agents in", Fix: "set oidc (company sign-in), secret_env (agent tokens need a signing secret) or demo_links: true for a demo"}
	}
	// Demo: a fresh secret per process; the printed links are the only way in.
	secret := make([]byte, 32)
	_, err := rand.Read(secret)
	return secret, err
}

// Run serves HTTP and runs every telephony source until ctx ends.
func (m *Main) Run(ctx context.Context) error {
	listen := m.config().Listen
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	m.mu.Lock()
	m.ln = ln
	m.mu.Unlock()
	adminLn, err := m.listenAdmin()
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler: m.routes(),
		// A client that sends its request or body slowly, or keeps an idle
		// connection open, is cut off rather than holding a connection (and
		// a goroutine) for ever. Agent sockets are hijacked, which clears
		// these deadlines: the hub keeps its own (ping/pong, write timeout).
		ReadHeaderTimeout: m.timeouts.readHeader,
		ReadTimeout:       m.timeouts.read,
		WriteTimeout:      m.timeouts.write,
		IdleTimeout:       m.timeouts.idle,
		ErrorLog:          slog.NewLogLogger(m.logger.Handler(), slog.LevelWarn),
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m.hub.Close()
		return srv.Shutdown(sctx)
	})
	if adminLn != nil {
		m.serveAdmin(ctx, g, adminLn)
	}
	stopHistory := m.runHistory(ctx, g)
	defer stopHistory()
	g.Go(func() error {
		defer stopHistory() // the dispatcher's last writes are in
		return m.disp.Run(ctx)
	})
	g.Go(func() error {
		m.probeSignIn(ctx)
		return nil
	})
	if m.bus != nil {
		g.Go(func() error { return m.bus.Run(ctx) })
	}
	if m.rcache != nil {
		g.Go(func() error { return m.rcache.Run(ctx) })
	}
	g.Go(func() error { return m.floor.Run(ctx) })
	for _, c := range m.calls {
		g.Go(func() error {
			if err := c.run(ctx, m.disp); err != nil {
				return fmt.Errorf("telephony %s: %w", c.name, err)
			}
			return nil
		})
	}
	close(m.started)
	m.announce()
	return g.Wait()
}

// Addr is the address the daemon listens on, once Run has started.
func (m *Main) Addr() net.Addr {
	<-m.started
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ln.Addr()
}

// Close releases what NewMain opened. It tolerates a Main that never ran.
func (m *Main) Close() error {
	m.agg.Close()
	m.pools.Close()
	m.history.Close()
	if m.redis != nil {
		return m.redis.Close()
	}
	return nil
}

func (m *Main) baseURL() string {
	if u := m.config().PublicURL; u != "" {
		return strings.TrimRight(u, "/")
	}
	return "http://" + m.ln.Addr().String()
}

// announce prints where to point a browser. In a demo the sign-in links
// carry a token in the URL fragment, which browsers never send to a server.
func (m *Main) announce() {
	base := m.baseURL()
	fmt.Fprintf(m.opts.Stdout, "screenpop is running: %s (metrics %s/metrics)\n", base, base)
	cfg := m.config()
	if !cfg.Auth.DemoLinks {
		return
	}
	agents := make([]string, 0, len(cfg.Agents.Names))
	for id := range cfg.Agents.Names {
		agents = append(agents, id)
	}
	sort.Strings(agents)
	fmt.Fprintln(m.opts.Stdout, "Open the agent page as one of the demo agents:")
	for _, id := range agents {
		tok, err := m.auth.Issue(id, cfg.Agents.Names[id], []string{"agent"}, cfg.Auth.TokenTTL)
		if err != nil {
			m.logger.Error("cannot issue demo token", "agent", id, "err", err)
			continue
		}
		fmt.Fprintf(m.opts.Stdout, "  agent %s (%s): %s/#token=%s\n", id, cfg.Agents.Names[id], base, tok)
	}
	m.announceFloor(base, cfg)
}

// evictTokens reads and checks the tokens of the eviction API: nil without
// api.evict_tokens_env, an error when a token is too short.
func evictTokens(cfg *configs.Config, env func(string) string) (*bearer.Set, error) {
	name := cfg.API.EvictTokensEnv
	if name == "" {
		return nil, nil
	}
	tokens, err := bearer.NewSet(splitTokens(env(name)))
	if err != nil {
		return nil, fmt.Errorf("api.evict_tokens_env: environment variable %s: %w", name, err)
	}
	return tokens, nil
}

func (m *Main) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", m.hub.Handler())
	// Sign-in and sign-out at the identity provider, and /auth/session.
	mux.Handle("/auth/", m.signIn.Handler())
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", m.readyz)
	mux.Handle("/supervisor/", m.floorHandler()) // the floor view, for supervisors
	if m.evict != nil {
		mux.Handle("/api/v1/evict", aggregator.EvictHandler(m.agg, m.evict, m.logger.With("component", "evict")))
	}
	for _, c := range m.calls {
		if c.handler != nil {
			mux.Handle("/api/v1/call-events/"+c.name, c.handler)
		}
	}
	return mux
}

// readyz says whether the daemon can pop calls now: every telephony source
// that can be down (an ARI socket) is up. It lists each check so that IT
// sees which part is not ready.
func (m *Main) readyz(w http.ResponseWriter, _ *http.Request) {
	var b strings.Builder
	ready := true
	for _, c := range m.calls {
		r, ok := c.source.(readiness)
		if !ok {
			fmt.Fprintf(&b, "telephony %s (%s): ok\n", c.name, c.kind)
			continue
		}
		if err := r.Ready(); err != nil {
			ready = false
			fmt.Fprintf(&b, "telephony %s (%s): NOT READY: %v\n", c.name, c.kind, err)
		} else {
			fmt.Fprintf(&b, "telephony %s (%s): ok\n", c.name, c.kind)
		}
		// Works, but IT must act: listed without failing the check.
		if w, ok := c.source.(warner); ok {
			for _, msg := range w.Warnings() {
				fmt.Fprintf(&b, "telephony %s (%s): WARNING: %s\n", c.name, c.kind, msg)
			}
		}
	}
	if m.bus != nil {
		if err := m.bus.Ready(); err != nil {
			ready = false
			fmt.Fprintf(&b, "redis: NOT READY: %v (pops still reach browsers on this daemon)\n", err)
		} else {
			b.WriteString("redis: ok\n")
		}
	}
	b.WriteString(m.historyReadiness())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	io.WriteString(w, b.String())
}

func logLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}
