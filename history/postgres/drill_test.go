package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/screenpop/screenpop/history"
)

// TestDrill kills the history's PostgreSQL (SIGKILL to every process of
// it: no shutdown, no checkpoint) while calls, notes and access entries are
// being recorded, keeps recording while it is down, starts it again, and
// checks that everything is there exactly once.
func TestDrill(t *testing.T) {
	c := newCluster(t)

	t.Run("killed and restarted under calls and notes", func(t *testing.T) {
		dsn := c.createDB(t, "drill")
		s := startStore(t, history.Config{WriteTimeout: time.Second}, dsn, history.Options{Daemon: "drill"})
		waitMigrated(t, s)

		var recorded atomic.Int64 // calls recorded so far
		var notes sync.WaitGroup
		noteErrs := make(chan error, 10000)
		stop := make(chan struct{})
		generator := make(chan struct{})
		go func() {
			defer close(generator)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("pbx/%d", i)
				phone := fmt.Sprintf("+4930%07d", i%50)
				ctx := context.Background()
				// As the dispatcher does: a call is recorded when it ends,
				// its pop logged, and a note saved by the agent, who waits
				// for "saved" (up to a minute here).
				if err := s.RecordCall(ctx, history.Call{ID: id, Phone: phone, Agent: "1001", RingAt: time.Now()}); err != nil {
					t.Errorf("RecordCall %s: %v", id, err)
					return
				}
				if err := s.LogAccess(ctx, history.AccessEntry{Agent: "1001", CallID: id, Phone: phone, Sections: []string{"history"}}); err != nil {
					t.Errorf("LogAccess %s: %v", id, err)
					return
				}
				notes.Go(func() {
					ctx, cancel := context.WithTimeout(ctx, time.Minute)
					defer cancel()
					if _, err := s.SaveNote(ctx, history.NewNote{CallID: id, Phone: phone, Agent: "1001", Text: "note of " + id}); err != nil {
						noteErrs <- fmt.Errorf("note of %s: %w", id, err)
					}
				})
				recorded.Add(1)
				time.Sleep(time.Millisecond)
			}
		}()
		waitCalls := func(n int64) {
			t.Helper()
			waitFor(t, fmt.Sprintf("%d calls recorded", n), func() bool { return recorded.Load() >= n })
		}

		waitCalls(100)
		c.kill()
		before := recorded.Load()
		waitFor(t, "the store to notice", func() bool { return !s.Status().Up })
		waitCalls(before + 100) // recording goes on while it is down
		if err := s.Healthy(); err == nil {
			t.Fatal("Healthy while PostgreSQL is down")
		}
		c.start(t)
		waitCalls(recorded.Load() + 100)
		close(stop)
		<-generator
		notes.Wait()
		close(noteErrs)
		for err := range noteErrs {
			t.Error(err)
		}
		if err := s.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}

		total := int(recorded.Load())
		conn := connect(t, dsn)
		if n := count(t, conn, "SELECT count(*) FROM history_calls"); n != total {
			t.Errorf("%d calls stored, %d recorded", n, total)
		}
		if n := count(t, conn, "SELECT count(*) FROM history_calls WHERE call_id = ANY($1)", callIDs(total)); n != total {
			t.Errorf("%d of the %d recorded calls stored", n, total)
		}
		// Exactly once: a note's text names its call, and a note whose
		// commit was lost on the wire and sent again must not be there twice.
		if n := count(t, conn, `SELECT count(*) FROM (SELECT v.text FROM history_notes n JOIN history_note_versions v USING (note_id)
			GROUP BY v.text HAVING count(*) = 1) once`); n != total {
			t.Errorf("%d notes stored exactly once, want %d", n, total)
		}
		if n := count(t, conn, "SELECT count(*) FROM history_notes"); n != total {
			t.Errorf("%d notes stored, want %d", n, total)
		}
		if n := count(t, conn, "SELECT count(*) FROM history_access_log"); n != total {
			t.Errorf("%d access entries stored, want %d", n, total)
		}
		if err := s.Healthy(); err != nil {
			t.Errorf("Healthy after the restart: %v", err)
		}
		if value(s.metrics.retries) == 0 || value(s.metrics.errors.WithLabelValues(reasonUnavailable)) == 0 {
			t.Error("no retries or errors counted across the outage")
		}
		t.Logf("%d calls, notes and access entries across a kill -9: all there once; %v retries", total, value(s.metrics.retries))
	})

	t.Run("a note given up while PostgreSQL is down is never written", func(t *testing.T) {
		dsn := c.createDB(t, "giveup")
		s := startStore(t, history.Config{WriteTimeout: time.Second}, dsn, history.Options{})
		waitMigrated(t, s)
		c.kill()
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		if _, err := s.SaveNote(ctx, history.NewNote{CallID: "pbx/1", Agent: "1001", Text: "not saved"}); !errors.Is(err, history.ErrNotSaved) {
			t.Fatalf("SaveNote while down = %v, want ErrNotSaved", err)
		}
		c.start(t)
		if _, err := s.SaveNote(t.Context(), history.NewNote{CallID: "pbx/1", Agent: "1001", Text: "saved"}); err != nil {
			t.Fatalf("SaveNote after the restart: %v", err)
		}
		if err := s.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		notes, err := s.Notes(t.Context(), "pbx/1")
		if err != nil || len(notes) != 1 || notes[0].Text != "saved" {
			t.Fatalf("notes %+v, %v; want only the one saved after the restart", notes, err)
		}
	})

	t.Run("a note waits through a restart", func(t *testing.T) {
		dsn := c.createDB(t, "waits")
		s := startStore(t, history.Config{WriteTimeout: time.Second}, dsn, history.Options{})
		waitMigrated(t, s)
		c.kill()
		saved := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := s.SaveNote(ctx, history.NewNote{CallID: "pbx/1", Agent: "1001", Text: "waited"})
			saved <- err
		}()
		waitFor(t, "a failed attempt", func() bool { return !s.Status().Up })
		c.start(t)
		if err := <-saved; err != nil {
			t.Fatalf("SaveNote across the restart: %v", err)
		}
		if notes, err := s.Notes(t.Context(), "pbx/1"); err != nil || len(notes) != 1 {
			t.Fatalf("notes %+v, %v", notes, err)
		}
	})

	t.Run("a daemon started while PostgreSQL is down", func(t *testing.T) {
		dsn := c.createDB(t, "late")
		c.kill()
		s := startStore(t, history.Config{}, dsn, history.Options{})
		for i := range 3 {
			if err := s.RecordCall(t.Context(), history.Call{ID: fmt.Sprintf("pbx/%d", i), Phone: "+4930901820", RingAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "a failed migration", func() bool { return s.Status().LastError != "" })
		if st := s.Status(); st.Up || st.Migrated || st.Queued != 3 || s.Healthy() == nil {
			t.Fatalf("Status while down from the start: %+v", st)
		}
		c.start(t)
		waitMigrated(t, s)
		if err := s.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		if calls, err := s.Recent(t.Context(), "+4930901820", 10); err != nil || len(calls) != 3 {
			t.Fatalf("calls %d, %v; want the 3 recorded before PostgreSQL came", len(calls), err)
		}
	})
}

func callIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("pbx/%d", i)
	}
	return ids
}
