package redisbus

import "github.com/redis/go-redis/v9"

// Every script touches one agent's keys only, which share a hash tag, and
// gets every key it touches in KEYS (none is built inside a script): the
// scripts are Redis Cluster–safe (one slot, so one master), and
// Sentinel-managed primaries replicate each of them as one unit. On a
// cluster they are loaded on every master (loadScripts).

// epochLua numbers the next entry of an agent's stream. The seq is
// max(last + 1, Redis time in µs, floor + 1): it grows per agent, stays
// below 2^53 (exact in the browser's JavaScript) and, when the agent's
// meta hash is gone (Redis restarted empty, or the agent was idle past the
// stream's TTL), starts a new epoch above every seq handed out before:
// readers and browsers positioned on old numbers see the new messages,
// and a browser presenting a seq below the epoch gets a snapshot. floor is
// the highest seq a daemon knows browsers have, against a promoted
// replica whose clock is behind the old primary's.
const epochLua = `
local function seqAfter(now, last, stream, floor)
  local n = math.max(now, last + 1, tonumber(floor) + 1)
  if last == 0 then
    local top = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
    if #top == 1 then n = math.max(n, tonumber(string.match(top[1][1], '^(%d+)')) + 1) end
  end
  -- %d, not %.0f: the same digits below 2^53, and no float formatting.
  return string.format('%d', n)
end

local function redisNow()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function nextSeq(meta, stream, floor, ttl)
  local now = redisNow()
  local ls = redis.call('HGET', meta, 's') or '0'
  local last = tonumber(ls)
  local ns = seqAfter(now, last, stream, floor)
  if last == 0 then
    redis.call('HSET', meta, 's', ns, 'e', ns)
  else
    redis.call('HSET', meta, 's', ns)
  end
  redis.call('PEXPIRE', meta, ttl)
  return ns, now, ls
end
`

// deliverScript appends one message to an agent's stream and applies its
// effect on the agent's current pops, atomically, so that a snapshot
// taken at seq N holds exactly the effects of the messages up to N. It
// appends nothing when the message's de-duplication key exists: another
// daemon watching the same PBX appended it, or this daemon did on an
// attempt whose answer was lost (a timeout on a slow Redis). (One SET NX
// GET would save a call, but needs Redis 7; XTRIM MINID and XADD
// NOMKSTREAM need 6.2, the oldest Redis screenpop runs on.)
//
// KEYS: dedup, meta, stream, pops.
// ARGV: dedup TTL ms, MAXLEN, stream TTL ms, pops TTL ms, message
// (sealed), dedup name, this daemon's id, floor seq, the agent's news
// channel (<prefix>news:{<tag>}), the agent's tag, then the message's ops on the pops hash (popsOps): the
// number of fields to delete, an HSETNX's field and value ("" and "":
// none), the fields to delete, the (field, value) pairs to set.
// Returns the seq and the seq it follows, as "<seq> <previous>" (previous
// 0: a new epoch), or "d" and the id of the daemon that appended the
// message before. The previous seq lets the appending daemon hand the
// message to its own browsers at once when they have everything up to it
// (Bus.handDirect).
//
// Upkeep of the stream (trimming entries older than its TTL, the TTLs of
// the stream and the meta hash) runs once per slack, a sixteenth of the
// stream's TTL, not on every append: when it runs, at time T, it trims
// every entry older than TTL - slack (MINID T - TTL + slack), sets both
// TTLs to the stream's TTL, and notes in the meta hash (field u) when it
// is due next, T + slack. Until then every entry left is at least
// T - TTL + slack, younger than TTL: nothing older than the stream's TTL
// stays, as if it were trimmed on every append (entries go up to a slack
// earlier, never later), and an idle agent's stream and seq go between
// TTL - slack and TTL after its last message. The upkeep runs at once
// when the meta hash has no due time (a new epoch, or a daemon of an
// older version), when the due time is more than a slack ahead (Redis's
// clock went back: a failover), and the stream's TTL is set when the
// stream was gone (XADD NOMKSTREAM answers nil: evicted, deleted) and the
// append made it again: a key of personal data never lives without a
// TTL.
//
// It also PUBLISHes the entry on the agent's news channel, "<tag> <seq>
// <previous> <dedup name> <message>", which only the daemons watching the
// agent subscribe to: a daemon whose browsers have the agent's stream up
// to <previous> hands the message over as it comes, with no read
// (Bus.news). PUBLISH (not SPUBLISH, which needs Redis 7) names no key:
// Cluster-safe, and heard on every node. Whoever missed it reads the
// stream, which has the entry before anyone hears of it (the script is
// atomic).
var deliverScript = redis.NewScript(epochLua + `
local held = redis.call('GET', KEYS[1])
if held then return 'd' .. held end
redis.call('SET', KEYS[1], ARGV[7], 'PX', ARGV[1])
local ttl = tonumber(ARGV[3]) * 1000 -- µs, as seqs
local slack = math.floor(ttl / 16)
local now = redisNow()
local meta = redis.call('HMGET', KEYS[2], 's', 'u')
local ps = meta[1] or '0'
local last = tonumber(ps)
local ns = seqAfter(now, last, KEYS[3], ARGV[8])
local due = tonumber(meta[2] or '0')
local upkeep = last == 0 or now >= due or due > now + slack
if upkeep then
  local u = string.format('%d', now + slack)
  if last == 0 then
    redis.call('HSET', KEYS[2], 's', ns, 'e', ns, 'u', u)
  else
    redis.call('HSET', KEYS[2], 's', ns, 'u', u)
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
else
  redis.call('HSET', KEYS[2], 's', ns)
end
local made = false
if not redis.call('XADD', KEYS[3], 'NOMKSTREAM', 'MAXLEN', '~', ARGV[2], ns .. '-0', 'm', ARGV[5], 'k', ARGV[6]) then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], ns .. '-0', 'm', ARGV[5], 'k', ARGV[6])
  made = true
end
if upkeep then
  -- Entries older than the stream's TTL go even while the agent is busy:
  -- personal data stays no longer than that (until the next upkeep).
  redis.call('XTRIM', KEYS[3], 'MINID', '~', string.format('%d', now - ttl + slack))
end
if upkeep or made then redis.call('PEXPIRE', KEYS[3], ARGV[3]) end
local nd = tonumber(ARGV[11])
if ARGV[12] ~= '' then redis.call('HSETNX', KEYS[4], ARGV[12], ARGV[13]) end
if nd > 0 then redis.call('HDEL', KEYS[4], unpack(ARGV, 14, 13 + nd)) end
if #ARGV > 13 + nd then redis.call('HSET', KEYS[4], unpack(ARGV, 14 + nd)) end
redis.call('PEXPIRE', KEYS[4], ARGV[4]) -- nothing when the hash is gone
redis.call('PUBLISH', ARGV[9], ARGV[10] .. ' ' .. ns .. ' ' .. ps .. ' ' .. ARGV[6] .. ' ' .. ARGV[5])
return ns .. ' ' .. ps
`)

// openScript answers a connecting browser, atomically with respect to
// appends: the messages after since when since belongs to the stream's
// current epoch and the stream still holds it (nothing when since is the
// last seq), otherwise the agent's current pops. Either way it returns the
// last seq, from which the reader goes on. A stream with no seq (Redis
// lost it, or the agent was idle past its TTL) gets a new epoch here,
// above since. A replay that would cross a resnapshot marker (the pops
// changed without a message: fillScript) is a snapshot instead.
//
// KEYS: meta, stream, pops. ARGV: since ("" when the browser has none),
// floor seq, stream TTL ms.
var openScript = redis.NewScript(epochLua + `
local s = redis.call('HGET', KEYS[1], 's')
local e
if s then
  e = redis.call('HGET', KEYS[1], 'e') or s
else
  s = nextSeq(KEYS[1], KEYS[2], ARGV[2], ARGV[3])
  e = s
end
local since = ARGV[1]
if since ~= '' and tonumber(since) >= tonumber(e) then
  if since == s then return {'replay', s, {}} end
  local hit = redis.call('XRANGE', KEYS[2], since .. '-0', since .. '-0')
  if #hit == 1 then
    local rest = redis.call('XRANGE', KEYS[2], '(' .. since .. '-0', '+')
    local clean = true
    for _, en in ipairs(rest) do
      if en[2][1] == 'r' then clean = false end
    end
    if clean then return {'replay', s, rest} end
  end
end
return {'snapshot', s, redis.call('HGETALL', KEYS[3])}
`)

// raiseScript makes sure an agent's next seq is above floor, the last seq
// a daemon handed to the agent's browsers: after a failover to a replica
// that missed the last appends, or whose clock is behind. A stream with no
// seq starts a new epoch above floor.
//
// KEYS: meta, stream. ARGV: floor, stream TTL ms.
var raiseScript = redis.NewScript(epochLua + `
local s = tonumber(redis.call('HGET', KEYS[1], 's') or '0')
if s == 0 then
  nextSeq(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
elseif s < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 's', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
`)

// fillScript puts back into an agent's pops hash the calls a daemon's
// dispatcher says the agent holds and the hash lacks (or shows in another
// state): after Redis lost its data, or a failover lost the last writes.
// A call whose end was appended (z:, by a daemon ahead of this one) is
// left out.
// When it changed anything, it appends a resnapshot marker (field r) to
// the stream: readers send the agent's browsers a new snapshot, and a
// browser resuming across the marker gets one too.
//
// The marker is PUBLISHed on the agent's news channel as the agent's tag
// alone: readers watching the agent read its stream.
//
// KEYS: pops, meta, stream. ARGV: pops TTL ms, stream TTL ms, MAXLEN, the
// agent's news channel, the agent's tag, then per call: field name, card, answered-by
// ("" when ringing), transfer ("" when none), pop time.
var fillScript = redis.NewScript(epochLua + `
local changed = 0
local i = 6
while i + 4 <= #ARGV do
  local h = ARGV[i]
  if redis.call('HEXISTS', KEYS[1], 'z:' .. h) == 1 then
    -- another daemon appended the end of this call for the agent
  elseif redis.call('HEXISTS', KEYS[1], 'c:' .. h) == 0 then
    redis.call('HSET', KEYS[1], 'c:' .. h, ARGV[i + 1], 't:' .. h, ARGV[i + 4])
    if ARGV[i + 2] ~= '' then redis.call('HSET', KEYS[1], 'a:' .. h, ARGV[i + 2]) end
    if ARGV[i + 3] ~= '' then redis.call('HSET', KEYS[1], 'x:' .. h, ARGV[i + 3]) end
    changed = changed + 1
  elseif (ARGV[i + 2] ~= '') ~= (redis.call('HEXISTS', KEYS[1], 'a:' .. h) == 1) then
    if ARGV[i + 2] ~= '' then
      redis.call('HSET', KEYS[1], 'a:' .. h, ARGV[i + 2])
      redis.call('HDEL', KEYS[1], 'x:' .. h)
    else
      redis.call('HDEL', KEYS[1], 'a:' .. h)
    end
    changed = changed + 1
  end
  i = i + 5
end
if changed > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  local ns = nextSeq(KEYS[2], KEYS[3], 0, ARGV[2])
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], ns .. '-0', 'r', '1')
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
  redis.call('PUBLISH', ARGV[4], ARGV[5])
end
return changed
`)

var scripts = []*redis.Script{deliverScript, openScript, raiseScript, fillScript}
