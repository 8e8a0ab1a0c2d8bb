package rediscache

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/screenpop/screenpop/aggregator"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// A rotation: the new key first, the old one after. What the old key
// sealed still opens; what the new one seals, a daemon that has only the
// old key cannot read; once the old key is dropped, its values are gone.
func TestKeyringRotation(t *testing.T) {
	old, err := NewKeyring(testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := ParseKeyring(base64.StdEncoding.EncodeToString(testKey(2)) + ", " + base64.StdEncoding.EncodeToString(testKey(1)))
	if err != nil {
		t.Fatal(err)
	}
	ad := []byte("screenpop:{x}:s")
	sealedOld := old.Seal([]byte("ACME GmbH"), ad)
	if got, err := rotated.Open(sealedOld, ad); err != nil || string(got) != "ACME GmbH" {
		t.Fatalf("a value of the previous key: %q, %v", got, err)
	}
	sealedNew := rotated.Seal([]byte("ACME GmbH"), ad)
	if _, err := old.Open(sealedNew, ad); err == nil {
		t.Fatal("a daemon without the new key opened its value")
	}
	if _, err := rotated.Open(sealedNew, []byte("screenpop:{y}:s")); err == nil {
		t.Fatal("a value moved under another name opened")
	}
	newOnly, _ := NewKeyring(testKey(2))
	if _, err := newOnly.Open(sealedOld, ad); err == nil {
		t.Fatal("a dropped key's value opened")
	}
	if bytes.Contains(sealedNew, []byte("ACME")) {
		t.Fatal("sealed value holds the clear text")
	}
}

func TestParseKeyringRefuses(t *testing.T) {
	good := base64.StdEncoding.EncodeToString(testKey(3))
	for name, s := range map[string]string{
		"empty":      " ",
		"not b64":    "%%%",
		"short":      base64.StdEncoding.EncodeToString([]byte("short")),
		"twice":      good + "," + good,
		"bad second": good + ",abc",
	} {
		if _, err := ParseKeyring(s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The cache reads what it stored under the previous key after a rotation.
func TestCacheKeyRotation(t *testing.T) {
	ctx := context.Background()
	oldKeys, _ := NewKeyring(testKey(4))
	c, client, prefix := newTestCache(t, func(cfg *Config) { cfg.Keys = oldKeys })
	if err := c.Set(ctx, "card", []byte(`{"name":"ACME"}`), time.Minute); err != nil {
		t.Fatal(err)
	}
	rotatedKeys, _ := NewKeyring(testKey(5), testKey(4))
	rotated, err := New(Config{Client: client, KeyPrefix: prefix, Keys: rotatedKeys})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rotated.Get(ctx, "card"); err != nil || !strings.Contains(string(got), "ACME") {
		t.Fatalf("after rotation: %q, %v", got, err)
	}
	rotated.Set(ctx, "card2", []byte("x"), time.Minute)
	if _, err := c.Get(ctx, "card2"); !errors.Is(err, aggregator.ErrCacheMiss) {
		t.Fatalf("old key reading the new key's value: %v, want a miss", err)
	}
}
