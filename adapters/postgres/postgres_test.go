package postgres

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.yaml.in/yaml/v3"

	"github.com/screenpop/screenpop/adapters"
	"github.com/screenpop/screenpop/aggregator"
)

var customer = aggregator.Key{Phone: "+4930901820", National: "30901820", Region: "DE", CustomerID: "C1001"}

func TestFetchOneRowWithTypes(t *testing.T) {
	db := newTestDB(t)
	db.exec(t, `CREATE TABLE customers (
		id text PRIMARY KEY, name text, balance numeric(12,2), account numeric(20,0),
		since date, seen timestamptz, tags text[], orders int4, vip bool, meta jsonb, ref uuid, empty text)`)
	db.exec(t, `INSERT INTO customers VALUES
		('C1001', 'Café Morgenrot GmbH', 1234.56, 12345678901234567890, '2021-03-04',
		 '2024-05-06 07:08:09+00', '{vip,supplier}', 42, true, '{"segment": "cafe"}',
		 '12345678-9abc-def0-1234-56789abcdef0', NULL),
		('C1002', 'Hotel Alpenblick AG', 0, 1, '2020-01-01', now(), '{}', 1, false, NULL, NULL, NULL)`)

	pools := NewPools(nil)
	defer pools.Close()
	s := newSource(t, pools, db.dsn, indent(`SELECT * FROM customers WHERE id = :customer_id`))

	got, err := s.Fetch(context.Background(), customer)
	if err != nil {
		t.Fatal(err)
	}
	want := []aggregator.Record{{
		"id": "C1001", "name": "Café Morgenrot GmbH",
		"balance": 1234.56,
		"account": "12345678901234567890", // 20 digits: a float64 would change it
		"since":   time.Date(2021, 3, 4, 0, 0, 0, 0, time.UTC),
		"tags":    []any{"vip", "supplier"},
		"orders":  int64(42), "vip": true,
		"meta":  map[string]any{"segment": "cafe"},
		"ref":   "12345678-9abc-def0-1234-56789abcdef0",
		"empty": nil,
	}}
	seen, _ := got[0]["seen"].(time.Time)
	if !seen.Equal(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)) {
		t.Errorf("seen = %#v, want 2024-05-06T07:08:09Z as a time.Time", got[0]["seen"])
	}
	delete(got[0], "seen")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Fetch =\n%#v\nwant\n%#v", got, want)
	}

	// A customer the database does not know: no records, no error.
	got, err = s.Fetch(context.Background(), aggregator.Key{CustomerID: "C9999"})
	if err != nil || len(got) != 0 {
		t.Errorf("unknown customer: Fetch = %v, %v; want no records and no error", got, err)
	}
}

func TestFetchList(t *testing.T) {
	db := newTestDB(t)
	db.exec(t, `CREATE TABLE invoices (no text, customer_id text, due date, amount numeric(12,2))`)
	db.exec(t, `INSERT INTO invoices VALUES
		('INV-3', 'C1001', '2024-03-01', 30), ('INV-1', 'C1001', '2024-01-01', 10),
		('INV-2', 'C1001', '2024-02-01', 20), ('INV-9', 'C1002', '2024-01-01', 99)`)
	pools := NewPools(nil)
	defer pools.Close()
	s := newSource(t, pools, db.dsn, indent(`
SELECT no, amount FROM invoices
 WHERE customer_id = :customer_id
 ORDER BY due`))
	got, err := s.Fetch(context.Background(), customer)
	if err != nil {
		t.Fatal(err)
	}
	want := []aggregator.Record{
		{"no": "INV-1", "amount": 10.0}, {"no": "INV-2", "amount": 20.0}, {"no": "INV-3", "amount": 30.0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Fetch = %v, want %v", got, want)
	}
}

// Parameters, casts, literals and comments go through PostgreSQL for real:
// a parameter mistaken inside a literal would change the result, and a cast
// mistaken for a parameter would fail construction.
func TestNamedParametersReachPostgres(t *testing.T) {
	db := newTestDB(t)
	pools := NewPools(nil)
	defer pools.Close()
	s := newSource(t, pools, db.dsn, indent(`
SELECT :phone::text              AS phone,   -- :bogus in a comment
       :national::text || ':x'   AS national,
       ':customer_id'            AS literal, /* :region */
       $$ :region $$             AS dollar,
       E'\' :phone'              AS escaped,
       :customer_id::text = :customer_id::text AS reused,
       (ARRAY[1,2,3])[2:3]       AS slice,
       :region                   AS region`))
	if want := []string{"phone", "national", "customer_id", "region"}; !reflect.DeepEqual(s.Params(), want) {
		t.Errorf("Params = %v, want %v", s.Params(), want)
	}
	got, err := s.Fetch(context.Background(), customer)
	if err != nil {
		t.Fatal(err)
	}
	want := []aggregator.Record{{
		"phone": "+4930901820", "national": "30901820:x", "literal": ":customer_id",
		"dollar": " :region ", "escaped": "' :phone", "reused": true,
		"slice": []any{int64(2), int64(3)}, "region": "DE",
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Fetch =\n%#v\nwant\n%#v", got, want)
	}
}

// A source whose parameter the key lacks does not ask the database. The
// database here does not exist: asking it would fail.
func TestMissingParameterSkipsTheQuery(t *testing.T) {
	pools := NewPools(nil)
	defer pools.Close()
	s := newSource(t, pools, "postgres://screenpop:topsecret@127.0.0.1:1/erp?connect_timeout=5",
		indent("SELECT balance FROM balances WHERE customer_id = :customer_id AND phone = :phone"))

	got, err := s.Fetch(context.Background(), aggregator.Key{Phone: "+4930901820"})
	if got != nil || err != nil {
		t.Fatalf("Fetch without customer_id = %v, %v; want nil, nil without a query", got, err)
	}

	// With both parameters it does ask, and fails: the proof that the call
	// above would have failed too, had it queried.
	_, err = s.Fetch(context.Background(), customer)
	if err == nil {
		t.Fatal("Fetch against a closed port: no error")
	}
	var connErr *pgconn.ConnectError
	if !errors.As(err, &connErr) {
		t.Errorf("error %v does not unwrap to a *pgconn.ConnectError", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "postgres source test-source: cannot connect to the database: connection refused") {
		t.Errorf("error = %q, want it to say the source cannot connect: connection refused", msg)
	}
	for _, secret := range []string{"topsecret", "screenpop:", "127.0.0.1:1", "user=", "postgres://"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q contains %q", msg, secret)
		}
	}
}

// The daemon starts while the database is down: building the source does
// not connect, and the source works once the database is reachable.
func TestDatabaseDownAtStartThenUp(t *testing.T) {
	db := newTestDB(t)
	proxy := newCutProxy(t, "127.0.0.1:5432")
	proxy.cut()
	pools := NewPools(nil)
	defer pools.Close()
	dsn := strings.Replace(db.dsn, "127.0.0.1:5432", proxy.addr(), 1)
	s := newSource(t, pools, dsn, indent("SELECT :customer_id::text AS id"))

	if _, err := s.Fetch(context.Background(), customer); err == nil || !strings.Contains(err.Error(), "cannot connect to the database") {
		t.Fatalf("Fetch while down = %v, want a connection error", err)
	}
	proxy.restore()
	got, err := s.Fetch(context.Background(), customer)
	if err != nil || len(got) != 1 || got[0]["id"] != "C1001" {
		t.Fatalf("Fetch once up = %v, %v; want the row", got, err)
	}
}

func TestMaxRows(t *testing.T) {
	db := newTestDB(t)
	pools := NewPools(nil)
	defer pools.Close()
	query := indent("SELECT n, :customer_id::text AS c FROM generate_series(1, 5000) AS n ORDER BY n")

	check := func(s *Source, want int) {
		t.Helper()
		got, err := s.Fetch(context.Background(), customer)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != want {
			t.Fatalf("Fetch returned %d rows, want %d", len(got), want)
		}
		for i, r := range got {
			if r["n"] != int64(i+1) {
				t.Fatalf("row %d = %v, want n=%d (the first rows, in order)", i, r, i+1)
			}
		}
	}
	check(newSource(t, pools, db.dsn, query), DefaultMaxRows)
	small := newSource(t, pools, db.dsn, "max_rows: 10\n"+query)
	check(small, 10)
	// The rows left unread did not spoil the connection.
	check(small, 10)
	check(newSource(t, pools, db.dsn, "max_rows: 6000\n"+query), 5000)
}

func TestSQLErrorsAreClearAndHideTheDSN(t *testing.T) {
	db := newTestDB(t)
	db.exec(t, "CREATE TABLE balances (customer_id text, balance numeric)")
	db.exec(t, "INSERT INTO balances SELECT 'C1001', n FROM generate_series(1, 5) n")
	// Trust authentication ignores the password, so it can be there to be
	// looked for in the errors.
	dsn := strings.Replace(db.dsn, "postgres@", "postgres:hunter2-pw@", 1)

	cases := []struct {
		name, query, code string
		want              []string
	}{
		{"syntax", "SELEC balance FROM balances WHERE customer_id = :customer_id", "42601",
			[]string{`query failed: syntax error at or near "SELEC" (SQLSTATE 42601)`}},
		{"missing column", "SELECT balanse FROM balances WHERE customer_id = :customer_id", "42703",
			[]string{`query failed: column "balanse" does not exist (SQLSTATE 42703)`}},
		{"undefined table", "SELECT balance FROM balance WHERE customer_id = :customer_id", "42P01",
			[]string{`query failed: relation "balance" does not exist (SQLSTATE 42P01)`}},
		{"error after the first rows", "SELECT 1 / (balance - 3) AS x FROM balances WHERE customer_id = :customer_id ORDER BY balance", "22012",
			[]string{`query failed: division by zero (SQLSTATE 22012)`}},
		{"wrong parameter type", "SELECT balance FROM balances WHERE balance = :customer_id", "22P02",
			[]string{"query failed: invalid input syntax for type numeric", "(SQLSTATE 22P02)"}},
	}
	pools := NewPools(nil)
	defer pools.Close()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSource(t, pools, dsn, indent(c.query))
			_, err := s.Fetch(context.Background(), customer)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "postgres source test-source: ") {
				t.Errorf("error %q does not name the source", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error = %q, want it to contain %q", msg, w)
				}
			}
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != c.code {
				t.Errorf("error does not unwrap to a PgError with SQLSTATE %s: %#v", c.code, err)
			}
			for _, leak := range []string{"hunter2-pw", "postgres://", db.schema, "C1001", "SELECT"} {
				if strings.Contains(msg, leak) {
					t.Errorf("error %q contains %q", msg, leak)
				}
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Error("an SQL error must not look like a timeout")
			}
		})
	}

	// The pool survives SQL errors: a good query on it works.
	s := newSource(t, pools, dsn, indent("SELECT count(*) AS n FROM balances WHERE customer_id = :customer_id"))
	got, err := s.Fetch(context.Background(), customer)
	if err != nil || got[0]["n"] != int64(5) {
		t.Errorf("Fetch after errors = %v, %v", got, err)
	}
}

// A query that hangs: Fetch returns when the context ends, says why, and
// the query is cancelled in PostgreSQL rather than left running there.
func TestHangingQueryRespectsTheDeadline(t *testing.T) {
	db := newTestDB(t)
	pools := NewPools(nil)
	defer pools.Close()
	s := newSource(t, pools, db.dsn, indent("SELECT pg_sleep(120), :customer_id::text AS id"))

	cause := errors.New("source test-source took longer than 200ms")
	ctx, cancel := context.WithTimeoutCause(context.Background(), 200*time.Millisecond, cause)
	defer cancel()
	got, err := s.Fetch(ctx, customer)
	if err == nil {
		t.Fatalf("Fetch = %v, want a deadline error", got)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(%v, DeadlineExceeded) = false", err)
	}
	if !errors.Is(err, cause) {
		t.Errorf("error %v does not carry the context's cause", err)
	}
	if want := "postgres source test-source: no answer before the deadline (source test-source took longer than 200ms)"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}

	// PostgreSQL gets a cancel request: the sleep stops long before its
	// 120 s are up. (The wait is a ceiling for a slow machine, not a
	// measurement.)
	if n := db.waitBackendsGone(t, "SELECT pg_sleep%", 30*time.Second); n > 0 {
		t.Fatal("the query still runs in PostgreSQL 30 s after its deadline: it was not cancelled")
	}

	// And the source still works.
	s2 := newSource(t, pools, db.dsn, indent("SELECT :customer_id::text AS id"))
	if got, err := s2.Fetch(context.Background(), customer); err != nil || got[0]["id"] != "C1001" {
		t.Errorf("Fetch after a cancelled query = %v, %v", got, err)
	}
}

func TestCancelledContextBeforeFetch(t *testing.T) {
	pools := NewPools(nil)
	defer pools.Close()
	s := newSource(t, pools, adminDSN, indent("SELECT :customer_id::text"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Fetch(ctx, customer); !errors.Is(err, context.Canceled) {
		t.Errorf("Fetch with a cancelled context = %v, want context.Canceled", err)
	}
}

// The database restarts mid-test: the connection under the pool is cut.
// The lookup that hits it fails cleanly; the next one reconnects.
func TestDatabaseRestart(t *testing.T) {
	db := newTestDB(t)
	proxy := newCutProxy(t, "127.0.0.1:5432")
	pools := NewPools(nil)
	defer pools.Close()
	dsn := strings.Replace(db.dsn, "127.0.0.1:5432", proxy.addr(), 1)
	s := newSource(t, pools, dsn, indent("SELECT :customer_id::text AS id"))

	if _, err := s.Fetch(context.Background(), customer); err != nil {
		t.Fatalf("Fetch before the restart: %v", err)
	}
	proxy.cut()
	_, err := s.Fetch(context.Background(), customer)
	if err == nil {
		t.Fatal("Fetch while the database is down: no error")
	}
	msg := err.Error()
	if !strings.Contains(msg, "lost the connection to the database") && !strings.Contains(msg, "cannot connect to the database") {
		t.Errorf("error = %q, want it to say the connection is lost", msg)
	}
	if strings.Contains(msg, proxy.addr()) || strings.Contains(msg, "postgres://") {
		t.Errorf("error %q shows where the database is", msg)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a lost connection must not look like a timeout: %v", err)
	}
	proxy.restore()
	got, err := s.Fetch(context.Background(), customer)
	if err != nil || got[0]["id"] != "C1001" {
		t.Fatalf("first Fetch after the restart = %v, %v; want the row", got, err)
	}
}

// PostgreSQL itself drops every connection of the pool (as a restart or an
// administrator does). One lookup fails; the pool is emptied so the next one
// does not find another dead connection.
func TestTerminatedBackends(t *testing.T) {
	db := newTestDB(t)
	pools := NewPools(nil)
	defer pools.Close()
	s := newSource(t, pools, db.dsn, indent("SELECT :customer_id::text AS id"))

	// pgxpool pings a connection idle for over a second before handing it
	// out; on a slow machine that would find the dead connections before
	// the query does, and this test is about what happens when it does not.
	s.entry.config.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }

	// Three idle connections in the pool.
	pool, err := pools.pool(s.entry)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var held []*pgxpool.Conn
	for range 3 {
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	for _, c := range held {
		c.Release()
	}
	if n := db.backends(t, ""); n != 3 {
		t.Fatalf("%d connections open, want 3", n)
	}

	var terminated int
	if err := db.admin.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", db.app).Scan(&terminated); err != nil || terminated != 3 {
		t.Fatalf("terminated %d backends (%v), want 3", terminated, err)
	}

	// The first lookup finds a dead connection...
	_, err = s.Fetch(ctx, customer)
	if err == nil {
		t.Fatal("Fetch on a terminated connection: no error")
	}
	if want := "postgres source test-source: lost the connection to the database: terminating connection due to administrator command (SQLSTATE 57P01)"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	// ...and the next must not find one of the other two.
	got, err := s.Fetch(ctx, customer)
	if err != nil || got[0]["id"] != "C1001" {
		t.Fatalf("Fetch after the backends were terminated = %v, %v; want the row", got, err)
	}
}

func TestPoolsAreSharedPerDSN(t *testing.T) {
	db := newTestDB(t)
	pools := NewPools(nil)
	defer pools.Close()
	a := newSource(t, pools, db.dsn, "max_conns: 2\n"+indent("SELECT 'a' AS s, :customer_id::text AS id"))
	b := newSource(t, pools, db.dsn, "max_conns: 3\n"+indent("SELECT 'b' AS s, :customer_id::text AS id"))
	other := newSource(t, pools, db.dsn+"&connect_timeout=5", indent("SELECT 'o' AS s"))
	if a.entry != b.entry {
		t.Error("two sources with one DSN got two pools")
	}
	if a.entry == other.entry {
		t.Error("two DSNs share a pool")
	}

	// Many lookups at once on the shared pool, from both sources.
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src, want := a, "a"
			if i%2 == 1 {
				src, want = b, "b"
			}
			got, err := src.Fetch(context.Background(), customer)
			if err == nil && (len(got) != 1 || got[0]["s"] != want) {
				err = fmt.Errorf("got %v, want s=%s", got, want)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	pool, _ := pools.pool(a.entry)
	if got := pool.Config().MaxConns; got != 3 {
		t.Errorf("shared pool MaxConns = %d, want the largest asked for, 3", got)
	}
	if n := db.backends(t, ""); n > 3 {
		t.Errorf("%d connections to the database, want at most 3 (one pool)", n)
	}
}

func TestFetchAfterClose(t *testing.T) {
	pools := NewPools(nil)
	s := newSource(t, pools, adminDSN, indent("SELECT :customer_id::text AS id"))
	if _, err := s.Fetch(context.Background(), customer); err != nil {
		t.Fatal(err)
	}
	pools.Close()
	pools.Close()
	if _, err := s.Fetch(context.Background(), customer); err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("Fetch after Close = %v, want a shutting-down error", err)
	}
}

func TestConstructionErrors(t *testing.T) {
	vars := map[string]string{
		"GOOD_DSN": adminDSN,
		"BAD_DSN":  "postgres://screenpop:pw-in-env@hidden-host.internal:notaport/erp",
	}
	cases := []struct {
		name, yaml, want string
		line             int
	}{
		{"password in dsn", "dsn: postgres://screenpop:secret@db/erp\nquery: SELECT 1",
			"dsn contains a password", 1},
		{"password in keyword dsn", "query: SELECT 1\ndsn: host=db password=secret",
			"name it with dsn_env", 2},
		{"misspelt option", "dsn_env: GOOD_DSN\nquerry: SELECT 1",
			`unknown option "querry" (did you mean "query"?)`, 2},
		{"unset variable", "dsn_env: NOT_SET\nquery: SELECT 1",
			"environment variable NOT_SET is not set or empty", 1},
		{"both dsn and dsn_env", "dsn_env: GOOD_DSN\ndsn: postgres://db/erp\nquery: SELECT 1",
			"set dsn_env or dsn, not both", 2},
		{"no dsn", "query: SELECT 1", "dsn_env is required", 1},
		{"no query", "dsn_env: GOOD_DSN", "query is required", 1},
		{"unknown parameter", "dsn_env: GOOD_DSN\nmax_rows: 5\nquery: |\n  SELECT 1\n   WHERE id = :custmer_id",
			"query uses the unknown parameter :custmer_id at query line 2, column 13 (known parameters: :phone, :national, :region, :customer_id)", 3},
		{"negative max_rows", "dsn_env: GOOD_DSN\nquery: SELECT 1\nmax_rows: -1", "max_rows must not be negative", 3},
		{"max_conns out of range", "dsn_env: GOOD_DSN\nquery: SELECT 1\nmax_conns: 5000", "max_conns 5000 is outside 0..1000", 3},
		{"max_rows not a number", "dsn_env: GOOD_DSN\nquery: SELECT 1\nmax_rows: many", `max_rows: expected a whole number, got "many"`, 3},
		{"invalid DSN in the environment", "dsn_env: BAD_DSN\nquery: SELECT 1",
			"environment variable BAD_DSN: not a valid PostgreSQL connection string", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(NewPools(nil), adapters.Spec{Name: "x", Options: options(t, c.yaml), Env: env(vars)})
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %q, want it to contain %q", err, c.want)
			}
			if c.line > 0 && !strings.HasPrefix(err.Error(), fmt.Sprintf("line %d, column 1: ", c.line)) {
				t.Errorf("error = %q, want it at line %d, column 1 (the option's key)", err, c.line)
			}
			for _, leak := range []string{"secret", "pw-in-env", "hidden-host"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error %q contains %q", err, leak)
				}
			}
		})
	}

	// A DSN without a password may be written in the file.
	if _, err := New(NewPools(nil), adapters.Spec{Name: "x", Options: options(t, "dsn: postgres://screenpop@db/erp\nquery: SELECT 1")}); err != nil {
		t.Errorf("password-less dsn refused: %v", err)
	}
}

func TestSampleBuilds(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(Sample, &doc); err != nil {
		t.Fatal(err)
	}
	sources := sourceNodes(doc.Content[0])
	if len(sources) < 3 {
		t.Fatalf("sample.yaml has %d sources with the directory, want at least 3", len(sources))
	}
	pools := NewPools(nil)
	defer pools.Close()
	for _, n := range sources {
		name, opts := kindOptions(n)
		spec := adapters.Spec{Name: name, Options: opts, Env: env(map[string]string{"ACCOUNTING_DSN": adminDSN, "CRM_DSN": adminDSN})}
		if _, err := New(pools, spec); err != nil {
			t.Errorf("sample source %s: %v", name, err)
		}
	}
}

// The examples in README.md build.
func TestReadmeExamples(t *testing.T) {
	blocks := readmeYAML(t, "README.md")
	if len(blocks) == 0 {
		t.Fatal("README.md has no yaml example")
	}
	pools := NewPools(nil)
	defer pools.Close()
	built := 0
	for _, block := range blocks {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(block), &doc); err != nil {
			t.Fatalf("README example does not parse: %v\n%s", err, block)
		}
		for _, n := range sourceNodes(doc.Content[0]) {
			name, opts := kindOptions(n)
			if _, err := New(pools, adapters.Spec{Name: name, Options: opts, Env: func(string) string { return adminDSN }}); err != nil {
				t.Errorf("README example %s: %v", name, err)
			}
			built++
		}
	}
	if built == 0 {
		t.Error("no source in the README examples")
	}
}
