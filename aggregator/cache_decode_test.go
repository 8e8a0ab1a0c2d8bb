package aggregator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// BenchmarkDecodeEntry measures the decoding of one cached value, which a
// shared cache (Redis) costs every source of every card it answers: one
// record of an account, and a list of 20 orders. One op is one value.
//
//	go test -run '^$' -bench DecodeEntry -benchmem ./aggregator/
func BenchmarkDecodeEntry(b *testing.B) {
	at := time.Date(2026, 11, 30, 9, 15, 0, 123456789, time.UTC)
	var orders []Record
	for i := range 20 {
		orders = append(orders, Record{"order": fmt.Sprintf("A-%04d", i), "date": "2026-11-02", "amount": 1234.5 + float64(i), "currency": "EUR", "status": "shipped"})
	}
	for _, c := range []struct {
		name    string
		records []Record
	}{
		{"account", []Record{{"id": "C-7", "name": "Kowalski Sp. z o.o.", "balance": 1234.5, "overdue_total": 980, "currency": "EUR", "payment_terms": "30 days net", "tags": []any{"vip", "b2b"}}}},
		{"orders-20", orders},
	} {
		data, err := encodeEntry(at, c.records)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := decodeEntry(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// decodeEntry reads what encodeEntry writes without decoding the whole
// entry first (splitEntry); anything else is decoded, and judged, as JSON.
func TestDecodeEntryForms(t *testing.T) {
	at := time.Date(2026, 11, 30, 9, 15, 0, 123456789, time.UTC)
	data, err := encodeEntry(at, []Record{{"id": "C-7", "n": 9007199254740993}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := splitEntry(data); !ok {
		t.Fatalf("splitEntry does not take what encodeEntry writes: %s", data)
	}
	for _, c := range []struct {
		name, data string
		at         time.Time
		raw        string // empty: an error
	}{
		{"encoded", string(data), at, `[{"id":"C-7","n":9007199254740993}]`},
		{"spaced", " " + string(data) + "\n", at, `[{"id":"C-7","n":9007199254740993}]`},
		{"other-order", `{"records":[{"a":1}],"fetched_at":"2026-11-30T09:15:00Z"}`, at.Truncate(time.Second), `[{"a":1}]`},
		{"extra-field", `{"fetched_at":"2026-11-30T09:15:00Z","records":[{"a":1}],"v":2}`, at.Truncate(time.Second), `[{"a":1}]`},
		{"records-twice", `{"fetched_at":"2026-11-30T09:15:00Z","records":[{"a":1}],"records":[{"a":2}]}`, at.Truncate(time.Second), `[{"a":2}]`},
		{"bare-list", `[{"a":1}]`, time.Time{}, `[{"a":1}]`},
		{"empty-list", `{"fetched_at":"2026-11-30T09:15:00Z","records":[]}`, at.Truncate(time.Second), `[]`},
		{"bad-time", `{"fetched_at":"yesterday","records":[{"a":1}]}`, time.Time{}, ""},
		{"not-records", `{"fetched_at":"2026-11-30T09:15:00Z","records":[1]}`, time.Time{}, ""},
		{"cut-short", `{"fetched_at":"2026-11-30T09:15:00Z","records":[{"a":1}`, time.Time{}, ""},
		{"no-records", `{"fetched_at":"2026-11-30T09:15:00Z"}`, time.Time{}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, err := decodeEntry([]byte(c.data))
			if c.raw == "" {
				if err == nil {
					t.Fatalf("decoded %+v, want an error", e)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !e.FetchedAt.Equal(c.at) || string(e.raw) != c.raw || len(e.Records) == 0 && c.raw != "[]" {
				t.Errorf("decoded %v %s %v, want %v %s", e.FetchedAt, e.raw, e.Records, c.at, c.raw)
			}
		})
	}
	e, _ := decodeEntry(data)
	if n, ok := e.Records[0]["n"].(json.Number); !ok || n.String() != "9007199254740993" {
		t.Errorf("a number beyond 2^53: %#v, want it exact", e.Records[0]["n"])
	}
}
