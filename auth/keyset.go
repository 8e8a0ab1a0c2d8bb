package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// maxJWKSBytes bounds the key set document read from the identity provider.
const maxJWKSBytes = 1 << 20

// keySet is an identity provider's JSON Web Key Set, cached. It fetches the
// set again when a token names a key it does not hold (the provider rotated
// its keys) and when the cached keys are older than maxAge; never more often
// than once per refreshInterval, which is what go-oidc's RemoteKeySet does
// not bound: there, every token with an invented kid is one request to the
// provider.
type keySet struct {
	name            string // "oidc" or "jwt": the metric label
	url             string
	client          *http.Client
	now             func() time.Time
	refreshInterval time.Duration
	maxAge          time.Duration
	log             *slog.Logger
	metrics         *metrics
	fetching        singleflight.Group

	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetched time.Time // last successful fetch
	tried   time.Time // last fetch, successful or not
}

var _ oidc.KeySet = (*keySet)(nil)

// VerifySignature checks the signature of a compact JWS and returns its
// payload. go-oidc's IDTokenVerifier calls it after checking the algorithm
// against its allowed list, and checks the claims itself.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, joseAlgorithms(asymmetricAlgorithms))
	if err != nil {
		return nil, fmt.Errorf("malformed token: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("malformed token: not exactly one signature")
	}
	header := jws.Signatures[0].Header

	keys, stale := k.cached()
	if stale {
		keys, _, _ = k.refresh(ctx)
	}
	if payload, known, err := verifyWith(jws, header, keys); known {
		return payload, err
	}
	// A key the set does not hold: the provider may have rotated its keys
	// since the last fetch.
	keys, limited, err := k.refresh(ctx)
	if payload, known, verr := verifyWith(jws, header, keys); known {
		return payload, verr
	}
	switch {
	case err != nil:
		return nil, fmt.Errorf("no key %q in the key set %s, and fetching it failed: %w", header.KeyID, k.url, err)
	case limited:
		return nil, fmt.Errorf("no key %q in the key set %s (fetched less than %s ago, not again yet)", header.KeyID, k.url, k.refreshInterval)
	}
	return nil, fmt.Errorf("no key %q in the key set %s", header.KeyID, k.url)
}

// verifyWith verifies jws with the keys that match its kid and algorithm.
// known is false when no key matches, which is the case to fetch anew for.
func verifyWith(jws *jose.JSONWebSignature, header jose.Header, keys []jose.JSONWebKey) (payload []byte, known bool, err error) {
	for i := range keys {
		key := &keys[i]
		if header.KeyID != "" && key.KeyID != header.KeyID {
			continue
		}
		if (key.Use != "" && key.Use != "sig") || (key.Algorithm != "" && key.Algorithm != header.Algorithm) {
			continue
		}
		known = true
		if payload, err := jws.Verify(key); err == nil {
			return payload, true, nil
		}
	}
	if known {
		return nil, true, fmt.Errorf("the signature does not verify with key %q", header.KeyID)
	}
	return nil, false, nil
}

// cached returns the cached keys, and whether they are too old or missing.
func (k *keySet) cached() ([]jose.JSONWebKey, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys, k.fetched.IsZero() || k.now().Sub(k.fetched) > k.maxAge
}

// refresh fetches the key set unless it was fetched (or tried) less than
// refreshInterval ago; limited says it was not fetched for that reason.
// Callers at the same time share one fetch. The keys returned are the
// cached ones whenever no new set could be had.
func (k *keySet) refresh(ctx context.Context) (keys []jose.JSONWebKey, limited bool, err error) {
	type result struct {
		keys    []jose.JSONWebKey
		limited bool
	}
	v, err, _ := k.fetching.Do("", func() (any, error) {
		k.mu.Lock()
		now := k.now()
		if !k.tried.IsZero() && now.Sub(k.tried) < k.refreshInterval {
			defer k.mu.Unlock()
			k.metrics.jwksFetches.WithLabelValues(k.name, fetchRateLimited).Inc()
			return result{keys: k.keys, limited: true}, nil
		}
		k.tried = now
		k.mu.Unlock()

		// Shared by every waiting caller, so none of their cancellations
		// applies; the client's timeout bounds it.
		fetched, err := k.fetch(context.WithoutCancel(ctx))

		k.mu.Lock()
		defer k.mu.Unlock()
		if err != nil {
			k.metrics.jwksFetches.WithLabelValues(k.name, fetchError).Inc()
			k.log.Warn("fetching the key set failed", "url", k.url, "err", err)
			return result{keys: k.keys}, err
		}
		k.metrics.jwksFetches.WithLabelValues(k.name, fetchOK).Inc()
		k.keys, k.fetched = fetched, k.now()
		return result{keys: fetched}, nil
	})
	r := v.(result)
	return r.keys, r.limited, err
}

// fetch gets and parses the key set. Keys of types this build cannot use
// are skipped rather than failing the whole set (RFC 7517 section 5).
func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", k.url, resp.Status)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("%s: key set larger than %d bytes", k.url, maxJWKSBytes)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("%s: not a JSON Web Key Set: %w", k.url, err)
	}
	keys := make([]jose.JSONWebKey, 0, len(doc.Keys))
	for _, raw := range doc.Keys {
		var key jose.JSONWebKey
		if err := json.Unmarshal(raw, &key); err != nil || !key.Valid() || !key.IsPublic() {
			continue
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no usable public key in the key set", k.url)
	}
	return keys, nil
}

func joseAlgorithms(names []string) []jose.SignatureAlgorithm {
	out := make([]jose.SignatureAlgorithm, len(names))
	for i, n := range names {
		out[i] = jose.SignatureAlgorithm(n)
	}
	return out
}
