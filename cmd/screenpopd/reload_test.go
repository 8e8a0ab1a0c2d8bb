package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/configs"
	"github.com/screenpop/screenpop/internal/logbuf"
)

// SIGHUP's work: a bad file is refused and the running configuration stays;
// a good one is swapped in while agents stay connected.
func TestReloadKeepsAgentsAndRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "customers.csv"), []byte("id,phone,name\nc1,+4930123456,Jane Doe\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "screenpop.yaml")
	write := func(body string) {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const base = `listen: 127.0.0.1:0
auth: {demo_links: true}
telephony:
  - {name: demo, type: demo, agents: ["1001"], interval: 1h}
directory: {name: directory, type: file, needs: phone, path: customers.csv, match: phone, param: phone}
sources:
  - {name: crm, type: file, needs: phone, path: customers.csv, match: phone, param: phone}
`
	write(base)
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	m := runMain(t, cfg, Options{Stderr: io.Discard})
	c := dialAgent(t, m, "1001")
	var first envelope
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := c.ReadJSON(&first); err != nil {
		t.Fatal(err)
	}

	// A misspelt option in a new source: refused, nothing changes.
	write(base + "  - {name: tickets, type: file, path: customers.csv, matsh: phone}\n")
	next, err := loadConfig(path)
	if err == nil {
		err = m.Reload(next)
	}
	if err == nil {
		t.Fatal("a configuration with a misspelt option was accepted")
	}
	if got := len(m.agg.Config().Sources); got != 1 {
		t.Fatalf("after a refused reload: %d sources, want the running 1", got)
	}

	// A good change is swapped in.
	write(base + "  - {name: tickets, type: file, needs: phone, path: customers.csv, match: phone, param: phone}\n")
	next, err = loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(next); err != nil {
		t.Fatalf("good reload refused: %v", err)
	}
	if got := len(m.agg.Config().Sources); got != 2 {
		t.Fatalf("after reload: %d sources, want 2", got)
	}

	// The agent's socket survived both: it still answers a ping.
	pong := make(chan struct{}, 1)
	c.SetPongHandler(func(string) error { pong <- struct{}{}; return nil })
	if err := c.WriteControl(websocket.PingMessage, nil, time.Now().Add(5*time.Second)); err != nil {
		t.Fatalf("agent socket closed by the reload: %v", err)
	}
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	select {
	case <-pong:
	case <-time.After(20 * time.Second):
		t.Fatal("agent socket no longer answers after the reload")
	}
}

// diffConfig names exactly what changed, split into what a reload applies
// and what needs a restart; layout, comments and line numbers do not count.
func TestDiffConfig(t *testing.T) {
	const base = `listen: 127.0.0.1:8080
log_level: info
deadline: 2s
lines: {"100": Support DE}
auth: {secret_env: SCREENPOP_SECRET, token_ttl: 8h}
agents:
  patterns: ["PJSIP/{agent}"]
  names: {"1001": Alice}
telephony:
  - {name: pbx, type: demo, agents: ["1001"], interval: 1h}
directory: {name: directory, type: file, needs: phone, path: customers.csv, match: phone, param: phone}
sources:
  - {name: crm, type: file, needs: phone, path: customers.csv, match: phone, param: phone}
`
	parse := func(t *testing.T, text string) *configs.Config {
		t.Helper()
		cfg, err := configs.Parse("screenpop.yaml", []byte(text), nil)
		if err != nil {
			t.Fatalf("%v\n%s", err, text)
		}
		return cfg
	}
	// replace edits base: old1, new1, old2, new2, ...
	replace := func(pairs ...string) string {
		text := base
		for i := 0; i+1 < len(pairs); i += 2 {
			if !strings.Contains(text, pairs[i]) {
				t.Fatalf("%q is not in the base configuration", pairs[i])
			}
			text = strings.Replace(text, pairs[i], pairs[i+1], 1)
		}
		return text
	}
	cases := []struct {
		name             string
		next             string
		applied, restart []string
	}{
		{"nothing", base, nil, nil},
		{"layout and comments only", "# screenpop\n\n" + replace("sources:\n  - {name: crm, type: file, needs: phone, path: customers.csv, match: phone, param: phone}",
			"sources:\n  - name: crm   # the CRM export\n    type: file\n    needs: phone\n    path: customers.csv\n    match: phone\n    param: phone"), nil, nil},
		{"listen", replace("127.0.0.1:8080", "0.0.0.0:8080"), nil, []string{"listen 127.0.0.1:8080 -> 0.0.0.0:8080"}},
		{"public_url", "public_url: https://pop.example.com\n" + base, nil, []string{`public_url "" -> "https://pop.example.com"`}},
		{"log_format", "log_format: json\n" + base, nil, []string{`log_format "text" -> "json"`}},
		{"auth", replace("token_ttl: 8h", "token_ttl: 4h, demo_links: true"), nil, []string{"auth.demo_links", "auth.token_ttl"}},
		{"redis added", base + "redis: {address: 127.0.0.1:6379}\n", nil, []string{"redis added"}},
		{"api", base + "api: {evict_tokens_env: EVICT_TOKENS}\n", nil, []string{"api.evict_tokens_env"}},
		{"admin listener", base + "admin: {listen: 127.0.0.1:6060}\n", nil, []string{"admin.listen"}},
		{"floor", base + "floor: {service_level_seconds: 30}\n", nil, []string{"floor.service_level_seconds"}},
		{"history", base + "history: {type: postgres, dsn_env: HISTORY_DSN, dispositions: [{code: order, label: Order placed}]}\n", nil,
			[]string{"history.type", "history.dsn_env", "history.dispositions"}},
		{"telephony option", replace("interval: 1h", "interval: 2h"), nil, []string{"telephony pbx changed (interval)"}},
		{"telephony added and removed", replace("name: pbx,", "name: pbx2,"), nil, []string{"telephony pbx removed", "telephony pbx2 added"}},
		{"agents mapping", replace(`patterns: ["PJSIP/{agent}"]`, `patterns: ["PJSIP/{agent}"]`+"\n  table: {PJSIP/desk7: \"1001\"}"), nil, []string{"agents.table"}},
		{"agent names", replace("Alice", "Alice Agent"), []string{"agents.names"}, nil},
		{"deadline, lines, log level", replace("deadline: 2s", "deadline: 3s",
			`"100": Support DE`, `"100": Support DE, "200": Sales`,
			"log_level: info", "log_level: debug"),
			[]string{`log_level "info" -> "debug"`, "deadline 2s -> 3s", "lines"}, nil},
		{"sources", replace("sources:\n  - {name: crm, type: file, needs: phone, path: customers.csv, match: phone, param: phone}",
			"sources:\n  - {name: crm, type: file, needs: phone, timeout: 2s, path: crm.csv, match: phone, param: phone}\n"+
				"  - {name: tickets, type: file, needs: phone, path: customers.csv, match: phone, param: phone}"),
			[]string{"source crm changed (timeout, path)", "source tickets added"}, nil},
		{"source removed, directory changed", replace("sources:\n  - {name: crm, type: file, needs: phone, path: customers.csv, match: phone, param: phone}\n", "",
			"directory: {name: directory, type: file, needs: phone, path: customers.csv,", "directory: {name: directory, type: file, needs: phone, path: directory.csv,"),
			[]string{"directory changed (path)", "source crm removed"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := diffConfig(parse(t, base), parse(t, c.next))
			if !slices.Equal(d.Applied, c.applied) {
				t.Errorf("applied = %q, want %q", d.Applied, c.applied)
			}
			if !slices.Equal(d.Restart, c.restart) {
				t.Errorf("restart = %q, want %q", d.Restart, c.restart)
			}
		})
	}
}

// A reload is whole: a postgres source whose DSN is in a file is added
// without a restart, a rotated secret is picked up, renamed agents show,
// the running configuration follows except what needs a restart (logged),
// and the pool of a DSN no source uses any more is closed.
func TestReloadAddsSecretFileSourceAndPrunesPools(t *testing.T) {
	dsn := connectCheckSchema(t)
	ctx := context.Background()
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	if _, err := db.Exec(ctx, "INSERT INTO balances VALUES ('C42', 12.50, 'EUR')"); err != nil {
		t.Fatal(err)
	}
	app1, app2 := "screenpop_reload_"+randomHex(t), "screenpop_reload_"+randomHex(t)
	// connections counts app's backends once they are gone, or after 10s:
	// a backend leaves pg_stat_activity shortly after its client hung up.
	connections := func(app string) int {
		t.Helper()
		var n int
		for range 100 {
			if err := db.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		return n
	}

	dir := t.TempDir()
	const base = `listen: 127.0.0.1:0
auth: {demo_links: true}
deadline: 2s
agents:
  names: {"1001": Alice}
telephony:
  - {name: demo, type: demo, agents: ["1001"], interval: 1h}
directory: {name: directory, type: file, needs: phone, path: customers.csv, match: phone, param: phone}
sources:
  - {name: crm, type: file, needs: phone, path: customers.csv, match: phone, param: phone}
`
	path := writeConfig(t, dir, "screenpop.yaml", base)
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	m := runMain(t, cfg, Options{Stderr: logs})
	if got := m.agentName("1001"); got != "Alice" {
		t.Fatalf("agent name before the reload = %q", got)
	}

	secret := filepath.Join(dir, "erp.dsn")
	writeSecret := func(app string) {
		t.Helper()
		if err := os.WriteFile(secret, []byte(dsn+"&application_name="+app+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	reload := func(text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		next, err := loadConfig(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Reload(next); err != nil {
			t.Fatalf("reload refused: %v", err)
		}
	}
	balance := func() (app string) {
		t.Helper()
		for _, s := range m.agg.Config().Sources {
			if s.Name != "balance" {
				continue
			}
			recs, err := s.Source.Fetch(ctx, aggregator.Key{CustomerID: "C42"})
			if err != nil || len(recs) != 1 || recs[0]["balance"] != "12.50" {
				t.Fatalf("balance source after the reload: %v, %v", recs, err)
			}
			return recs[0]["app"].(string)
		}
		t.Fatal("no balance source after the reload")
		return ""
	}

	writeSecret(app1)
	withBalance := strings.Replace(base, "Alice", "Alice Agent", 1) +
		"  - name: balance\n    type: postgres\n    needs: customer_id\n    dsn_file: erp.dsn\n" +
		"    query: SELECT balance::text AS balance, current_setting('application_name') AS app FROM balances WHERE customer_id = :customer_id\n"
	reload(strings.Replace(strings.Replace(withBalance, "deadline: 2s", "deadline: 3s", 1), "listen: 127.0.0.1:0", "listen: 127.0.0.1:1", 1))
	if got := balance(); got != app1 {
		t.Errorf("balance source connected as %q, want %q", got, app1)
	}
	if got := m.agentName("1001"); got != "Alice Agent" {
		t.Errorf("agent name after the reload = %q, want Alice Agent", got)
	}
	run := m.config()
	if run.Deadline != 3*time.Second || len(run.Sources) != 2 {
		t.Errorf("running configuration not updated: deadline %s, %d sources", run.Deadline, len(run.Sources))
	}
	if run.Listen != "127.0.0.1:0" {
		t.Errorf("running listen = %q: a restart is needed for it, the running value must stay", run.Listen)
	}
	for _, want := range []string{
		`msg="configuration reloaded"`, `applied="deadline 2s -> 3s; source balance added; agents.names"`,
		`msg="some changes take effect only after a restart"`, `changed="listen 127.0.0.1:0 -> 127.0.0.1:1"`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, logs.String())
		}
	}

	// The secret is rotated: the same configuration, reloaded, reads it
	// again, and the old DSN's pool is closed.
	writeSecret(app2)
	reload(withBalance)
	if got := balance(); got != app2 {
		t.Errorf("after the secret changed: connected as %q, want %q", got, app2)
	}
	if n := connections(app1); n != 0 {
		t.Errorf("the pool of the replaced DSN still holds %d connections", n)
	}

	// The source is removed: no pool is left open.
	reload(base)
	if n := connections(app2); n != 0 {
		t.Errorf("the pool of the removed source still holds %d connections", n)
	}
}
