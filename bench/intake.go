package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/screenpop/screenpop/telephony/ari/fakeari"
)

// event is one thing the harness does at a moment of a run: post a call
// event to a daemon, or send one ARI event on the fake PBX's socket.
type event struct {
	at   time.Duration // from the start of the run
	fire func()
	// inline events run on the scheduler's goroutine, in order (ARI
	// events of one call must arrive in order); the others each on a
	// goroutine of their own, so that a slow answer delays no other.
	inline bool
}

// maxInFlight is how many events may wait for their answer at once: a
// target that far behind is overloaded, and going on would only pile up
// the harness's goroutines (and its memory) while telling nothing more.
const maxInFlight = 3000

// errOverloaded ends a run whose target fell too far behind.
var errOverloaded = errors.New("the target fell behind: over 3000 call events waited for an answer at once, the run was stopped")

// schedule runs events (sorted by at) at their times from now, open loop:
// an event is never held back by an earlier one's answer. It returns the
// scheduler's lag (how late it fired each event), p99 and max, and
// errOverloaded, having fired no more, when too many events wait at once.
func schedule(ctx context.Context, events []event) (p99, maxLag time.Duration, err error) {
	start := time.Now()
	lags := make([]time.Duration, 0, len(events))
	var wg sync.WaitGroup
	var inFlight atomic.Int64
	defer wg.Wait()
	for i := range events {
		ev := &events[i]
		if d := ev.at - time.Since(start); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		if ctx.Err() != nil {
			return 0, 0, context.Cause(ctx)
		}
		if inFlight.Load() > maxInFlight {
			return 0, 0, errOverloaded
		}
		lags = append(lags, time.Since(start)-ev.at)
		if ev.inline {
			ev.fire()
			continue
		}
		wg.Add(1)
		inFlight.Add(1)
		go func() {
			defer wg.Done()
			defer inFlight.Add(-1)
			ev.fire()
		}()
	}
	wg.Wait()
	s := summarize(lags)
	return s.P99, s.Max, nil
}

// poster posts call events to the daemons' (or the floor's) HTTP
// intake, over kept-alive connections. Like a PBX following the intake's
// README, it sends a post that got no answer (a network error) once more:
// the same events twice are harmless. Those sent again are counted.
type poster struct {
	ctx    context.Context // ends every post in flight when the run is stopped
	client *http.Client
	token  string
	errors atomic.Int64 // posts that failed, sent again or not
	resent atomic.Int64 // posts sent again after a network error (and then answered)
	first  atomic.Value // the first error, for the report

	mu   sync.Mutex
	seen []string // the first few errors, for the harness's log
}

// maxSeenErrors is how many post errors a poster keeps to log.
const maxSeenErrors = 8

// seenErrors are the first few errors of the poster's posts.
func (p *poster) seenErrors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.seen)
}

func newPoster(ctx context.Context, token string) *poster {
	return &poster{ctx: ctx, token: token, client: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        4096,
			MaxIdleConnsPerHost: 4096,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
	}}
}

// post posts body to url, and once more when the first try got no answer.
func (p *poster) post(url string, body []byte) {
	answered, err := p.try(url, body)
	if err != nil && !answered && p.ctx.Err() == nil {
		p.note("sent again after: " + err.Error())
		if _, err = p.try(url, body); err == nil {
			p.resent.Add(1)
			return
		}
	}
	if err != nil {
		p.errors.Add(1)
		p.first.CompareAndSwap(nil, err.Error())
		p.note(err.Error())
	}
}

// try posts body to url once; answered says whether the daemon answered
// (an error status) rather than the connection failing. The error says how
// the connection was got: a reused connection the daemon closed is not a
// new one refused.
func (p *poster) try(url string, body []byte) (answered bool, err error) {
	var conn httptrace.GotConnInfo
	start := time.Now()
	ctx := httptrace.WithClientTrace(p.ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { conn = i }})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return true, err
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		how := "a new connection"
		switch {
		case conn.Conn == nil:
			how = "no connection"
		case conn.Reused:
			how = fmt.Sprintf("a connection reused after %s idle", conn.IdleTime.Round(time.Millisecond))
		}
		return false, fmt.Errorf("%w (on %s, after %s, at %s)", err, how, time.Since(start).Round(time.Millisecond), start.UTC().Format("15:04:05.000"))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return true, fmt.Errorf("POST %s: HTTP %s", url, resp.Status)
	}
	return true, nil
}

// note keeps msg among the first few errors.
func (p *poster) note(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.seen) < maxSeenErrors {
		p.seen = append(p.seen, msg)
	}
}

func (p *poster) firstError() string {
	if s, ok := p.first.Load().(string); ok {
		return s
	}
	return ""
}

// httpCall is the three posts of one call through the HTTP intake: it
// rings agents, the agent at answerer picks up after ring, and the
// caller hangs up talk later.
func httpCall(id, number string, agents []string, answerer int, ring, talk time.Duration) (ringing, answered, ended []byte) {
	q := func(s string) string { return strconv.Quote(s) }
	list := make([]string, len(agents))
	for i, a := range agents {
		list[i] = q(a)
	}
	ringing = fmt.Appendf(nil, `{"event":"ringing","call_id":%s,"caller":{"number":%s},"did":"+493090182000","agents":[%s]}`,
		q(id), q(number), strings.Join(list, ","))
	answered = fmt.Appendf(nil, `{"event":"answered","call_id":%s,"agent":%s}`, q(id), q(agents[answerer]))
	ended = fmt.Appendf(nil, `{"event":"ended","call_id":%s,"outcome":"answered","agent":%s}`, q(id), q(agents[answerer]))
	return ringing, answered, ended
}

// numbers hands out caller numbers the daemon takes for real phones
// (valid German numbers, as libphonenumber and the aggregator's rules
// see them): a fixed pool that cache-hit runs ring again and again, and
// fresh ones that no cache holds.
type numbers struct {
	pool  []string
	fresh atomic.Int64
}

func newNumbers(poolSize int) *numbers {
	n := &numbers{}
	for i := 0; len(n.pool) < poolSize; i++ {
		if s := fmt.Sprintf("+49301%07d", 1000000+i*37); validNumber(s) {
			n.pool = append(n.pool, s)
		}
	}
	return n
}

func (n *numbers) next() string {
	for {
		s := fmt.Sprintf("+49302%07d", 1000000+n.fresh.Add(1))
		if validNumber(s) {
			return s
		}
	}
}

func validNumber(s string) bool {
	num, err := phonenumbers.Parse(s, "DE")
	return err == nil && phonenumbers.IsValidNumber(num)
}

// ariCall is one call of the recording, rewritten for a copy of its own.
type ariCall struct {
	lines   [][]byte
	offsets []time.Duration // from the call's start, the recording's gaps scaled
	rings   map[int]int     // line index → agent slot its Dial rings
	linked  string          // the caller channel's id: the call id, without the source's name
}

// recording is the template calls are copied from: an Asterisk recording
// of one answered call (118 events: three agents ring, the second answers,
// the caller hangs up), as in ../shared/asterisk-events.
type recording struct {
	lines   []string
	offsets []time.Duration
	ids     []string    // channel ids
	names   [][2]string // channel name, its endpoint
	uuids   []string
	agents  []string // the agents' extensions, in the order they are dialled
	caller  string
	dialRe  *regexp.Regexp
}

var (
	channelIDRe   = regexp.MustCompile(`\b\d{10}\.\d+\b`)
	channelNameRe = regexp.MustCompile(`(PJSIP/[a-z0-9]+)-([0-9a-f]{8})`)
	uuidRe        = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	dialStringRe  = regexp.MustCompile(`"type":"Dial".*"dialstatus":"","forward":"","dialstring":"([^"]+)"`)
	timestampRe   = regexp.MustCompile(`"timestamp":"([^"]+)"`)
)

// loadRecording reads a recording (one ARI event a line) whose caller is
// caller; its agents are the extensions its Dial events ring.
func loadRecording(path, caller string) (*recording, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := &recording{caller: caller}
	seen := map[string]bool{}
	var first time.Time
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var off time.Duration
		if m := timestampRe.FindStringSubmatch(line); m != nil {
			if ts, err := time.Parse(fakeari.TimeLayout, m[1]); err == nil {
				if first.IsZero() {
					first = ts
				}
				off = ts.Sub(first)
			}
		}
		r.lines = append(r.lines, line)
		r.offsets = append(r.offsets, off)
		for _, id := range channelIDRe.FindAllString(line, -1) {
			if !seen[id] {
				seen[id] = true
				r.ids = append(r.ids, id)
			}
		}
		for _, m := range channelNameRe.FindAllStringSubmatch(line, -1) {
			if !seen[m[0]] {
				seen[m[0]] = true
				r.names = append(r.names, [2]string{m[0], m[1]})
			}
		}
		for _, u := range uuidRe.FindAllString(line, -1) {
			if !seen[u] {
				seen[u] = true
				r.uuids = append(r.uuids, u)
			}
		}
		if m := dialStringRe.FindStringSubmatch(line); m != nil && !slices.Contains(r.agents, m[1]) {
			r.agents = append(r.agents, m[1])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(r.lines) == 0 || len(r.ids) == 0 || len(r.agents) == 0 || !strings.Contains(strings.Join(r.lines, "\n"), caller) {
		return nil, fmt.Errorf("%s: not a recording of a call from %s that rings agents", path, caller)
	}
	return r, nil
}

// copyCall makes copy n of the call: channel ids, channel and bridge
// names, the caller's number and the agents (in the order the recording
// dials them) replaced, the gaps between events multiplied by scale.
func (r *recording) copyCall(n int, number string, agents []string, scale float64) (*ariCall, error) {
	if len(agents) != len(r.agents) {
		return nil, fmt.Errorf("the recording rings %d agents, the copy %d", len(r.agents), len(agents))
	}
	endpoint := map[string]string{}
	for i, a := range r.agents {
		endpoint["PJSIP/"+a] = "PJSIP/" + agents[i]
	}
	var pairs []string
	// Longest first: a channel name holds its endpoint's name.
	for i, nm := range r.names {
		ep := nm[1]
		if to, ok := endpoint[ep]; ok {
			ep = to
		}
		pairs = append(pairs, nm[0], fmt.Sprintf("%s-%08x", ep, (n*64+i)&0xffffffff))
	}
	for i, a := range r.agents {
		pairs = append(pairs, "PJSIP/"+a, "PJSIP/"+agents[i], `"`+a+`"`, `"`+agents[i]+`"`)
	}
	for _, id := range r.ids {
		_, seq, _ := strings.Cut(id, ".")
		pairs = append(pairs, `"`+id+`"`, fmt.Sprintf(`"%d.%s"`, 1000000000+n, seq))
	}
	for i, u := range r.uuids {
		pairs = append(pairs, u, fmt.Sprintf("00000000-0000-4000-%04x-%012x", i, n))
	}
	pairs = append(pairs, r.caller, number)
	rep := strings.NewReplacer(pairs...)
	c := &ariCall{rings: map[int]int{}}
	_, seq, _ := strings.Cut(r.ids[0], ".")
	c.linked = fmt.Sprintf("%d.%s", 1000000000+n, seq)
	for i, l := range r.lines {
		out := rep.Replace(l)
		c.lines = append(c.lines, []byte(out))
		c.offsets = append(c.offsets, time.Duration(float64(r.offsets[i])*scale))
		if m := dialStringRe.FindStringSubmatch(out); m != nil {
			c.rings[i] = slices.Index(agents, m[1])
		}
	}
	if len(c.rings) != len(agents) {
		return nil, fmt.Errorf("copy %d: %d Dial events ring the agents, want %d", n, len(c.rings), len(agents))
	}
	return c, nil
}

// duration is how long the copy lasts.
func (c *ariCall) duration() time.Duration { return c.offsets[len(c.offsets)-1] }
