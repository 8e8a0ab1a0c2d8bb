package redisbus

import "github.com/redis/go-redis/v9"

// deliverScript numbers and appends one message to an agent's stream and
// applies its effect on the agent's current pops, atomically, so that a
// snapshot taken at seq N holds exactly the effects of messages up to N.
//
// The seq is max(previous + 1, Redis time in microseconds): increasing per
// agent, and after a Redis restart without persistence (counter lost) still
// above every seq handed out before, so that readers positioned on the old
// numbers see the new messages. It stays below 2^53, which the browser's
// JavaScript numbers hold exactly.
//
// KEYS: dedup, seq, stream, pops.
// ARGV: dedup TTL ms (0: no dedup), MAXLEN, stream TTL ms, pops TTL ms,
// message JSON, then (op, field, value) triples on the pops hash.
// Returns 0 when the dedup key existed (another daemon sent it), else the
// seq as a string.
var deliverScript = redis.NewScript(`
if tonumber(ARGV[1]) > 0 then
  if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end
end
local t = redis.call('TIME')
local n = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
if last >= n then n = last + 1 end
local ns = string.format('%.0f', n)
redis.call('SET', KEYS[2], ns, 'PX', ARGV[3])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], ns .. '-0', 'm', ARGV[5])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
local i = 6
while i + 2 <= #ARGV do
  local op, f, v = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if op == 'set' then
    redis.call('HSET', KEYS[4], f, v)
  elseif op == 'setnx' then
    redis.call('HSETNX', KEYS[4], f, v)
  elseif op == 'del' then
    redis.call('HDEL', KEYS[4], f)
  end
  i = i + 3
end
if redis.call('EXISTS', KEYS[4]) == 1 then redis.call('PEXPIRE', KEYS[4], ARGV[4]) end
return ns
`)

// openScript answers a connecting browser, atomically with respect to
// deliveries: the messages after since when the stream still holds since
// (or nothing when since is the last seq), otherwise the agent's current
// pops. Either way it returns the last seq, from which the reader goes on.
//
// KEYS: seq, stream, pops. ARGV: since, or "" when the browser has none.
var openScript = redis.NewScript(`
local last = redis.call('GET', KEYS[1]) or '0'
local s = ARGV[1]
if s ~= '' and s ~= '0' then
  if s == last then return {'replay', last, {}} end
  local hit = redis.call('XRANGE', KEYS[2], s .. '-0', s .. '-0')
  if #hit == 1 then
    return {'replay', last, redis.call('XRANGE', KEYS[2], '(' .. s .. '-0', '+')}
  end
end
return {'snapshot', last, redis.call('HGETALL', KEYS[3])}
`)
