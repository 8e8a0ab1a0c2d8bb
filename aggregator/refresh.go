package aggregator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	screenpop "github.com/screenpop/screenpop"
)

// cacheEntry is what the cache holds for one source and one lookup value:
// the records and when the source gave them, so that an answer can be
// shown at once and still be known to be getting old.
type cacheEntry struct {
	FetchedAt time.Time       `json:"fetched_at"`
	Records   []Record        `json:"-"`
	raw       json.RawMessage // Records as stored, to tell whether a refresh changed them
}

// storedEntry is the cached value's encoding.
type storedEntry struct {
	FetchedAt time.Time       `json:"fetched_at"`
	Records   json.RawMessage `json:"records"`
}

func encodeEntry(at time.Time, records []Record) ([]byte, error) {
	raw, err := encodeRecords(records)
	if err != nil {
		return nil, err
	}
	return json.Marshal(storedEntry{FetchedAt: at.UTC(), Records: raw})
}

// encodeRecords is the canonical encoding of a source's answer: maps are
// encoded with sorted keys, so the same answer always gives the same bytes.
func encodeRecords(records []Record) ([]byte, error) {
	if records == nil {
		records = []Record{}
	}
	return json.Marshal(records)
}

// decodeEntry reads a cached value. A bare list of records (written before
// entries carried their age) counts as fetched long ago: it is shown and
// refreshed.
func decodeEntry(data []byte) (cacheEntry, error) {
	var e cacheEntry
	raw := bytes.TrimSpace(data)
	if at, records, ok := splitEntry(raw); ok {
		// As encodeEntry wrote it: the records decoded once, not the
		// whole entry first.
		if err := e.FetchedAt.UnmarshalJSON(at); err == nil {
			dec := json.NewDecoder(bytes.NewReader(records))
			dec.UseNumber()
			if err := dec.Decode(&e.Records); err == nil && dec.InputOffset() == int64(len(records)) {
				e.raw = records
				return e, nil
			}
		}
		e = cacheEntry{} // something else: decoded, and judged, as below
	}
	if len(raw) > 0 && raw[0] == '{' {
		var s storedEntry
		if err := json.Unmarshal(raw, &s); err != nil {
			return e, err
		}
		if len(s.Records) == 0 {
			return e, errors.New("cached entry has no records")
		}
		e.FetchedAt, raw = s.FetchedAt, s.Records
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // ids beyond 2^53 stay exact
	if err := dec.Decode(&e.Records); err != nil {
		return e, err
	}
	e.raw = raw
	return e, nil
}

// splitEntry splits a cached value as encodeEntry writes it,
// {"fetched_at":"…","records":…}, into the quoted time and the records,
// without decoding either; ok is false for any other form (decodeEntry
// then decodes it as JSON).
func splitEntry(data []byte) (at, records []byte, ok bool) {
	const head, mid = `{"fetched_at":"`, `","records":`
	rest, ok := bytes.CutPrefix(data, []byte(head))
	if !ok {
		return nil, nil, false
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return nil, nil, false
	}
	at = data[len(head)-1 : len(head)+end+1]
	records, ok = bytes.CutPrefix(rest[end:], []byte(mid))
	if !ok || len(records) < 2 || records[len(records)-1] != '}' {
		return nil, nil, false
	}
	records = bytes.TrimSpace(records[:len(records)-1])
	if len(records) == 0 || records[0] != '[' {
		return nil, nil, false
	}
	return at, records, true
}

// Results of a background refresh, the values of the result label.
const (
	refreshChanged   = "changed"   // the source answered something new; OnRefresh told
	refreshUnchanged = "unchanged" // the same answer; only its age was renewed
	refreshFailed    = "failed"    // no answer: the cached one stays until its TTL
	refreshDropped   = "dropped"   // not started: MaxRefreshes in flight, or closed
)

var refreshResults = []string{refreshChanged, refreshUnchanged, refreshFailed, refreshDropped}

// refresher runs the background refreshes of stale cached answers: at most
// one per cache key at a time, at most max at once, none after Close.
type refresher struct {
	onRefresh func(phone, customerID string)
	slots     chan struct{}

	ctx    context.Context
	cancel context.CancelCauseFunc

	mu       sync.Mutex
	closed   bool
	inflight map[string]bool // cache keys being refreshed
	wg       sync.WaitGroup
}

var errClosed = errors.New("aggregator: closed")

func newRefresher(max int, onRefresh func(phone, customerID string)) *refresher {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &refresher{
		onRefresh: onRefresh,
		slots:     make(chan struct{}, max),
		ctx:       ctx,
		cancel:    cancel,
		inflight:  map[string]bool{},
	}
}

// revalidate asks rt again for key in the background and replaces the
// cached answer stored under ck. old is the answer the card was just given.
func (a *Aggregator) revalidate(rt *sourceRuntime, key Key, ck string, old json.RawMessage) {
	r := a.refresh
	r.mu.Lock()
	if r.closed || r.inflight[ck] {
		// Closed, or another card already triggered this refresh.
		closed := r.closed
		r.mu.Unlock()
		if closed {
			a.metrics.refreshes.WithLabelValues(refreshDropped).Inc()
		}
		return
	}
	select {
	case r.slots <- struct{}{}:
	default:
		r.mu.Unlock()
		a.metrics.refreshes.WithLabelValues(refreshDropped).Inc()
		rt.log.Debug("background refresh not started: too many in flight", "max_refreshes", cap(r.slots))
		return
	}
	r.inflight[ck] = true
	r.wg.Add(1)
	r.mu.Unlock()

	go func() {
		defer r.wg.Done()
		result := a.refreshOnce(rt, key, ck, old)
		r.mu.Lock()
		delete(r.inflight, ck)
		r.mu.Unlock()
		<-r.slots
		a.metrics.refreshes.WithLabelValues(result).Inc()
		// Told only once this refresh is over: a card rebuilt on the news
		// and found stale again starts the next refresh, instead of being
		// taken for this one.
		if result == refreshChanged && r.onRefresh != nil {
			a.tellRefresh(rt, r.onRefresh, key)
		}
	}()
}

// refreshOnce asks the source under its own timeout, bounded by Close.
func (a *Aggregator) refreshOnce(rt *sourceRuntime, key Key, ck string, old json.RawMessage) (result string) {
	limit := rt.spec.Timeout
	ctx, cancel := context.WithTimeoutCause(a.refresh.ctx, limit, fmt.Errorf("source %q: background refresh: no answer within %s", rt.spec.Name, limit))
	defer cancel()
	start := time.Now()
	var o outcome
	defer func() {
		if p := recover(); p != nil {
			o = a.panicked(rt, p, debug.Stack())
			result = refreshFailed
		}
		if d, ok := rt.durations[o.kind]; ok {
			d.Observe(time.Since(start).Seconds())
		}
		if c, ok := rt.errors[o.kind]; ok {
			c.Inc()
		}
	}()
	o = a.fetch(ctx, rt, key, limit, ck)
	if o.status != screenpop.SectionOK && o.status != screenpop.SectionEmpty {
		rt.log.Debug("background refresh failed; the cached answer stays until it expires", "reason", o.reason)
		return refreshFailed
	}
	fresh, err := encodeRecords(o.records)
	if err != nil {
		return refreshFailed
	}
	if bytes.Equal(fresh, old) {
		return refreshUnchanged
	}
	rt.log.Debug("background refresh brought new data", "phone", screenpop.MaskPhone(key.Phone))
	return refreshChanged // revalidate tells OnRefresh
}

// tellRefresh calls OnRefresh; a panic there costs that news, not the
// daemon.
func (a *Aggregator) tellRefresh(rt *sourceRuntime, onRefresh func(phone, customerID string), key Key) {
	defer func() {
		if p := recover(); p != nil {
			rt.log.Error("OnRefresh panicked; agents' cards were not updated", "panic", fmt.Sprint(p))
		}
	}()
	onRefresh(key.Phone, key.CustomerID)
}

// Close stops background refreshes: those in flight are cancelled and
// waited for, no new one starts. Builds keep working (stale answers are
// then served without refresh). Close is safe to call more than once.
func (a *Aggregator) Close() error {
	r := a.refresh
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel(errClosed)
	r.wg.Wait()
	return nil
}
