package aggregator

import (
	"context"
	"errors"
	"testing"
	"time"
)

// An in-process hit decodes the stored JSON once per stored value: later
// hits share the decoded entry, a Set replaces it, and a value that does
// not decode is reported every time rather than remembered.
func TestMemoryCacheDecodesOncePerValue(t *testing.T) {
	c := NewMemoryCache(10)
	ctx := context.Background()
	decodes := 0
	decode := func(data []byte) (any, error) {
		decodes++
		return decodeEntry(data)
	}
	data, err := encodeEntry(time.Now(), []Record{{"balance": 12}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "k", data, time.Minute); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		v, err := c.getDecoded("k", decode)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.(cacheEntry).Records[0]["balance"]; got == nil {
			t.Fatalf("records %v", v)
		}
	}
	if decodes != 1 {
		t.Errorf("decoded %d times for three hits, want 1", decodes)
	}

	data2, _ := encodeEntry(time.Now(), []Record{{"balance": 13}})
	if err := c.Set(ctx, "k", data2, time.Minute); err != nil {
		t.Fatal(err)
	}
	v, err := c.getDecoded("k", decode)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(v.(cacheEntry).raw); got != `[{"balance":13}]` {
		t.Errorf("after Set the hit gives %s, want the new value", got)
	}
	if decodes != 2 {
		t.Errorf("decodes = %d after a new value, want 2", decodes)
	}

	if err := c.Set(ctx, "bad", []byte("not json"), time.Minute); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := c.getDecoded("bad", decode); err == nil {
			t.Fatal("a value that does not decode was served")
		}
	}
	if _, err := c.getDecoded("absent", decode); !errors.Is(err, ErrCacheMiss) {
		t.Errorf("absent key: %v, want ErrCacheMiss", err)
	}
}
