package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/screenpop/screenpop/history/historytest"
	"github.com/screenpop/screenpop/internal/redistest"
)

// connectCheckDSN is the PostgreSQL `make test` provides (trust
// authentication).
const connectCheckDSN = "postgres://postgres@127.0.0.1:5432/test"

// connectCheckSchema creates a schema of its own with a balances table,
// dropped when the test ends, and returns a DSN whose search_path is it.
func connectCheckSchema(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, connectCheckDSN)
	if err != nil {
		t.Fatalf("PostgreSQL is not reachable at %s (make test starts it: make services): %v", connectCheckDSN, err)
	}
	schema := "screenpop_connectcheck_" + randomHex(t)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema+"; CREATE TABLE "+schema+".balances (customer_id text PRIMARY KEY, balance numeric(12,2), currency text)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
		admin.Close(ctx)
	})
	return connectCheckDSN + "?search_path=" + schema
}

// companySystems is an HTTP API as company systems have them: a CRM that
// does not know the test number, a ticket system behind an API key, an ERP
// whose database is down and one that never answers.
func companySystems(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/customers" && r.URL.Query().Get("phone") == "+4930123456":
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"message": "no customer with this number"}`)
		case r.URL.Path == "/tickets/C42" && r.Header.Get("X-Api-Key") == "tickets-key":
			io.WriteString(w, `{"tickets": [{"subject": "grinder jams", "opened": "2026-01-02"}]}`)
		case strings.HasPrefix(r.URL.Path, "/erp/"):
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"message": "database is down"}`)
		case strings.HasPrefix(r.URL.Path, "/slow/"):
			select {
			case <-r.Context().Done():
			case <-release:
			}
		default:
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"message": "unexpected request"}`)
		}
	}))
	t.Cleanup(ts.Close)
	t.Cleanup(func() { close(release) }) // runs before ts.Close
	return ts
}

// writeConfig writes text into dir/name with a customers.csv beside it.
func writeConfig(t *testing.T, dir, name, text string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "customers.csv"), []byte("id,phone,name\nC42,+4930901820,Jane Doe\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "\nauth:") && !strings.HasPrefix(text, "auth:") {
		// After the rest, so that the lines the tests expect stay: a way
		// in, without which config check reports the file.
		text += "\nauth: {demo_links: true}\n"
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// positionOf is "line:column" of the first place s is in text.
func positionOf(t *testing.T, text, s string) string {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if col := strings.Index(l, s); col >= 0 {
			return fmt.Sprintf("%d:%d", i+1, col+1)
		}
	}
	t.Fatalf("%q is not in the configuration", s)
	return ""
}

const connectCheckHead = `telephony:
  - {name: demo, type: demo, agents: ["1001"]}
sections:
  - {name: accounting, title: Accounting}
  - {name: service, title: Service}
directory:
  name: directory
  type: file
  needs: phone
  path: customers.csv
  match: phone
  param: phone
sources:
  - name: balance
    type: postgres
    section: accounting
    needs: customer_id
    dsn_env: TEST_DSN
    query: |
      SELECT balance, currency
        FROM balances
       WHERE customer_id = :customer_id
    mapping:
      fields:
        - {from: balance, label: Balance, format: money}
  - name: crm
    type: http
    section: service
    url: %[1]s/customers?phone={phone}
    records: customers
    fields: {name: name, segment: segment}
`

const connectCheckFailing = `  - name: overdue
    type: postgres
    section: accounting
    needs: customer_id
    dsn_env: TEST_DSN
    query: |
      -- invoices past their due date
      SELEC balance FROM balances WHERE customer_id = :customer_id
  - name: tickets
    type: http
    section: service
    needs: customer_id
    url: %[1]s/tickets/{customer_id}
    headers: {X-Api-Key: "${TICKETS_KEY}"}
    records: tickets
    fields: {subject: subject, priority: priority}
    mapping:
      fields:
        - {from: subject, label: Subject}
        - {from: subjct, label: Subject (a typo)}
  - name: erp
    type: http
    section: accounting
    needs: customer_id
    url: %[1]s/erp/{customer_id}
  - name: slow
    type: http
    section: service
    url: %[1]s/slow/{phone}
`

// `config check -connect` asks every source, one line each in
// configuration order at the line to look at, and fails when one fails.
func TestConfigCheckConnect(t *testing.T) {
	dsn := connectCheckSchema(t)
	ts := companySystems(t)
	env := func(k string) string {
		return map[string]string{"TEST_DSN": dsn, "TICKETS_KEY": "tickets-key"}[k]
	}
	text := fmt.Sprintf(connectCheckHead+connectCheckFailing, ts.URL)
	path := writeConfig(t, t.TempDir(), "screenpop.yaml", text)

	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"config", "check", "-config", path, "-connect", "-customer", "C42", "-timeout", "3s"}, &out, &errOut, env)
	if !errors.Is(err, errReported) || exitCode(err) != 1 {
		t.Errorf("run = %v (exit %d), want a reported failure, exit 1", err, exitCode(err))
	}
	at := func(s string) string { return path + ":" + positionOf(t, text, s) + ": " }
	want := []string{
		path + ": OK (1 telephony source(s), 6 data source(s), directory directory)",
		at("name: directory") + "directory (directory): ok: file read by the static check (nothing to connect to)",
		at("name: balance") + "sources[0] (balance): ok: query prepared on postgres://postgres@127.0.0.1:5432/test: 2 column(s), :customer_id text",
		at("name: crm") + "sources[1] (crm): ok: reachable, answered 404 for phone +4930123456 (nothing known of it: fields not checked; -phone or -customer of a known caller checks them)",
		at("SELEC balance") + `sources[2] (overdue): FAIL: ERROR: syntax error at or near "SELEC" (SQLSTATE 42601) at query line 2, column 1`,
		at("fields: {subject: subject, priority: priority}") + "sources[3] (tickets): WARN: reachable, answered 200 for customer_id C42, 1 record(s); found: subject; nothing at: priority (priority); mapping names field(s) this answer does not have: subjct",
		at("url: "+ts.URL+"/erp") + "sources[4] (erp): FAIL: HTTP 500 Internal Server Error: database is down",
		at("url: "+ts.URL+"/slow") + "sources[5] (slow): FAIL: no answer before the deadline (config check -connect waited 3s)",
		path + ": connect: 7 source(s) checked: 3 ok, 1 WARN, 3 FAIL",
	}
	if got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), strings.Join(want, "\n"))
	}
	if errOut.Len() > 0 {
		t.Errorf("stderr: %s", errOut.String())
	}
}

// Every source good: exit 0. Without -connect, nothing is asked.
func TestConfigCheckConnectPasses(t *testing.T) {
	dsn := connectCheckSchema(t)
	ts := companySystems(t)
	env := func(k string) string { return map[string]string{"TEST_DSN": dsn}[k] }
	text := fmt.Sprintf(connectCheckHead, ts.URL)
	path := writeConfig(t, t.TempDir(), "good.yaml", text)

	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"config", "check", "-connect", "-config", path}, &out, &errOut, env); err != nil {
		t.Fatalf("run = %v\n%s%s", err, out.String(), errOut.String())
	}
	if want := path + ": connect: 3 source(s) checked: 3 ok, 0 WARN, 0 FAIL\n"; !strings.HasSuffix(out.String(), want) {
		t.Errorf("output:\n%s\nwant it to end with\n%s", out.String(), want)
	}

	out.Reset()
	if err := run(context.Background(), []string{"config", "check", "-config", path}, &out, &errOut, env); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "connect:") || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("config check without -connect asked the sources:\n%s", out.String())
	}
}

// A configuration that fails the static checks is not connected with;
// a test number the daemon could not use is refused.
func TestConfigCheckConnectNeedsAGoodConfiguration(t *testing.T) {
	dir := t.TempDir()
	bad := writeConfig(t, dir, "bad.yaml", `telephony:
  - {name: demo, type: demo, agents: ["1001"]}
sources:
  - name: balance
    type: postgres
    dsn_env: TEST_DSN
    query: SELEC 1
`)
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"config", "check", "-connect", "-config", bad}, &out, &errOut, noEnv)
	if !errors.Is(err, errReported) || out.Len() > 0 || !strings.Contains(errOut.String(), "TEST_DSN is not set") {
		t.Errorf("run = %v\nstdout: %s\nstderr: %s", err, out.String(), errOut.String())
	}

	good := writeConfig(t, dir, "good.yaml", "telephony:\n  - {name: demo, type: demo, agents: [\"1001\"]}\n")
	out.Reset()
	err = run(context.Background(), []string{"config", "check", "-connect", "-phone", "12", "-config", good}, &out, &errOut, noEnv)
	if err == nil || !strings.Contains(err.Error(), `-phone "12" is not a number the daemon can use`) {
		t.Errorf("run with -phone 12 = %v", err)
	}
}

// A postgres directory's search query is prepared too: it runs only when
// an agent searches for an unknown caller, mid-call, so its mistakes must
// show here, at their line in the search block.
func TestConfigCheckConnectSearchQuery(t *testing.T) {
	dsn := connectCheckSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE customers (id text PRIMARY KEY, name text, email text, phone text)"); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string { return map[string]string{"TEST_DSN": dsn}[k] }
	const config = `telephony:
  - {name: demo, type: demo, agents: ["1001"]}
sections:
  - {name: accounting, title: Accounting}
directory:
  name: directory
  type: postgres
  needs: phone
  dsn_env: TEST_DSN
  query: SELECT id, name, email FROM customers WHERE phone = :phone
  search:
    query: |
      SELECT id, name, email FROM customers
       WHERE id = :text OR name ILIKE :pattern OR emial ILIKE :pattern
       LIMIT :limit
sources:
  - name: balance
    type: postgres
    section: accounting
    needs: customer_id
    dsn_env: TEST_DSN
    query: SELECT balance FROM balances WHERE customer_id = :customer_id
`
	const prepared = "query prepared on postgres://postgres@127.0.0.1:5432/test: 3 column(s), :phone text; " +
		"the card's customer header stays empty without column(s): kind, contact, role, city, country, tags; "
	good := strings.Replace(config, "emial", "email", 1)
	for _, c := range []struct {
		name, text string
		at, want   string // where the directory's line points, and what it says
		err        bool
	}{
		{"good", good, "name: directory",
			"directory (directory): WARN: " + prepared + "search query prepared: 3 column(s), :text text, :pattern text, :limit int8", false},
		{"typo", config, "emial ILIKE",
			`directory (directory): FAIL: ERROR: column "emial" does not exist (SQLSTATE 42703); hint: Perhaps you meant to reference the column "customers.email". at search query line 2, column 45`, true},
		{"no id", strings.Replace(good, "SELECT id, name, email FROM customers\n", "SELECT name, email FROM customers\n", 1), "query: |",
			"directory (directory): FAIL: " + prepared + "search query prepared: 2 column(s), :text text, :pattern text, :limit int8; " +
				"the search query must return the customer's id as a column named id (it returns: name, email)", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := writeConfig(t, t.TempDir(), "screenpop.yaml", c.text)
			var out, errOut bytes.Buffer
			err := run(context.Background(), []string{"config", "check", "-config", path, "-connect", "-timeout", "5s"}, &out, &errOut, env)
			if (err != nil) != c.err {
				t.Errorf("run = %v, want an error: %v\n%s%s", err, c.err, out.String(), errOut.String())
			}
			if want := path + ":" + positionOf(t, c.text, c.at) + ": " + c.want; !strings.Contains(out.String(), want+"\n") {
				t.Errorf("output:\n%s\nwant the line\n%s", out.String(), want)
			}
		})
	}
}

// Beside the sources, -connect checks what the daemon needs: the
// history's PostgreSQL (reachable, its schema version) and the shared
// Redis (PING, and not a replica), each on a line at its block.
func TestConfigCheckConnectHistoryAndRedis(t *testing.T) {
	schema := historytest.PostgresSchema(t, historytest.TestDSN) // empty: version 0
	primary, replica := redistest.StartServer(t), redistest.StartServer(t)
	const config = "telephony:\n  - {name: demo, type: demo, agents: [\"1001\"]}\n" +
		"history:\n  type: postgres\n  dsn_env: HISTORY_DSN\n" +
		"redis:\n  address: %s\n"
	check := func(redisAddr, dsn string) (string, error) {
		t.Helper()
		text := fmt.Sprintf(config, redisAddr)
		path := writeConfig(t, t.TempDir(), "screenpop.yaml", text)
		env := func(k string) string { return map[string]string{"HISTORY_DSN": dsn}[k] }
		var out, errOut bytes.Buffer
		err := run(context.Background(), []string{"config", "check", "-connect", "-timeout", "3s", "-config", path}, &out, &errOut, env)
		if errOut.Len() > 0 {
			t.Errorf("stderr (go-redis logging its dials?): %s", errOut.String())
		}
		return strings.ReplaceAll(out.String(), path, "screenpop.yaml"), err
	}

	out, err := check(primary.Addr(), schema)
	if err != nil || !strings.Contains(out, "screenpop.yaml:3:1: history: ok: PostgreSQL reachable; schema version 0 of 2: the daemon applies the 2 pending migration(s) at start (or screenpopd db migrate)\n") ||
		!strings.Contains(out, "screenpop.yaml:6:1: redis: ok: Redis answered PING\n") {
		t.Errorf("both up: %v\n%s", err, out)
	}

	// A replica refuses the daemon's writes.
	rc := goredis.NewClient(&goredis.Options{Addr: replica.Addr()})
	defer rc.Close()
	host, port, _ := net.SplitHostPort(primary.Addr())
	if err := rc.Do(context.Background(), "REPLICAOF", host, port).Err(); err != nil {
		t.Fatal(err)
	}
	out, err = check(replica.Addr(), schema)
	if !errors.Is(err, errReported) || !strings.Contains(out, "screenpop.yaml:6:1: redis: FAIL: Redis is a replica, which refuses the daemon's writes") {
		t.Errorf("a replica: %v\n%s", err, out)
	}

	// Both away: each says so at its block, and the check fails.
	primary.Kill()
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a port nothing listens on once closed
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	out, err = check(primary.Addr(), "postgres://postgres@"+ln.Addr().String()+"/test")
	if !errors.Is(err, errReported) ||
		!strings.Contains(out, "screenpop.yaml:3:1: history: FAIL: PostgreSQL not reachable: ") ||
		!strings.Contains(out, "screenpop.yaml:6:1: redis: FAIL: Redis did not answer PING: ") {
		t.Errorf("both away: %v\n%s", err, out)
	}
}

// An http source without fields: gives its records as they come; a
// mapping that names a field the answer does not have is a WARN at the
// mapping (the card's field would stay empty on every call).
func TestConfigCheckConnectMappingOfAnHTTPAnswer(t *testing.T) {
	ts := companySystems(t)
	const config = `telephony:
  - {name: demo, type: demo, agents: ["1001"]}
sections:
  - {name: service, title: Service}
sources:
  - name: tickets
    type: http
    section: service
    needs: customer_id
    url: %s/tickets/{customer_id}
    headers: {X-Api-Key: "tickets-key"}
    records: tickets
    mapping:
      fields:
        - {from: subject, label: Subject}
        - {from: opend, label: Opened, format: date}
`
	text := fmt.Sprintf(config, ts.URL)
	path := writeConfig(t, t.TempDir(), "screenpop.yaml", text)
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"config", "check", "-connect", "-customer", "C42", "-config", path}, &out, &errOut, noEnv); err != nil {
		t.Errorf("a WARN failed the check: %v\n%s", err, errOut.String())
	}
	want := path + ":" + positionOf(t, text, "mapping:") + ": sources[0] (tickets): WARN: reachable, answered 200 for customer_id C42, 1 record(s); found: opened, subject; mapping names field(s) this answer does not have: opend\n"
	if !strings.Contains(out.String(), want) {
		t.Errorf("output:\n%s\nwant the line:\n%s", out.String(), want)
	}
}
