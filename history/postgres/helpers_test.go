package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/screenpop/screenpop/history"
	"github.com/screenpop/screenpop/history/historytest"
)

// connect opens a connection for the test's own queries, closed after it.
func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("PostgreSQL is not reachable (make test starts it: make services): %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// testSchema returns the DSN of a schema of the test's own in the test
// database.
func testSchema(t *testing.T) string {
	t.Helper()
	return historytest.PostgresSchema(t, historytest.TestDSN)
}

// startStore makes a store on dsn with short retry intervals, runs it
// until the test ends, and closes it. It does not wait for the migration:
// the database may be down.
func startStore(t testing.TB, cfg history.Config, dsn string, opts history.Options) *Store {
	t.Helper()
	cfg.Type = history.TypePostgres
	cfg.DSNEnv = "TEST_DSN"
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	s, err := New(cfg, dsn, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.retryMin, s.retryMax, s.pingInterval = 10*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		s.Close()
	})
	return s
}

// waitFor polls cond until it holds, failing the test after 30s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after 30s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitMigrated waits until the store has migrated its schema.
func waitMigrated(t testing.TB, s *Store) {
	t.Helper()
	waitFor(t, "the migration", func() bool { return s.Status().Migrated })
}

// count runs a count(*) query.
func count(t *testing.T, conn *pgx.Conn, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if c := d.GetCounter(); c != nil {
		return c.GetValue()
	}
	return d.GetGauge().GetValue()
}
