package aggregator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	screenpop "github.com/screenpop/screenpop"
)

// outcome is what one source gave for one card.
type outcome struct {
	status  screenpop.SectionStatus
	kind    string // the metrics outcome label
	records []Record
	cached  bool
	// fetchedAt is when a cached answer was fetched from the source; zero
	// for a fresh one, and for a cached one of unknown age.
	fetchedAt time.Time
	took      time.Duration
	// reason explains a non-ok status to the agent. It names the source
	// and never quotes the adapter's error, which may hold a query or a
	// host name.
	reason string
}

type fetchResult struct {
	records  []Record
	err      error
	panicked any
	stack    []byte
}

var errPanicked = errors.New("the source panicked")

// askHere runs one source for one card under its own time budget (limit):
// cache, concurrency limit, circuit breaker, then the source itself, in
// the goroutine started for this one lookup (fetchHere). deliver is handed
// the outcome once, as soon as there is one: when the source answered
// (and its answer was cached), or, when the source's time ran out, from
// another goroutine while the source still runs, so that a source ignoring its context costs only its slot
// and its goroutine.
//
// missed is the source's cache key when the in-process cache was looked
// at already and did not hold its answer (askInProcess): the source is
// then asked at once. Empty: the cache, if any, is looked at first.
func (a *Aggregator) askHere(ctx context.Context, rt *sourceRuntime, key Key, limit time.Duration, missed string, deliver func(outcome)) {
	start := time.Now()
	var given atomic.Bool
	give := func(o outcome) bool {
		if !given.CompareAndSwap(false, true) {
			return false
		}
		rt.observe(&o, start)
		deliver(o)
		return true
	}
	defer func() {
		// Only the aggregator's own collaborators (the cache) can panic
		// here; the source's panics are caught where it is called.
		if p := recover(); p != nil {
			give(a.panicked(rt, p, debug.Stack()))
		}
	}()
	ctx, cancel := context.WithTimeoutCause(ctx, limit, &noAnswerError{rt.spec.Name, limit})
	defer cancel()

	ck := missed
	if ck == "" && a.cache != nil && rt.spec.CacheTTL > 0 {
		param, _ := key.Param(rt.spec.Needs)
		ck = cacheKey(rt.spec.Name, rt.spec.Needs, param)
		if entry, ok := a.fromCache(ctx, rt, ck); ok {
			give(a.cachedOutcome(rt, key, ck, entry))
			return
		}
	}
	a.fetchHere(ctx, rt, key, limit, ck, give)
}

// askInProcess answers a source from the in-process cache (a MemoryCache),
// at once: no goroutine, no timer, nothing to wait for. ok is false when
// it cannot: ck is then empty when the source has no cache in process, or
// its cache key when the cache did not hold the answer (a miss, counted:
// ask it with ck as missed).
func (a *Aggregator) askInProcess(ctx context.Context, rt *sourceRuntime, key Key) (o outcome, ck string, ok bool) {
	if _, mem := a.cache.(*MemoryCache); !mem || rt.spec.CacheTTL <= 0 {
		return outcome{}, "", false
	}
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			o, ok = a.panicked(rt, p, debug.Stack()), true
		}
		if ok {
			rt.observe(&o, start)
		}
	}()
	param, _ := key.Param(rt.spec.Needs)
	ck = cacheKey(rt.spec.Name, rt.spec.Needs, param)
	entry, hit := a.fromCache(ctx, rt, ck)
	if !hit {
		return outcome{}, ck, false
	}
	return a.cachedOutcome(rt, key, ck, entry), ck, true
}

// cachedOutcome is a source's answer from the cache, refreshed in the
// background when it is no longer fresh.
func (a *Aggregator) cachedOutcome(rt *sourceRuntime, key Key, ck string, entry cacheEntry) outcome {
	o := answered(entry.Records)
	o.cached, o.kind, o.fetchedAt = true, outcomeCached, entry.FetchedAt
	if a.now().Sub(entry.FetchedAt) >= rt.spec.FreshFor {
		rt.cacheCount.stale.Inc()
		a.revalidate(rt, key, ck, entry.raw)
	} else {
		rt.cacheCount.hit.Inc()
	}
	return o
}

// observe reports how long a source took for a card, and why it gave
// nothing when it did not.
func (rt *sourceRuntime) observe(o *outcome, start time.Time) {
	o.took = time.Since(start)
	if d, ok := rt.durations[o.kind]; ok {
		d.Observe(o.took.Seconds())
	}
	if c, ok := rt.errors[o.kind]; ok {
		c.Inc()
	}
}

// noAnswerError is the cause of a source's timeout, put in words only
// when it is logged.
type noAnswerError struct {
	source string
	limit  time.Duration
}

func (e *noAnswerError) Error() string {
	return fmt.Sprintf("source %q: no answer within %s", e.source, e.limit)
}

// fetch asks the source itself, through its concurrency limit and circuit
// breaker, and caches the answer under ck (when not empty). ctx carries the
// source's time budget, limit says how long it is (for messages). The
// source runs in a goroutine of its own (fetchHere's), so that fetch
// returns by ctx's deadline whatever the source does.
func (a *Aggregator) fetch(ctx context.Context, rt *sourceRuntime, key Key, limit time.Duration, ck string) outcome {
	got := make(chan outcome, 1)
	go a.fetchHere(ctx, rt, key, limit, ck, func(o outcome) bool { got <- o; return true })
	return <-got
}

// fetchHere asks the source, through its concurrency limit and circuit
// breaker, in the calling goroutine (one started for this one lookup),
// with no goroutine and no channel of its own in between, and give is handed the outcome once,
// as soon as there is one: when the source answers, or when ctx ends
// first (its budget, the card's deadline, the card abandoned), then from
// a goroutine of context.AfterFunc's while the source still runs. give
// returns whether it took the outcome (the first one only). A fresh
// answer is cached under ck (when not empty) before it is given.
func (a *Aggregator) fetchHere(ctx context.Context, rt *sourceRuntime, key Key, limit time.Duration, ck string, give func(outcome) bool) {
	release, done, refused, ok := a.admit(rt)
	if !ok {
		give(refused)
		return
	}
	var claimed atomic.Bool // the outcome is decided: by the answer or by ctx
	stop := context.AfterFunc(ctx, func() {
		if !claimed.CompareAndSwap(false, true) {
			return
		}
		o, breakerErr := a.judge(ctx, rt, key, limit, fetchResult{err: context.Cause(ctx)})
		done(breakerErr)
		give(o)
	})
	res := a.call(ctx, rt, key, release)
	stop()
	if !claimed.CompareAndSwap(false, true) {
		return // ctx ended first: its outcome was given
	}
	o, breakerErr := a.judge(ctx, rt, key, limit, res)
	done(breakerErr)
	if breakerErr == nil && ck != "" {
		// Before the answer is given: a card built once this one is
		// complete finds it cached.
		a.toCache(ctx, rt, ck, res.records)
	}
	give(o)
}

// admit takes a slot of the source's concurrency limit and asks its
// circuit breaker. When the source may be asked, release frees the slot
// and done tells the breaker how the lookup went (once); otherwise refused
// is the outcome to give instead.
func (a *Aggregator) admit(rt *sourceRuntime) (release func(), done func(error), refused outcome, ok bool) {
	name := rt.spec.Name
	g := rt.guard
	if g.slots != nil {
		select {
		case g.slots <- struct{}{}:
		default:
			rt.log.Debug("concurrency limit reached", "max_concurrent", g.maxConcurrent)
			return nil, nil, unavailable(name + " is busy (too many lookups at once)"), false
		}
	}
	release = func() {
		if g.slots != nil {
			<-g.slots
		}
	}
	done = func(error) {}
	if g.breaker != nil {
		d, err := g.breaker.Allow()
		if err != nil {
			release()
			rt.log.Debug("circuit breaker open: source not asked")
			return nil, nil, unavailable(name + " is paused after repeated failures"), false
		}
		done = d
	}
	return release, done, outcome{}, true
}

// call runs the source's Fetch, its panic caught, and frees its slot
// (release) once it returned.
func (a *Aggregator) call(ctx context.Context, rt *sourceRuntime, key Key, release func()) (res fetchResult) {
	defer release()
	defer func() {
		if p := recover(); p != nil {
			res = fetchResult{panicked: p, stack: debug.Stack()}
		}
	}()
	res.records, res.err = rt.spec.Source.Fetch(ctx, key)
	return res
}

// judge turns what a lookup gave (res; its err is ctx's cause when ctx
// ended first) into the card's outcome, logs a failure, and says what the
// breaker is told: nil for an answer.
func (a *Aggregator) judge(ctx context.Context, rt *sourceRuntime, key Key, limit time.Duration, res fetchResult) (outcome, error) {
	name := rt.spec.Name
	switch {
	case res.panicked != nil:
		return a.panicked(rt, res.panicked, res.stack), errPanicked
	case res.err != nil && errors.Is(ctx.Err(), context.Canceled):
		// Whoever asked for the card gave up (the call ended): not the
		// source's fault.
		return outcome{status: screenpop.SectionTimeout, kind: outcomeTimeout, reason: "the card was abandoned before " + name + " answered"}, errAbandoned
	case res.err != nil && (ctx.Err() != nil || errors.Is(res.err, context.DeadlineExceeded)):
		rt.log.Log(context.Background(), rt.logLevel(), "source timed out", "timeout_seconds", limit.Seconds(), "err", scrub(res.err, key))
		return outcome{status: screenpop.SectionTimeout, kind: outcomeTimeout, reason: timeoutReason(name, limit)}, res.err
	case res.err != nil:
		rt.log.Log(context.Background(), max(rt.logLevel(), slog.LevelWarn), "source failed", "err", scrub(res.err, key))
		return outcome{status: screenpop.SectionError, kind: outcomeError, reason: name + " " + errorPhrase(res.err)}, res.err
	}
	return answered(res.records), nil
}

func answered(records []Record) outcome {
	if len(records) == 0 {
		return outcome{status: screenpop.SectionEmpty, kind: outcomeEmpty}
	}
	return outcome{status: screenpop.SectionOK, kind: outcomeOK, records: records}
}

func unavailable(reason string) outcome {
	return outcome{status: screenpop.SectionUnavailable, kind: outcomeUnavailable, reason: reason}
}

// timeoutOutcome stands for a source that had not answered when the card's
// deadline came. The source's own goroutine reports its metrics when it
// ends.
func (r *cardRun) timeoutOutcome(rt *sourceRuntime, limit time.Duration) outcome {
	return outcome{
		status: screenpop.SectionTimeout, kind: outcomeTimeout, took: limit,
		reason: timeoutReason(rt.spec.Name, limit),
	}
}

// panicked logs a source's panic, with the stack the first time only: a
// source that panics on every call must not fill the log with stacks.
func (a *Aggregator) panicked(rt *sourceRuntime, p any, stack []byte) outcome {
	if rt.guard.stackLogged.CompareAndSwap(false, true) {
		rt.log.Error("source panicked", "panic", fmt.Sprint(p), "stack", string(stack))
	} else {
		rt.log.Error("source panicked again", "panic", fmt.Sprint(p))
	}
	return outcome{status: screenpop.SectionError, kind: outcomePanic, reason: rt.spec.Name + " failed unexpectedly"}
}

// fromCache returns the cached answer of a source. Cache trouble is
// logged (at most once a minute) and the source asked instead.
func (a *Aggregator) fromCache(ctx context.Context, rt *sourceRuntime, key string) (cacheEntry, bool) {
	var err error
	var v any
	if mc, ok := a.cache.(*MemoryCache); ok {
		// In-process: decoded once per stored value, not once per hit.
		// Only the MemoryCache itself: a wrapper around it has its own Get.
		v, err = mc.getDecoded(key, decodeCached)
	} else {
		var data []byte
		data, err = a.cache.Get(ctx, key)
		return a.cacheRead(rt, key, data, err)
	}
	return a.cacheJudged(rt, v, err)
}

// decodeCached decodes a cached value into a cacheEntry; a value that does
// not decode is a badEntryError.
func decodeCached(data []byte) (any, error) {
	e, err := decodeEntry(data)
	if err != nil {
		return nil, &badEntryError{err}
	}
	return e, nil
}

// cacheRead is fromCache for key's value read from the cache with err
// (Get's, or a batch's for this key): decoded (once for the same bytes:
// decodedMemo), counted, trouble logged.
func (a *Aggregator) cacheRead(rt *sourceRuntime, key string, data []byte, err error) (cacheEntry, bool) {
	var v any
	if err == nil {
		var e cacheEntry
		if e, err = a.decoded.decode(key, data); err != nil {
			err = &badEntryError{err}
		} else {
			v = e
		}
	}
	return a.cacheJudged(rt, v, err)
}

// cacheJudged counts what the cache gave (v, a cacheEntry, or err) and
// logs its trouble.
func (a *Aggregator) cacheJudged(rt *sourceRuntime, v any, err error) (cacheEntry, bool) {
	if err == nil {
		a.metrics.cacheHit.Inc()
		return v.(cacheEntry), true
	}
	var bad *badEntryError
	switch {
	case errors.Is(err, ErrCacheMiss):
		a.metrics.cacheMiss.Inc()
		rt.cacheCount.miss.Inc()
		return cacheEntry{}, false
	case errors.As(err, &bad):
		a.metrics.cacheError.Inc()
		rt.cacheCount.err.Inc()
		a.cacheTrouble(rt, "cached value is not a list of records", bad.err)
		return cacheEntry{}, false
	default:
		a.metrics.cacheError.Inc()
		rt.cacheCount.err.Inc()
		a.cacheTrouble(rt, "cannot read from the cache", err)
	}
	return cacheEntry{}, false
}

// badEntryError is a cached value that does not decode.
type badEntryError struct{ err error }

func (e *badEntryError) Error() string { return e.err.Error() }

func (a *Aggregator) toCache(ctx context.Context, rt *sourceRuntime, key string, records []Record) {
	data, err := encodeEntry(a.now(), records)
	if err != nil {
		a.cacheTrouble(rt, "cannot encode the records for the cache", err)
		return
	}
	if err := a.cache.Set(ctx, key, data, rt.spec.CacheTTL); err != nil {
		a.cacheTrouble(rt, "cannot write to the cache", err)
	}
}

func (a *Aggregator) cacheTrouble(rt *sourceRuntime, msg string, err error) {
	if a.cacheErrLog.allow() {
		rt.log.Warn(msg+" (the source is asked instead; repeats are not logged for a minute)", "err", err)
	}
}

// errorPhrase says in an agent's words what kind of failure err is. The
// adapter's message is for IT (it is logged); it may name hosts, tables or
// queries, none of which belongs on a card.
func errorPhrase(err error) string {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.As(err, &dnsErr),
		errors.As(err, &opErr) && opErr.Op == "dial":
		return "cannot be reached"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "lost the connection"
	}
	return "reported an error"
}

// scrub masks the caller's number in an error text before it is logged;
// adapters should not put it there, but one that does must not leak it.
func scrub(err error, key Key) string {
	msg := err.Error()
	for _, v := range []string{key.Phone, key.National} {
		if len(v) >= 4 {
			msg = strings.ReplaceAll(msg, v, screenpop.MaskPhone(v))
		}
	}
	return msg
}

// timeoutReason says that a source ran out of time. A source started with
// almost nothing left of the card's deadline (it waited for the directory)
// gets no "within 0s".
func timeoutReason(name string, limit time.Duration) string {
	if limit < time.Millisecond {
		return name + " could not be asked before the card's deadline"
	}
	return fmt.Sprintf("%s did not answer within %s", name, roundDuration(limit))
}

// roundDuration shows a budget the way it was configured ("500ms", "1.5s")
// rather than with the nanoseconds a capped budget has.
func roundDuration(d time.Duration) time.Duration {
	if d >= 10*time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}

// prefetched is a source's cache entry read in one of the card's batches
// (prefetch), kept until the source is started.
type prefetched struct {
	ck    string
	data  []byte
	err   error
	start time.Time     // when the batch was sent
	limit time.Duration // the source's time budget, from start
	read  bool
}

// remaining is what is left of the source's budget after its batch.
func (p *prefetched) remaining() time.Duration {
	return max(p.limit-time.Since(p.start), time.Nanosecond)
}

// batchCache is the cache as a BatchCache, when a card reads its sources'
// entries in batches: a shared cache that can. Not the in-process one,
// which answers each source at once (askInProcess).
func (a *Aggregator) batchCache() (BatchCache, bool) {
	if _, mem := a.cache.(*MemoryCache); mem {
		return nil, false
	}
	bc, ok := a.cache.(BatchCache)
	return bc, ok
}

// prefetch reads in one round trip the cache entries of the directory
// (withDir: it is about to be asked) and of every source not started yet
// that can be looked up with what the card knows, when there are two or
// more: each source is then answered from its entry when started, or,
// when it missed, asked at once. One entry alone is read by its source,
// as without a batch.
//
// The batch has the longest budget of the sources in it; each source's
// budget still runs from the batch's start.
func (r *cardRun) prefetch(withDir bool) {
	bc, ok := r.a.batchCache()
	if !ok {
		return
	}
	var keys []string
	var who []int // source indexes, directoryIndex for the directory
	add := func(i int, rt *sourceRuntime) {
		if rt.spec.CacheTTL <= 0 {
			return
		}
		if param, ok := r.key.Param(rt.spec.Needs); ok {
			keys = append(keys, cacheKey(rt.spec.Name, rt.spec.Needs, param))
			who = append(who, i)
		}
	}
	if d := r.st.directory; withDir && d != nil {
		add(directoryIndex, d)
	}
	for i, rt := range r.st.sources {
		if r.limits[i] == 0 && !r.settled[i] && (r.pre == nil || !r.pre[i].read) {
			add(i, rt)
		}
	}
	if len(keys) < 2 {
		return
	}
	start := time.Now()
	limits := make([]time.Duration, len(who))
	var longest time.Duration
	for j, i := range who {
		rt := r.st.directory
		if i != directoryIndex {
			rt = r.st.sources[i]
		}
		limits[j] = r.limit(rt)
		longest = max(longest, limits[j])
	}
	ctx, cancel := context.WithTimeout(r.parent, longest)
	values, errs := r.a.getMany(ctx, bc, keys)
	cancel()
	if r.pre == nil {
		r.pre = make([]prefetched, len(r.st.sources))
	}
	for j, i := range who {
		p := prefetched{ck: keys[j], data: values[j], err: errs[j], start: start, limit: limits[j], read: true}
		if i == directoryIndex {
			r.dirPre = &p
		} else {
			r.pre[i] = p
		}
	}
}

// getMany is bc.GetMany, every key an error when the cache panics or
// answers for other keys than it was asked.
func (a *Aggregator) getMany(ctx context.Context, bc BatchCache, keys []string) (values [][]byte, errs []error) {
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("the cache panicked reading a batch", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			values, errs = nil, nil
		}
		if len(values) != len(keys) || len(errs) != len(keys) {
			err := errors.New("the cache's batch read failed")
			values, errs = make([][]byte, len(keys)), make([]error, len(keys))
			for i := range errs {
				errs[i] = err
			}
		}
	}()
	return bc.GetMany(ctx, keys)
}

// answerPrefetched answers a source from its entry read in the card's
// batch, at once, as askInProcess does; ok is false on a miss or an error
// (counted): the source is then asked with p.ck as missed, within
// p.remaining().
func (a *Aggregator) answerPrefetched(rt *sourceRuntime, key Key, p *prefetched) (o outcome, ok bool) {
	defer func() {
		if pv := recover(); pv != nil {
			o, ok = a.panicked(rt, pv, debug.Stack()), true
		}
		if ok {
			rt.observe(&o, p.start)
		}
	}()
	entry, hit := a.cacheRead(rt, p.ck, p.data, p.err)
	if !hit {
		return outcome{}, false
	}
	return a.cachedOutcome(rt, key, p.ck, entry), true
}
