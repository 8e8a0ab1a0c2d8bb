package aggregator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
)

func TestMemoryCache(t *testing.T) {
	ctx := context.Background()
	c := NewMemoryCache(3)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return now }

	if _, err := c.Get(ctx, "a"); !errors.Is(err, ErrCacheMiss) {
		t.Fatalf("empty cache: %v", err)
	}
	value := []byte("one")
	_ = c.Set(ctx, "a", value, time.Minute)
	value[0] = 'X' // the cache keeps its own copy
	got, err := c.Get(ctx, "a")
	if err != nil || string(got) != "one" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	got[0] = 'Y'
	if again, _ := c.Get(ctx, "a"); string(again) != "one" {
		t.Errorf("Get hands out the stored bytes: %q", again)
	}

	now = now.Add(time.Minute)
	if _, err := c.Get(ctx, "a"); !errors.Is(err, ErrCacheMiss) {
		t.Errorf("expired entry: %v", err)
	}
	if c.Len() != 0 {
		t.Errorf("expired entry kept: len %d", c.Len())
	}

	for i := range 5 {
		_ = c.Set(ctx, fmt.Sprint(i), []byte{byte(i)}, time.Hour)
	}
	if c.Len() != 3 {
		t.Errorf("len %d, want the bound 3", c.Len())
	}
	for i := range 5 {
		_, err := c.Get(ctx, fmt.Sprint(i))
		if (i < 2) != errors.Is(err, ErrCacheMiss) {
			t.Errorf("entry %d: %v (the oldest writes go first)", i, err)
		}
	}
	// Rewriting a key makes it the newest.
	_ = c.Set(ctx, "2", []byte("again"), time.Hour)
	_ = c.Set(ctx, "5", []byte("new"), time.Hour)
	if _, err := c.Get(ctx, "2"); err != nil {
		t.Errorf("rewritten entry evicted: %v", err)
	}
	if _, err := c.Get(ctx, "3"); !errors.Is(err, ErrCacheMiss) {
		t.Errorf("entry 3 should be the oldest and gone: %v", err)
	}

	_ = c.Delete(ctx, "2", "nope")
	if _, err := c.Get(ctx, "2"); !errors.Is(err, ErrCacheMiss) {
		t.Errorf("deleted entry: %v", err)
	}
	_ = c.Set(ctx, "5", []byte("x"), 0)
	if _, err := c.Get(ctx, "5"); !errors.Is(err, ErrCacheMiss) {
		t.Errorf("a zero TTL should remove: %v", err)
	}
}

func TestMemoryCacheConcurrent(t *testing.T) {
	c := NewMemoryCache(20)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				k := fmt.Sprint((i + j) % 30)
				_ = c.Set(ctx, k, []byte(k), time.Minute)
				if v, err := c.Get(ctx, k); err == nil && string(v) != k {
					t.Errorf("key %s holds %q", k, v)
				}
				_ = c.Delete(ctx, fmt.Sprint(j%30))
			}
		})
	}
	wg.Wait()
	if c.Len() > 20 {
		t.Errorf("len %d beyond the bound", c.Len())
	}
}

func TestMemoryHistory(t *testing.T) {
	ctx := context.Background()
	h := NewMemoryHistory(3)
	base := time.Date(2026, 2, 1, 8, 0, 0, 0, time.UTC)
	note := func(text string) screenpop.Note { return screenpop.Note{Agent: "1001", Text: text, At: base} }

	// A note written while the call runs, before the call is recorded.
	if err := h.AddNote(ctx, knownPhone, "c2", note("asked for a quote")); err != nil {
		t.Fatal(err)
	}
	if calls, _ := h.Recent(ctx, knownPhone, 10); len(calls) != 0 {
		t.Errorf("a call shows before it is recorded: %+v", calls)
	}
	for i, id := range []string{"c1", "c2", "c3"} {
		if err := h.Record(ctx, screenpop.PastCall{CallID: id, Phone: knownPhone, At: base.Add(time.Duration(i) * time.Hour), Outcome: screenpop.OutcomeAnswered}); err != nil {
			t.Fatal(err)
		}
	}
	_ = h.AddNote(ctx, knownPhone, "c2", note("sent it"))
	calls, err := h.Recent(ctx, knownPhone, 10)
	if err != nil || len(calls) != 3 || calls[0].CallID != "c3" || calls[2].CallID != "c1" {
		t.Fatalf("Recent = %+v, %v", calls, err)
	}
	if n := calls[1].Notes; len(n) != 2 || n[0].Text != "asked for a quote" || n[1].Text != "sent it" {
		t.Errorf("notes of c2: %+v", n)
	}
	calls[1].Notes[0].Text = "changed by the reader"
	if again, _ := h.Recent(ctx, knownPhone, 1); len(again) != 1 || again[0].CallID != "c3" {
		t.Errorf("limit: %+v", again)
	}
	if again, _ := h.Recent(ctx, knownPhone, 3); again[1].Notes[0].Text != "asked for a quote" {
		t.Error("Recent hands out the stored notes")
	}

	// An older call recorded late lands in its place; the oldest beyond
	// the bound is dropped.
	_ = h.Record(ctx, screenpop.PastCall{CallID: "c0", Phone: knownPhone, At: base.Add(-time.Hour)})
	_ = h.Record(ctx, screenpop.PastCall{CallID: "c4", Phone: knownPhone, At: base.Add(90 * time.Minute)})
	calls, _ = h.Recent(ctx, knownPhone, 10)
	var ids []string
	for _, c := range calls {
		ids = append(ids, c.CallID)
	}
	if fmt.Sprint(ids) != "[c3 c4 c2]" {
		t.Errorf("calls %v, want [c3 c4 c2]", ids)
	}
	// Recording again replaces the call and keeps its notes.
	_ = h.Record(ctx, screenpop.PastCall{CallID: "c2", Phone: knownPhone, At: base.Add(time.Hour), Agent: "1002"})
	calls, _ = h.Recent(ctx, knownPhone, 10)
	if len(calls) != 3 || calls[2].Agent != "1002" || len(calls[2].Notes) != 2 {
		t.Errorf("re-recorded call: %+v", calls)
	}

	if calls, _ := h.Recent(ctx, otherPhone, 10); calls != nil {
		t.Errorf("unknown number: %+v", calls)
	}
	if err := h.Record(ctx, screenpop.PastCall{CallID: "x"}); !errors.Is(err, ErrNoPhone) {
		t.Errorf("call without phone: %v", err)
	}
	if err := h.AddNote(ctx, "", "x", note("n")); !errors.Is(err, ErrNoPhone) {
		t.Errorf("note without phone: %v", err)
	}
}

func TestMemoryHistoryBounds(t *testing.T) {
	ctx := context.Background()
	h := NewMemoryHistory(2)
	h.maxPhones = 3
	// Notes of calls never recorded do not pile up.
	for i := range 10 {
		_ = h.AddNote(ctx, knownPhone, fmt.Sprint("lost-", i), screenpop.Note{Text: "n"})
	}
	h.mu.Lock()
	early := len(h.phones[knownPhone].Value.(*phoneHistory).early)
	h.mu.Unlock()
	if early != 2 {
		t.Errorf("%d pending note sets kept, want 2", early)
	}
	for i := range 5 {
		_ = h.Record(ctx, screenpop.PastCall{CallID: "c", Phone: fmt.Sprint("+49301234", i)})
	}
	if calls, _ := h.Recent(ctx, "+493012340", 1); calls != nil {
		t.Error("the least recently written number should be forgotten")
	}
	if calls, _ := h.Recent(ctx, "+493012344", 1); len(calls) != 1 {
		t.Error("the newest number is missing")
	}
}
