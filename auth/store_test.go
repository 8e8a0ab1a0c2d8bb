package auth

import (
	"errors"
	"testing"
	"time"
)

func TestMemoryStore(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := newMemoryStore[string](2, func() time.Time { return now })
	ctx := t.Context()
	if err := s.Put(ctx, "a", "A", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "b", "B", now.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "c", "C", now.Add(time.Minute)); !errors.Is(err, ErrStoreFull) {
		t.Errorf("third entry: %v, want ErrStoreFull", err)
	}
	if err := s.Put(ctx, "a", "A2", now.Add(time.Minute)); err != nil {
		t.Errorf("replacing an entry of a full store: %v", err)
	}
	if v, err := s.Get(ctx, "a"); err != nil || v != "A2" {
		t.Errorf("Get(a) = %q, %v", v, err)
	}

	now = now.Add(time.Minute) // a expires: its place is free again
	if _, err := s.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("expired entry: %v, want ErrNotFound", err)
	}
	if err := s.Put(ctx, "c", "C", now.Add(time.Minute)); err != nil {
		t.Errorf("after expiry: %v", err)
	}
	if err := s.Delete(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "never"); err != nil {
		t.Errorf("deleting an absent key: %v", err)
	}
	if _, err := s.Get(ctx, "b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted entry: %v", err)
	}
	now = now.Add(2 * time.Minute)
	_ = s.Put(ctx, "d", "D", now.Add(time.Minute)) // sweeps
	if n := s.Len(); n != 1 {
		t.Errorf("%d entries after the sweep, want 1", n)
	}
}
