package redisbus

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
)

// Key layout. An agent's keys share a Redis Cluster hash tag, {<tag>}: the
// scripts touch them together. The tag is a hash of the agent's id, so
// that no agent id (which may be an extension or a phone number) appears
// in KEYS, MONITOR or a dump; call ids in the pops hash's field names are
// hashed likewise.
//
//	<prefix>{<tag>}:s          the agent's stream (entries <seq>-0)
//	<prefix>{<tag>}:m          its seq (s) and epoch (e)
//	<prefix>{<tag>}:p          its current pops: the snapshot
//	<prefix>{<tag>}:d:<name>   one message already appended (de-duplication)
//	<prefix>news:{<tag>}       pub/sub channel: the agent's stream entries as appended
//	<prefix>news               pub/sub channel: subscribed, nothing published (earlier versions: every entry)
//	<prefix>epoch              this Redis's data set: changes when it lost it
//	<prefix>epoch:{<n>}        the same on a Redis Cluster, one per master: n
//	                           is the smallest number whose slot the master
//	                           serves (the lowest of its slots)
//	<prefix>requests, <prefix>replies:<daemon>, <prefix>fwd:<id>  forwarded requests

// agentKeys are the names of one agent's keys.
type agentKeys struct {
	tag    string
	stream string
	meta   string
	pops   string
	dedup  string // prefix of the de-duplication keys
	news   string // the agent's news channel (newsChannelOf)
}

// tagOf is the hash tag of an agent: 96 bits of SHA-256, so that two
// agents never share streams.
func tagOf(agent string) string {
	sum := sha256.Sum256([]byte("screenpop agent\x00" + agent))
	return hex.EncodeToString(sum[:12])
}

func keysOf(prefix, agent string) agentKeys {
	tag := tagOf(agent)
	base := prefix + "{" + tag + "}:"
	return agentKeys{tag: tag, stream: base + "s", meta: base + "m", pops: base + "p", dedup: base + "d:",
		news: prefix + "news:{" + tag + "}"}
}

// clusterSlots is how many hash slots a Redis Cluster shares out.
const clusterSlots = 16384

// keySlot is the Redis Cluster hash slot of key: CRC16 (XMODEM) of its
// hash tag, the part between the first { and the next }, when that part
// is not empty, else of the whole key.
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) & (clusterSlots - 1)
}

// slotTags caches slotTag's answers (int -> string).
var slotTags sync.Map

// slotTag is the smallest number, written in decimal, whose slot is slot:
// a hash tag that puts a key on the master serving that slot. Every
// daemon finds the same one. About 16384 tries the first time.
func slotTag(slot int) string {
	if t, ok := slotTags.Load(slot); ok {
		return t.(string)
	}
	for n := 0; ; n++ {
		if t := strconv.Itoa(n); keySlot(t) == slot {
			slotTags.Store(slot, t)
			return t
		}
	}
}

// callField is a call's name in the pops hash's fields.
func callField(callID string) string {
	sum := sha256.Sum256([]byte("screenpop call\x00" + callID))
	return hex.EncodeToString(sum[:12])
}

// Sealer encrypts what the bus stores or publishes: the messages in the
// streams, the cards and names in the pops hashes, the forwarded
// requests. *rediscache.Keyring implements it (AES-256-GCM, the current key
// seals, previous keys still open). additional is authenticated, not
// stored: the Redis key (and field) a value is stored under, so that a
// value copied elsewhere does not open.
type Sealer interface {
	Seal(plain, additional []byte) []byte
	Open(sealed, additional []byte) ([]byte, error)
}

// seal seals plain for where it is stored, or returns it as it is
// without a Sealer.
func (b *Bus) seal(plain []byte, where ...string) []byte {
	if b.cfg.Sealer == nil {
		return plain
	}
	return b.cfg.Sealer.Seal(plain, additional(where))
}

func (b *Bus) unseal(stored []byte, where ...string) ([]byte, error) {
	if b.cfg.Sealer == nil {
		return stored, nil
	}
	return b.cfg.Sealer.Open(stored, additional(where))
}

func additional(where []string) []byte {
	if len(where) == 1 {
		return []byte(where[0])
	}
	var ad []byte
	for i, w := range where {
		if i > 0 {
			ad = append(ad, 0)
		}
		ad = append(ad, w...)
	}
	return ad
}
