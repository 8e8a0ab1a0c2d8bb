package pop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/history"
	"github.com/screenpop/screenpop/pop/popstate"
)

// fakeDirectory answers searches from a list and records the links.
type fakeDirectory struct {
	mu        sync.Mutex
	customers []screenpop.Customer
	searched  []string
	links     []history.Link
	linkErr   error
}

var _ CustomerDirectory = (*fakeDirectory)(nil)

func (f *fakeDirectory) SearchLimits() (screenpop.SearchLimits, bool) {
	return screenpop.SearchLimits{MinLength: 3, MaxLength: 100, MaxResults: 10}, true
}

func (f *fakeDirectory) Search(_ context.Context, text string) (screenpop.SearchResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.searched = append(f.searched, text)
	if len(text) < 3 {
		return screenpop.SearchResult{}, fmt.Errorf("%w: type at least 3 characters", screenpop.ErrSearchText)
	}
	var res screenpop.SearchResult
	for _, c := range f.customers {
		if strings.Contains(strings.ToLower(c.Name), strings.ToLower(text)) {
			res.Customers = append(res.Customers, c)
		}
	}
	return res, nil
}

func (f *fakeDirectory) Link(_ context.Context, l history.Link) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.linkErr != nil {
		return f.linkErr
	}
	f.links = append(f.links, l)
	return nil
}

// unknownCard: calls whose id starts with "u" come from a number nobody
// knows, "w" from a withheld one.
func unknownCard(ev screenpop.CallEvent) screenpop.Card {
	c := testCard(ev)
	if strings.HasPrefix(ev.CallID, "u") {
		c.Resolution, c.Customer = screenpop.ResolvedUnknown, nil
	}
	return c
}

func startSearchDispatcher(t *testing.T, dir *fakeDirectory, perMinute int) *dispatcherEnv {
	t.Helper()
	store, err := history.NewMemory(history.Config{}, history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := startDispatcher(t, func(c *DispatcherConfig) {
		c.Recorder = store
		c.Directory = dir
		c.SearchesPerMinute = perMinute
	})
	e.b.card = unknownCard
	return e
}

func refusedWith(t *testing.T, what string, err error, code string) {
	t.Helper()
	var re *RequestError
	if !errors.As(err, &re) || re.Code != code {
		t.Errorf("%s: %v, want %s", what, err, code)
	}
}

// Only an agent holding the pop of an unknown caller searches, and gets
// the results alone; only that agent links, to what it found; the link
// is kept, then the card is built for the customer and every holder gets
// it.
func TestSearchAndLinkAuthorised(t *testing.T) {
	dir := &fakeDirectory{customers: []screenpop.Customer{{ID: "C-7", Name: "Anna Kowalska"}, {ID: "C-8", Name: "Anna Kowalski"}}}
	e := startSearchDispatcher(t, dir, 0)
	ctx := context.Background()
	alice, bob, carol := Agent{ID: "alice", Name: "Alice"}, Agent{ID: "bob"}, Agent{ID: "carol"}
	now := time.Now()
	e.d.HandleCall(ringing("u1", now, "alice", "bob"))
	e.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "w1", Caller: screenpop.Caller{Withheld: true}, Agents: []string{"alice"}, At: now})
	e.d.HandleCall(ringing("k1", now, "alice"))
	for _, c := range []string{"u1", "w1", "k1"} {
		e.del.waitTypes(t, "alice", c, TypePop)
	}

	refusedWith(t, "carol, not rung", e.d.Search(ctx, carol, "u1", "anna", "s0"), popstate.CodeForbidden)
	refusedWith(t, "a withheld caller", e.d.Search(ctx, alice, "w1", "anna", "s0"), popstate.CodeBadRequest)
	refusedWith(t, "a known customer", e.d.Search(ctx, alice, "k1", "anna", "s0"), popstate.CodeBadRequest)
	refusedWith(t, "a call nobody follows", e.d.Search(ctx, alice, "x9", "anna", "s0"), popstate.CodeUnknownCall)
	err := e.d.Search(ctx, alice, "u1", "an", "s0")
	refusedWith(t, "too short", err, popstate.CodeBadRequest)
	if err == nil || err.(*RequestError).Message != "type at least 3 characters" {
		t.Errorf("too short: %v", err)
	}
	if len(dir.searched) != 1 {
		t.Errorf("searches asked of the directory for refused requests: %v", dir.searched)
	}

	if err := e.d.Search(ctx, alice, "u1", "anna", "s1"); err != nil {
		t.Fatal(err)
	}
	e.del.waitTypes(t, "alice", "u1", TypePop, TypeSearchResults)
	got := decode[SearchResultsData](t, e.del.of("alice")[len(e.del.of("alice"))-1])
	if got.Ref != "s1" || len(got.Customers) != 2 || got.Customers[0].ID != "C-7" {
		t.Errorf("results: %+v", got)
	}
	if types := e.del.types("bob", "u1"); fmt.Sprint(types) != "[pop]" {
		t.Errorf("bob got %v", types)
	}

	refusedWith(t, "bob linking what alice found", e.d.Link(ctx, bob, "u1", "C-7", "l0"), popstate.CodeBadRequest)
	refusedWith(t, "alice linking what nobody found", e.d.Link(ctx, alice, "u1", "C-9", "l0"), popstate.CodeBadRequest)
	refusedWith(t, "carol linking", e.d.Link(ctx, carol, "u1", "C-7", "l0"), popstate.CodeForbidden)
	dir.linkErr = errors.New("connection refused")
	refusedWith(t, "the link not kept", e.d.Link(ctx, alice, "u1", "C-7", "l1"), popstate.CodeUnavailable)
	dir.linkErr = nil
	if err := e.d.Link(ctx, alice, "u1", "C-7", "l2"); err != nil {
		t.Fatal(err)
	}
	if len(dir.links) != 1 || dir.links[0].Phone != "+4930123456" || dir.links[0].CustomerID != "C-7" || dir.links[0].Agent != "alice" || dir.links[0].AgentName != "Alice" || dir.links[0].CallID != "u1" {
		t.Errorf("links kept: %+v", dir.links)
	}
	for _, a := range []string{"alice", "bob"} {
		e.del.waitUntil(t, a+"'s linked card", func() bool { return strings.Contains(fmt.Sprint(e.del.types(a, "u1")), "card") })
		msgs := e.del.of(a)
		card := decode[CardData](t, msgs[len(msgs)-1])
		if card.Card.Customer == nil || card.Card.Customer.ID != "C-7" || card.SelectedBy.ID != "alice" {
			t.Errorf("%s's card: %+v", a, card)
		}
	}
	refusedWith(t, "searching once linked", e.d.Search(ctx, alice, "u1", "anna", "s2"), popstate.CodeBadRequest)
}

// A script cannot walk the directory: an agent's searches are bounded.
func TestSearchRateLimited(t *testing.T) {
	dir := &fakeDirectory{customers: []screenpop.Customer{{ID: "C-7", Name: "Anna Kowalska"}}}
	e := startSearchDispatcher(t, dir, 1)
	e.d.HandleCall(ringing("u1", time.Now(), "alice"))
	e.del.waitTypes(t, "alice", "u1", TypePop)
	for i := range searchBurst {
		if err := e.d.Search(context.Background(), Agent{ID: "alice"}, "u1", "anna", fmt.Sprint(i)); err != nil {
			t.Fatalf("search %d: %v", i, err)
		}
	}
	refusedWith(t, "one search too many", e.d.Search(context.Background(), Agent{ID: "alice"}, "u1", "anna", "x"), popstate.CodeRateLimited)
}

func TestSearchLimiterRefills(t *testing.T) {
	var l searchLimiter
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	for i := range searchBurst {
		if !l.allow("a", 60, t0) {
			t.Fatalf("search %d of the burst refused", i)
		}
	}
	if l.allow("a", 60, t0) || !l.allow("b", 60, t0) {
		t.Fatal("the burst is per agent")
	}
	if l.allow("a", 60, t0.Add(500*time.Millisecond)) || !l.allow("a", 60, t0.Add(time.Second)) {
		t.Fatal("60 a minute: one more after a second")
	}
	l.allow("c", 60, t0.Add(time.Hour))
	if len(l.buckets) != 1 {
		t.Fatalf("agents who stopped searching are kept: %d buckets", len(l.buckets))
	}
}

// The page is told in its hello what a search takes; a dispatcher without
// a directory tells nothing of it and refuses.
func TestSearchHelloAndNoDirectory(t *testing.T) {
	e := startSearchDispatcher(t, &fakeDirectory{}, 0)
	hello, ok := e.d.Hello(context.Background(), Agent{ID: "alice"})
	if !ok || hello.Search == nil || hello.Search.MinLength != 3 || hello.Search.MaxResults != 10 {
		t.Errorf("hello: %+v", hello)
	}
	e = startDispatcher(t, nil)
	if hello, _ := e.d.Hello(context.Background(), Agent{ID: "alice"}); hello.Search != nil {
		t.Errorf("hello without a directory: %+v", hello.Search)
	}
	refusedWith(t, "search without a directory", e.d.Search(context.Background(), Agent{ID: "alice"}, "u1", "anna", ""), popstate.CodeUnavailable)
	refusedWith(t, "link without a directory", e.d.Link(context.Background(), Agent{ID: "alice"}, "u1", "C-1", ""), popstate.CodeUnavailable)
}

// The browser's search and link requests reach the dispatcher through the
// hub; a refusal comes back to the one connection that asked.
func TestSearchRequestsThroughTheHub(t *testing.T) {
	dir := &fakeDirectory{customers: []screenpop.Customer{{ID: "C-7", Name: "Anna Kowalska"}}}
	store, err := history.NewMemory(history.Config{}, history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := startHubWith(t, nil, func(c *DispatcherConfig) { c.Recorder, c.Directory = store, dir })
	e.b.card = unknownCard
	alice, mallory := e.dial(t, "alice", ""), e.dial(t, "mallory", "")
	readType(t, alice, TypeHello)
	readType(t, alice, TypeSnapshot)
	readType(t, mallory, TypeHello)
	readType(t, mallory, TypeSnapshot)
	e.d.HandleCall(ringing("u1", time.Now(), "alice"))
	readType(t, alice, TypePop)

	send := func(c interface{ WriteJSON(any) error }, req Request) {
		t.Helper()
		if err := c.WriteJSON(req); err != nil {
			t.Fatal(err)
		}
	}
	send(mallory, Request{Type: RequestSearch, CallID: "u1", Text: "anna", Ref: "m1"})
	var refusal ErrorData
	if err := json.Unmarshal(readType(t, mallory, TypeError).Data, &refusal); err != nil || refusal.Code != popstate.CodeForbidden || refusal.Request != RequestSearch || refusal.Ref != "m1" {
		t.Errorf("mallory's search: %+v, %v", refusal, err)
	}
	send(mallory, Request{Type: RequestLink, CallID: "u1", CustomerID: "C-7", Ref: "m2"})
	if err := json.Unmarshal(readType(t, mallory, TypeError).Data, &refusal); err != nil || refusal.Code != popstate.CodeForbidden || refusal.Request != RequestLink {
		t.Errorf("mallory's link: %+v, %v", refusal, err)
	}
	send(alice, Request{Type: RequestSearch, CallID: "u1", Text: "anna", Ref: "a1"})
	var found SearchResultsData
	if err := json.Unmarshal(readType(t, alice, TypeSearchResults).Data, &found); err != nil || found.Ref != "a1" || len(found.Customers) != 1 {
		t.Fatalf("alice's results: %+v, %v", found, err)
	}
	send(alice, Request{Type: RequestLink, CallID: "u1", CustomerID: "C-7", Ref: "a2"})
	var card CardData
	if err := json.Unmarshal(readType(t, alice, TypeCard).Data, &card); err != nil || card.Card.Customer == nil || card.Card.Customer.ID != "C-7" {
		t.Fatalf("alice's card: %+v, %v", card, err)
	}
}
