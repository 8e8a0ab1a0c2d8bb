package rediscache

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Keyring seals personal data before it reaches Redis (AES-256-GCM) and
// opens it again. It holds the current key, which seals, and the previous
// ones, which still open what they sealed: keys are rotated without a
// moment where daemons cannot read each other's values. Cached cards
// (Cache) and the pop bus's streams, snapshots and forwarded requests
// (pop/redisbus) share one Keyring.
//
// A sealed value is: version (1 byte, 1), key id (4 bytes: the first
// bytes of the key's SHA-256, so that the key is found without trying
// each), nonce (12 bytes), ciphertext and tag. The additional data the
// caller passes (the Redis key, for instance) is authenticated, not
// stored: a value copied elsewhere does not open.
type Keyring struct {
	current keyID
	aeads   map[keyID]cipher.AEAD
}

type keyID [4]byte

const (
	sealVersion = 1
	sealHeader  = 1 + len(keyID{})
)

// NewKeyring returns a Keyring: keys[0] seals, every key opens. Each key
// is 32 random bytes.
func NewKeyring(keys ...[]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("rediscache: a keyring needs at least one key")
	}
	k := &Keyring{aeads: make(map[keyID]cipher.AEAD, len(keys))}
	for i, key := range keys {
		if len(key) != 32 {
			return nil, fmt.Errorf("rediscache: key %d: an encryption key must be 32 bytes (AES-256), got %d", i+1, len(key))
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("rediscache: key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("rediscache: key %d: %w", i+1, err)
		}
		sum := sha256.Sum256(key)
		id := keyID(sum[:4])
		if _, dup := k.aeads[id]; dup {
			return nil, fmt.Errorf("rediscache: key %d is given twice", i+1)
		}
		k.aeads[id] = aead
		if i == 0 {
			k.current = id
		}
	}
	return k, nil
}

// ParseKeyring reads keys as an environment variable holds them: base64
// (standard encoding) 32-byte keys separated by commas or spaces, the
// current key first, then the previous ones.
func ParseKeyring(s string) (*Keyring, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })
	if len(fields) == 0 {
		return nil, errors.New("rediscache: no encryption key given (base64 of 32 random bytes, e.g. openssl rand -base64 32)")
	}
	keys := make([][]byte, len(fields))
	for i, f := range fields {
		key, err := base64.StdEncoding.DecodeString(f)
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("rediscache: key %d is not 32 bytes in base64 (e.g. openssl rand -base64 32)", i+1)
		}
		keys[i] = key
	}
	return NewKeyring(keys...)
}

// Seal encrypts plain under the current key with a fresh nonce, bound to
// additional. The result is a new slice.
func (k *Keyring) Seal(plain, additional []byte) []byte {
	aead := k.aeads[k.current]
	out := make([]byte, sealHeader+aead.NonceSize(), sealHeader+aead.NonceSize()+len(plain)+aead.Overhead())
	out[0] = sealVersion
	copy(out[1:sealHeader], k.current[:])
	nonce := out[sealHeader:]
	rand.Read(nonce) // never fails (crypto/rand documents it)
	return aead.Seal(out, nonce, plain, additional)
}

// Open decrypts what Seal made under any key of the ring, with the same
// additional data. A value of another key ring, or tampered with, or
// moved from where it was sealed, is an error.
func (k *Keyring) Open(sealed, additional []byte) ([]byte, error) {
	if len(sealed) < sealHeader || sealed[0] != sealVersion {
		return nil, errors.New("rediscache: not a sealed value")
	}
	aead := k.aeads[keyID(sealed[1:sealHeader])]
	if aead == nil {
		return nil, errors.New("rediscache: sealed with a key this daemon does not have")
	}
	body := sealed[sealHeader:]
	n := aead.NonceSize()
	if len(body) < n+aead.Overhead() {
		return nil, errors.New("rediscache: sealed value too short")
	}
	return aead.Open(nil, body[:n], body[n:], additional)
}
