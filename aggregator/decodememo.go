package aggregator

import (
	"bytes"
	"sync"
)

// decodedMemo saves decoding a shared cache's values again (Redis, where
// Get returns bytes): per cache key, the last value read and what it
// decoded to. A value read again with the very same bytes is the same
// entry, so it is not decoded again; any other value (a refresh, another
// daemon's write) is decoded and remembered instead. It serves nothing
// the cache does not hold at that moment: it is asked only with the bytes
// just read. The entries are shared between cards, as a MemoryCache's
// decoded values are: nothing changes them.
//
// Decoding a cached answer was 8.6% of each daemon's CPU in make bench's
// two-daemon case (500 calls/s, cache hit): encoding/json on every hit.
type decodedMemo struct {
	mu sync.Mutex
	m  map[string]decodedValue
}

type decodedValue struct {
	data  []byte
	entry cacheEntry
}

// maxDecodedMemo bounds the values remembered; when full, the memo
// starts again empty.
const maxDecodedMemo = 4096

// decode is decodeEntry(data), from the memo when key's last value read
// had these bytes.
func (d *decodedMemo) decode(key string, data []byte) (cacheEntry, error) {
	d.mu.Lock()
	v, ok := d.m[key]
	d.mu.Unlock()
	if ok && bytes.Equal(v.data, data) {
		return v.entry, nil
	}
	e, err := decodeEntry(data)
	if err != nil {
		return e, err
	}
	d.mu.Lock()
	if d.m == nil || len(d.m) >= maxDecodedMemo {
		d.m = make(map[string]decodedValue, 64)
	}
	d.m[key] = decodedValue{data: data, entry: e}
	d.mu.Unlock()
	return e, nil
}

// forget drops keys (evicted, or a number just linked): an erased
// customer's answer is not kept in memory either.
func (d *decodedMemo) forget(keys ...string) {
	d.mu.Lock()
	for _, k := range keys {
		delete(d.m, k)
	}
	d.mu.Unlock()
}
