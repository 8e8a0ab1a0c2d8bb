package auth

import (
	"context"
	"errors"
	"sync"
	"time"
)

var (
	// ErrNotFound is returned by Store.Get for a key that is absent or
	// expired.
	ErrNotFound = errors.New("not found")
	// ErrStoreFull is returned by MemoryStore.Put when it holds its limit
	// of live entries.
	ErrStoreFull = errors.New("store full")
)

// Store keeps values until they expire: the sessions, and the sign-ins on
// their way through the identity provider. MemoryStore serves one daemon;
// several daemons behind a load balancer need a shared one (Redis: the value
// as JSON under a key prefix, with the expiry as TTL), since the callback
// may reach another daemon than the one that started the sign-in.
type Store[V any] interface {
	Put(ctx context.Context, key string, v V, expires time.Time) error
	// Get returns ErrNotFound for a key that is absent or expired.
	Get(ctx context.Context, key string) (V, error)
	// Delete succeeds for an absent key.
	Delete(ctx context.Context, key string) error
}

// Session is a signed-in browser. The cookie holds a random ID; the store
// key is its SHA-256, so a copy of the store holds no usable cookie.
type Session struct {
	// Identity.Expires is when the session ends.
	Identity Identity `json:"identity"`
	// IDToken is the raw ID token, sent back to the identity provider as
	// id_token_hint when the user signs out.
	IDToken string    `json:"id_token,omitempty"`
	Created time.Time `json:"created"`
}

// PendingLogin is a sign-in on its way through the identity provider, keyed
// by its state parameter.
type PendingLogin struct {
	// BindingHash is the SHA-256 of the login cookie of the browser that
	// started the sign-in: a callback from another browser (login CSRF, a
	// stolen callback URL) is refused.
	BindingHash string `json:"binding_hash"`
	Nonce       string `json:"nonce"`
	// Verifier is the PKCE code verifier.
	Verifier string `json:"verifier"`
	// ReturnTo is the local path to go back to after signing in.
	ReturnTo string `json:"return_to"`
}

// Limits of the default memory stores: the logins bound what a flood of
// /auth/login requests can take.
const (
	DefaultMaxSessions = 100_000
	DefaultMaxLogins   = 10_000
)

// MemoryStore is a Store in the daemon's memory, holding at most its limit
// of entries that have not expired.
type MemoryStore[V any] struct {
	limit int
	now   func() time.Time

	mu        sync.Mutex
	entries   map[string]memoryEntry[V]
	lastSweep time.Time
}

type memoryEntry[V any] struct {
	v       V
	expires time.Time
}

var _ Store[Session] = (*MemoryStore[Session])(nil)

// NewMemoryStore returns an empty store of at most limit live entries.
func NewMemoryStore[V any](limit int) *MemoryStore[V] {
	return newMemoryStore[V](limit, time.Now)
}

func newMemoryStore[V any](limit int, now func() time.Time) *MemoryStore[V] {
	return &MemoryStore[V]{limit: limit, now: now, entries: make(map[string]memoryEntry[V])}
}

// Put stores v under key until expires.
func (s *MemoryStore[V]) Put(_ context.Context, key string, v V, expires time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if now.Sub(s.lastSweep) > time.Minute {
		s.sweep(now)
	}
	if _, ok := s.entries[key]; !ok && len(s.entries) >= s.limit {
		if s.sweep(now); len(s.entries) >= s.limit {
			return ErrStoreFull
		}
	}
	s.entries[key] = memoryEntry[V]{v: v, expires: expires}
	return nil
}

// Get returns the value under key.
func (s *MemoryStore[V]) Get(_ context.Context, key string) (V, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	if !ok || !s.now().Before(e.expires) {
		delete(s.entries, key)
		var zero V
		return zero, ErrNotFound
	}
	return e.v, nil
}

// Delete removes key.
func (s *MemoryStore[V]) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.entries, key)
	return nil
}

// Len returns the number of entries, expired ones not yet swept included.
func (s *MemoryStore[V]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

func (s *MemoryStore[V]) sweep(now time.Time) {
	for k, e := range s.entries {
		if !now.Before(e.expires) {
			delete(s.entries, k)
		}
	}
	s.lastSweep = now
}
