package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/history"
	"github.com/screenpop/screenpop/history/historytest"
)

func TestConformance(t *testing.T) {
	historytest.Run(t, func(t *testing.T, cfg history.Config, opts history.Options) history.Store {
		s := startStore(t, cfg, testSchema(t), opts)
		waitMigrated(t, s)
		return s
	})
}

func TestMigrateIsIdempotentAndConcurrent(t *testing.T) {
	dsn := testSchema(t)
	var stores []*Store
	for range 3 {
		s, err := New(history.Config{Type: history.TypePostgres, DSNEnv: "X"}, dsn, history.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(stores))
	for i, s := range stores {
		wg.Go(func() { _, errs[i] = s.Migrate(t.Context()) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("three daemons migrating at once: %v", err)
	}
	lines, err := stores[0].Migrate(t.Context())
	if err != nil || len(lines) != 0 {
		t.Fatalf("second migration: %v, %v; want nothing to do", lines, err)
	}
	current, target, err := stores[0].SchemaVersion(t.Context())
	if err != nil || current != target || target < 1 {
		t.Fatalf("SchemaVersion = %d, %d, %v", current, target, err)
	}
	if !stores[0].Status().Migrated {
		t.Fatal("Status does not say migrated")
	}
}

func TestTwoDaemonsStoreACallOnce(t *testing.T) {
	dsn := testSchema(t)
	a := startStore(t, history.Config{}, dsn, history.Options{Daemon: "daemon-a"})
	b := startStore(t, history.Config{}, dsn, history.Options{Daemon: "daemon-b"})
	waitMigrated(t, a)
	waitMigrated(t, b)
	ctx := t.Context()
	ring := time.Now().Add(-time.Minute)
	// Both daemons saw the call; each knows part of it.
	if err := a.RecordCall(ctx, history.Call{ID: "pbx-a/1", Phone: "+4930901820", Rung: []string{"1001"}, RingAt: ring, Outcome: screenpop.OutcomeNoAnswer}); err != nil {
		t.Fatal(err)
	}
	if err := b.RecordCall(ctx, history.Call{ID: "pbx-a/1", Phone: "+4930901820", CustomerID: "C-1", Rung: []string{"2001"}, Agent: "2001",
		AnsweredBy: "2001", RingAt: ring, EndAt: ring.Add(time.Minute), Outcome: screenpop.OutcomeAnswered}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SaveNote(ctx, history.NewNote{CallID: "pbx-a/1", Phone: "+4930901820", Agent: "1001", Text: "written on a"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Record(ctx, screenpop.PastCall{CallID: "pbx-a/1", Phone: "+4930901820", At: ring, Agent: "2001", Outcome: screenpop.OutcomeAnswered}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Store{a, b} {
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	conn := connect(t, dsn)
	if n := count(t, conn, "SELECT count(*) FROM history_calls"); n != 1 {
		t.Fatalf("%d rows for one call seen by two daemons", n)
	}
	c, err := a.Call(ctx, "pbx-a/1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Daemons, []string{"daemon-a", "daemon-b"}) || !slices.Equal(c.Rung, []string{"1001", "2001"}) ||
		c.Outcome != screenpop.OutcomeAnswered || c.CustomerID != "C-1" {
		t.Fatalf("merged call: %+v", c)
	}
	// Each daemon shows the same history, the other's note included.
	for _, s := range []*Store{a, b} {
		calls, err := s.Recent(ctx, "+4930901820", 10)
		if err != nil || len(calls) != 1 || len(calls[0].Notes) != 1 || calls[0].Notes[0].Text != "written on a" {
			t.Fatalf("%s sees %+v, %v", s.opts.Daemon, calls, err)
		}
	}
}

func TestRejectedWriteIsDroppedNotTheBatch(t *testing.T) {
	s := startStore(t, history.Config{}, testSchema(t), history.Options{})
	waitMigrated(t, s)
	ctx := t.Context()
	good := func(id string) *op {
		return &op{kind: opCall, call: history.Call{ID: id, Phone: "+4930901820", RingAt: time.Now()}}
	}
	// Past what normalization lets through: PostgreSQL refuses the time
	// (22008), and the driver cannot encode the entry's ID at all.
	badTime := &op{kind: opCall, call: history.Call{ID: "pbx/bad", RingAt: time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC)}}
	badID := &op{kind: opAccess, access: history.AccessEntry{ID: "no-uuid", Agent: "1001", Action: history.ActionCard, Daemon: "d", At: time.Now()}}
	for _, o := range []*op{good("pbx/1"), badTime, good("pbx/2"), badID, good("pbx/3")} {
		if err := s.out.push(o); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	calls, err := s.Recent(ctx, "+4930901820", 10)
	if err != nil || len(calls) != 3 {
		t.Fatalf("calls %v, %v; want the three good ones", calls, err)
	}
	if got := value(s.metrics.writes.WithLabelValues("call", resultRejected)); got != 1 {
		t.Fatalf("rejected calls %v, want 1", got)
	}
	if got := value(s.metrics.writes.WithLabelValues("access", resultRejected)); got != 1 {
		t.Fatalf("rejected access entries %v, want 1", got)
	}
}

// TestNoteGivenUpDuringAnAttemptIsTakenBack holds the writer's insert on a
// lock past write_timeout: the attempt fails with its outcome unknown, the
// note's caller gives up, and the writer takes the note back (DELETE) once
// the lock is gone, so it never appears.
func TestNoteGivenUpDuringAnAttemptIsTakenBack(t *testing.T) {
	dsn := testSchema(t)
	s := startStore(t, history.Config{WriteTimeout: 100 * time.Millisecond}, dsn, history.Options{})
	waitMigrated(t, s)
	admin := connect(t, dsn)
	tx, err := admin.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), "LOCK TABLE history_notes IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 250*time.Millisecond)
	defer cancel()
	_, err = s.SaveNote(ctx, history.NewNote{CallID: "pbx/1", Agent: "1001", Text: "never to be seen"})
	if !errors.Is(err, history.ErrNotSaved) {
		t.Fatalf("SaveNote under a lock = %v, want ErrNotSaved", err)
	}
	waitFor(t, "the timeout in Status", func() bool {
		return s.Status().LastError == "no answer from PostgreSQL within write_timeout 100ms"
	})
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := count(t, admin, "SELECT count(*) FROM history_notes"); n != 0 {
		t.Fatalf("%d notes stored after the caller gave up", n)
	}
	if got := value(s.metrics.writes.WithLabelValues("note", resultCancelled)); got != 1 {
		t.Fatalf("cancelled notes %v, want 1", got)
	}
	if got := value(s.metrics.retries); got < 1 {
		t.Fatalf("retries %v, want at least 1", got)
	}
	// The store goes on: the next note is saved.
	if _, err := s.SaveNote(t.Context(), history.NewNote{CallID: "pbx/1", Agent: "1001", Text: "saved"}); err != nil {
		t.Fatal(err)
	}
}

func TestPendingNote(t *testing.T) {
	t.Run("given up before it was sent", func(t *testing.T) {
		p := newPending()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := p.wait(ctx); !errors.Is(err, history.ErrNotSaved) {
			t.Fatalf("wait = %v", err)
		}
		if got := p.send(); got != sendSkip {
			t.Fatalf("send after giving up = %v, want sendSkip", got)
		}
		if got := p.send(); got != sendNone {
			t.Fatalf("send once settled = %v, want sendNone", got)
		}
	})
	t.Run("given up after an unsure attempt", func(t *testing.T) {
		p := newPending()
		if p.send() != sendWrite {
			t.Fatal("first send")
		}
		p.failed()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := p.wait(ctx); !errors.Is(err, history.ErrNotSaved) {
			t.Fatalf("wait = %v", err)
		}
		if got := p.send(); got != sendUndo {
			t.Fatalf("send after giving up an unsure note = %v, want sendUndo", got)
		}
	})
	t.Run("the caller waits for the attempt in flight", func(t *testing.T) {
		p := newPending()
		p.send()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		done := make(chan error)
		go func() { done <- p.wait(ctx) }()
		select {
		case err := <-done:
			t.Fatalf("wait returned %v while the attempt was in flight", err)
		case <-time.After(20 * time.Millisecond):
		}
		p.done(nil) // it committed
		if err := <-done; err != nil {
			t.Fatalf("wait = %v after the commit, want nil", err)
		}
	})
	t.Run("committed", func(t *testing.T) {
		p := newPending()
		p.send()
		p.done(nil)
		if err := p.wait(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestBufferFullRefuses(t *testing.T) {
	// A database that is never there: everything stays queued.
	s := startStore(t, history.Config{BufferSize: 100}, "postgres://screenpop:s3cret@127.0.0.1:1/none?connect_timeout=1", history.Options{})
	ctx := t.Context()
	for i := range 100 {
		if err := s.LogAccess(ctx, history.AccessEntry{Agent: "1001", CallID: "pbx/" + string(rune('a'+i%26))}); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	if err := s.RecordCall(ctx, history.Call{ID: "pbx/x", RingAt: time.Now()}); !errors.Is(err, history.ErrBufferFull) {
		t.Fatalf("101st write = %v, want ErrBufferFull", err)
	}
	shortCtx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.SaveNote(shortCtx, history.NewNote{CallID: "pbx/x", Agent: "1001", Text: "x"}); !errors.Is(err, history.ErrBufferFull) {
		t.Fatalf("a note into a full buffer = %v, want ErrBufferFull at once", err)
	}
	waitFor(t, "a failed attempt", func() bool { return s.Status().LastError != "" })
	st := s.Status()
	if st.Up || st.Migrated || st.Queued != 100 || st.Capacity != 100 || st.Refused != 2 || st.DownSince.IsZero() {
		t.Fatalf("Status = %+v", st)
	}
	err := s.Healthy()
	if err == nil || strings.Contains(err.Error(), "s3cret") || strings.Contains(st.LastError, "screenpop") || !strings.Contains(st.LastError, "connection refused") {
		t.Fatalf("Healthy = %v, LastError %q: want the reason, without credentials", err, st.LastError)
	}
	if got := value(s.metrics.writes.WithLabelValues("call", resultRefused)); got != 1 {
		t.Fatalf("refused calls %v, want 1", got)
	}
	if err := s.Flush(shortCtx); err == nil {
		t.Fatal("Flush returned while nothing can be written")
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := startStore(t, history.Config{}, testSchema(t), history.Options{Registerer: reg})
	waitMigrated(t, s)
	if err := s.RecordCall(t.Context(), history.Call{ID: "pbx/1", RingAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
		if !strings.HasPrefix(mf.GetName(), "screenpop_history_") {
			t.Errorf("metric %s lacks the screenpop_history_ prefix", mf.GetName())
		}
	}
	want := []string{"screenpop_history_purged_rows_total", "screenpop_history_queued_writes", "screenpop_history_up",
		"screenpop_history_write_duration_seconds", "screenpop_history_write_errors_total", "screenpop_history_write_retries_total", "screenpop_history_writes_total"}
	if !slices.Equal(names, want) {
		t.Fatalf("metrics %v, want %v", names, want)
	}
	if got := value(s.metrics.writes.WithLabelValues("call", resultWritten)); got != 1 {
		t.Fatalf("written calls %v", got)
	}
	if _, err := New(history.Config{Type: history.TypePostgres, DSNEnv: "X"}, "postgres://x@127.0.0.1/x", history.Options{Registerer: reg}); err == nil {
		t.Fatal("a second store on the same registry: no error")
	}
}

func TestNewValidates(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg  history.Config
		dsn  string
		want string
	}{
		"memory type": {history.Config{Type: history.TypeMemory}, "postgres://x@h/db", `given type "memory"`},
		"bad option":  {history.Config{Type: history.TypePostgres, BufferSize: 5}, "postgres://x@h/db", "buffer_size: 5 is outside"},
		"bad dsn":     {history.Config{Type: history.TypePostgres, DSNEnv: "X"}, "postgres://x:secret@h:notaport/db", "connection string is not valid"},
	} {
		_, err := New(tc.cfg, tc.dsn, history.Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}
