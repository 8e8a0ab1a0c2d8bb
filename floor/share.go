package floor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Share is what the daemons sharing one Redis share of the floor:
// RedisShare.
type Share interface {
	// Publish stands v for its daemon for ttl.
	Publish(ctx context.Context, v DaemonView, ttl time.Duration) error
	// Views are every daemon's view still standing, this daemon's too.
	Views(ctx context.Context) ([]DaemonView, error)
	// Add adds what records know to their days' counts: each call's flags
	// merged bit by bit with what any daemon added before, so a call is
	// counted once. Adding the same record again changes nothing.
	Add(ctx context.Context, records []Record) error
	// Counts are day's counts.
	Counts(ctx context.Context, day string) (Counts, error)
	// PublishAck tells the other daemons of a page's acknowledgement.
	PublishAck(ctx context.Context, a Ack) error
	// Acks calls apply with every acknowledgement published, and bad
	// with every one that cannot be read, until ctx ends or the
	// subscription fails.
	Acks(ctx context.Context, apply func(Ack), bad func()) error
}

// Ack is a page's acknowledgement heard by one daemon, for the others.
type Ack struct {
	From   string    `json:"from"`  // the ID of the daemon that heard it`
	Agent  string    `json:"agent"` // as the daemon's hub authenticated it
	CallID string    `json:"call_id"`
	Stage  string    `json:"stage"`
	At     time.Time `json:"at"` // the daemon's clock when it arrived
}

// Sealer encrypts what the share stores (*rediscache.Keyring): agent IDs,
// masked callers. additional binds a value to its key.
type Sealer interface {
	Seal(plain, additional []byte) []byte
	Open(sealed, additional []byte) ([]byte, error)
}

// RedisShare keeps the floor in the shared Redis. Keys (one Cluster hash
// tag, {floor}, so that one MGET reads every view):
//
//	<prefix>{floor}:v:<id>          a daemon's view (JSON, sealed), TTL of the view
//	<prefix>{floor}:daemons         sorted set: daemon ID -> when its view expires (ms)
//	<prefix>{floor}:d:<day>:f       hash: call ID -> its flags, TTL 48h
//	<prefix>{floor}:d:<day>:n       hash: count name -> the day's count, TTL 48h
//	<prefix>floor:acks              pub/sub channel of acknowledgements (sealed)
type RedisShare struct {
	client redis.UniversalClient
	prefix string
	sealer Sealer
}

var _ Share = (*RedisShare)(nil)

// dayTTL keeps a day's counts past its midnight (a call that rang before
// it may end after).
const dayTTL = 48 * time.Hour

// NewRedisShare returns the share on client under prefix (the redis
// key_prefix); sealer may be nil (stored in clear).
func NewRedisShare(client redis.UniversalClient, prefix string, sealer Sealer) (*RedisShare, error) {
	if client == nil {
		return nil, errors.New("floor: redis share: no client")
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, fmt.Errorf("floor: redis share: key prefix %q must not hold { or }", prefix)
	}
	return &RedisShare{client: client, prefix: prefix, sealer: sealer}, nil
}

func (s *RedisShare) viewKey(id string) string    { return s.prefix + "{floor}:v:" + id }
func (s *RedisShare) daemonsKey() string          { return s.prefix + "{floor}:daemons" }
func (s *RedisShare) flagsKey(day string) string  { return s.prefix + "{floor}:d:" + day + ":f" }
func (s *RedisShare) countsKey(day string) string { return s.prefix + "{floor}:d:" + day + ":n" }
func (s *RedisShare) acksChannel() string         { return s.prefix + "floor:acks" }

func (s *RedisShare) seal(v any, key string) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if s.sealer != nil {
		data = s.sealer.Seal(data, []byte(key))
	}
	return data, nil
}

func (s *RedisShare) open(data []byte, key string, v any) error {
	if s.sealer != nil {
		var err error
		if data, err = s.sealer.Open(data, []byte(key)); err != nil {
			return err
		}
	}
	return json.Unmarshal(data, v)
}

// Publish implements Share.
func (s *RedisShare) Publish(ctx context.Context, v DaemonView, ttl time.Duration) error {
	key := s.viewKey(v.ID)
	data, err := s.seal(v, key)
	if err != nil {
		return err
	}
	now := time.Now()
	_, err = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, key, data, ttl)
		p.ZAdd(ctx, s.daemonsKey(), redis.Z{Score: float64(now.Add(ttl).UnixMilli()), Member: v.ID})
		p.ZRemRangeByScore(ctx, s.daemonsKey(), "-inf", "("+strconv.FormatInt(now.UnixMilli(), 10))
		p.Expire(ctx, s.daemonsKey(), dayTTL)
		return nil
	})
	return err
}

// Views implements Share. A view that does not open or decode (a key of
// another keyring, another version) is left out.
func (s *RedisShare) Views(ctx context.Context) ([]DaemonView, error) {
	names, err := s.client.ZRangeByScore(ctx, s.daemonsKey(), &redis.ZRangeBy{
		Min: strconv.FormatInt(time.Now().UnixMilli(), 10), Max: "+inf",
	}).Result()
	if err != nil || len(names) == 0 {
		return nil, err
	}
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = s.viewKey(n)
	}
	vals, err := s.client.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, err
	}
	var out []DaemonView
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue // expired between the two reads
		}
		var dv DaemonView
		if err := s.open([]byte(str), keys[i], &dv); err != nil || dv.ID != names[i] {
			continue
		}
		out = append(out, dv)
	}
	return out, nil
}

// addScript merges one call's flags into its day and counts each flag
// the call gains, atomically: two daemons adding the same call at once
// count it once.
var addScript = redis.NewScript(`
local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local new = bit.bor(old, tonumber(ARGV[2]))
if new ~= old then
  redis.call('HSET', KEYS[1], ARGV[1], new)
  for i = 4, #ARGV do
    local b = 2 ^ (i - 4)
    if bit.band(new, b) ~= 0 and bit.band(old, b) == 0 then
      redis.call('HINCRBY', KEYS[2], ARGV[i], 1)
    end
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return new
`)

// Add implements Share.
func (s *RedisShare) Add(ctx context.Context, records []Record) error {
	if len(records) == 0 {
		return nil
	}
	// One round trip for all: the script is loaded first, then run by
	// its hash in a pipeline.
	if err := addScript.Load(ctx, s.client).Err(); err != nil {
		return err
	}
	ttl := strconv.FormatInt(dayTTL.Milliseconds(), 10)
	cmds, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, r := range records {
			args := []any{r.CallID, int(r.Flags), ttl}
			for _, n := range flagNames {
				args = append(args, n)
			}
			addScript.EvalSha(ctx, p, []string{s.flagsKey(r.Day), s.countsKey(r.Day)}, args...)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			return err
		}
	}
	return nil
}

// Counts implements Share.
func (s *RedisShare) Counts(ctx context.Context, day string) (Counts, error) {
	m, err := s.client.HGetAll(ctx, s.countsKey(day)).Result()
	if err != nil {
		return Counts{}, err
	}
	n := func(k string) int { v, _ := strconv.Atoi(m[k]); return v }
	return Counts{Answered: n("answered"), InTime: n("in_time"), Popped: n("popped"), Abandoned: n("abandoned"), Ended: n("ended")}, nil
}

// PublishAck implements Share.
func (s *RedisShare) PublishAck(ctx context.Context, a Ack) error {
	data, err := s.seal(a, s.acksChannel())
	if err != nil {
		return err
	}
	return s.client.Publish(ctx, s.acksChannel(), data).Err()
}

// Acks implements Share.
func (s *RedisShare) Acks(ctx context.Context, apply func(Ack), bad func()) error {
	sub := s.client.Subscribe(ctx, s.acksChannel())
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		return err
	}
	ch := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m, ok := <-ch:
			if !ok {
				return errors.New("floor: acknowledgement subscription closed")
			}
			var a Ack
			if err := s.open([]byte(m.Payload), s.acksChannel(), &a); err != nil {
				bad()
				continue
			}
			apply(a)
		}
	}
}
