/**
 * The Lua scripts of store-redis.ts. Keys, under the prefix P (ARGV carries it where a script builds keys
 * itself: a standalone Redis or one shard, not Redis Cluster):
 *
 *   P m:<to>      sorted set: member M = <bytes of from>:<from><fp>, score = seq (the delivery order)
 *   P f:<to>      hash: M -> "<createdMs>:<frame>"
 *   P exp         sorted set: member <bytes of to>:<to>M, score = createdMs (for the expiry sweep)
 *   P seq         counter: INCR gives every message a seq, increasing across the whole store
 *   P stat        hash {rows, bytes}: totals for the global quota
 *   P d:<window>  sorted set: member <bytes of sender>:<sender><fp>, score = ms * 1024 + (n mod 1024)
 *   P db:<window> counter: bytes charged to that window (64 + the member's bytes per entry)
 *   P dn:<window> counter: orders entries added within one millisecond
 *
 * Times come from the calling node's clock (ARGV), not Redis's, so every TTL is judged as by the local store.
 */

/**
 * Adds `member` to a de-duplication window (KEYS-like arguments: the window's sorted set, its byte
 * counter and its sequence counter) unless it is there unexpired; returns 1 when it was, and the
 * member's score as found (false: none). `score`, when not nil, is that score as read already in this
 * script (the window is not looked up again). Shared by {@link DEDUP_LUA} and {@link PUT_LUA}.
 */
const DEDUP_ADD = `
local function dedupAdd(kz, kb, kn, member, now, ttl, maxKeys, maxBytes, readOnly, score)
  local oldest = (now - ttl) * 1024 + 1023
  if score == nil then score = redis.call('ZSCORE', kz, member) end
  local there = score and tonumber(score) > oldest
  if readOnly or there then return there and 1 or 0, score end
  local function charge(m) return 64 + #m end
  local function drop(m)
    if redis.call('ZREM', kz, m) == 1 then redis.call('DECRBY', kb, charge(m)) end
  end
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', kz, '-inf', oldest, 'LIMIT', 0, 1000)) do drop(m) end
  -- An expired entry of this very key (beyond the batch above) leaves before it is added again.
  if score then drop(member) end
  local n = redis.call('INCR', kn) % 1024
  redis.call('ZADD', kz, now * 1024 + n, member)
  local bytes = redis.call('INCRBY', kb, charge(member))
  while redis.call('ZCARD', kz) > maxKeys or (bytes > maxBytes and redis.call('ZCARD', kz) > 0) do
    local popped = redis.call('ZPOPMIN', kz, 1)
    bytes = redis.call('DECRBY', kb, charge(popped[1]))
  end
  return 0, score
end
`;

/**
 * The node holding `user`, when it is a live node other than `caller` (presence-redis-lua.ts layout:
 * P p:<user> names the node and its incarnation, P alive:<node> holds the live incarnation); else nil.
 * Shared by {@link PUT_LUA} and {@link REMOVE_LUA}, with `heard`.
 */
const LIVE_HOLDER = `
local function liveHolder(prefix, user, caller)
  local e = redis.call('HMGET', prefix .. 'p:' .. user, 'node', 'inc')
  if not e[1] or e[1] == caller or redis.call('GET', prefix .. 'alive:' .. e[1]) ~= e[2] then return nil end
  return e[1]
end
-- What a script adds to its answer for a PUBLISH (made with redis.pcall: a refused notification must not
-- fail the write around it, which is done and stays): 10 when a subscriber heard it, else 0.
local function heard(n)
  if type(n) == 'number' and n > 0 then return 10 end
  return 0
end
`;

/**
 * put. KEYS: m, f. ARGV, first those shared by most calls (redis-scripts.ts sends them once per batch):
 * 1-3 the keys exp, seq, stat; 4-6 the de-duplication window's d, db, dn; 7 maxRows, 8 maxBytes,
 * 9 maxPerReceiver (0: none), 10 prefix, 11 callerNode ('': no marking), 12 dirtyTtlMs, 13-15 the
 * window's ttlMs, max, maxBytes (13 '': no window); then the call's own: 16 member, 17 frame, 18 nowMs,
 * 19 expMember, 20 to, 21 unlessSeen ('1' or ''), 22 routeHead ('': none). Returns 1 stored, 0 already
 * stored (a retransmission; accepted even at a quota, as it adds nothing), -1 over the global rows/bytes
 * quota, -2 over the receiver's quota. When callerNode is given and a live node other than the caller
 * holds `to` ({@link LIVE_HOLDER}), `to` is added to that node's dirty set (P dirty:<node>,
 * routing-redis.ts) in the same step as the message: the holder replays it at its next recheck, whatever
 * happens to any notification. With a routeHead, the stored (or already stored) message is also
 * published to that node's channel (P node:<node>) as routeHead .. frame .. '}' (routed.ts), and 10 is
 * added to the answer when a subscriber heard it: the put is then the route too, one round trip fewer.
 * With a window, a message stored (or stored already) is also recorded in it, as {@link DEDUP_LUA}'s
 * 'add' with the member (sender and fp), in the same step. unlessSeen '1': a member already in that
 * window (unexpired) stops the put before anything: returns 2 ('seen').
 */
export const PUT_LUA = `${DEDUP_ADD}${LIVE_HOLDER}
local kExp, kSeq, kStat, kD, kDb, kDn = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local prefix, caller = ARGV[10], ARGV[11]
local member, frame, now, to = ARGV[16], ARGV[17], tonumber(ARGV[18]), ARGV[20]
local windowed = ARGV[13] ~= ''
local wTtl, wMax, wBytes = tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])
-- The window's score of this member, once looked up (nil: not yet).
local score = nil
local function remember()
  if windowed then dedupAdd(kD, kDb, kDn, member, now, wTtl, wMax, wBytes, false, score) end
end
-- Marks the receiver's node (see above); returns it, or nil.
local function markHolder()
  if caller == '' then return nil end
  local holder = liveHolder(prefix, to, caller)
  if not holder then return nil end
  local dirty = prefix .. 'dirty:' .. holder
  redis.call('SADD', dirty, to)
  redis.call('PEXPIRE', dirty, ARGV[12])
  return holder
end
-- With a routeHead, publishes the message to the marked node: 10 when heard. Called last, so a put that
-- failed on the way has published nothing.
local function route(holder)
  if not holder or ARGV[22] == '' then return 0 end
  return heard(redis.pcall('PUBLISH', prefix .. 'node:' .. holder, ARGV[22] .. frame .. '}'))
end
if ARGV[21] == '1' and windowed then
  local seen
  seen, score = dedupAdd(kD, kDb, kDn, member, now, wTtl, wMax, wBytes, true)
  if seen == 1 then return 2 end
end
if redis.call('HEXISTS', KEYS[2], member) == 1 then
  local holder = markHolder()
  remember()
  return route(holder)
end
local size = #frame
local stat = redis.call('HMGET', kStat, 'rows', 'bytes')
local rows, bytes = tonumber(stat[1] or '0'), tonumber(stat[2] or '0')
if rows + 1 > tonumber(ARGV[7]) or bytes + size > tonumber(ARGV[8]) then return -1 end
local per = tonumber(ARGV[9])
if per > 0 and redis.call('ZCARD', KEYS[1]) >= per then return -2 end
local seq = redis.call('INCR', kSeq)
redis.call('ZADD', KEYS[1], seq, member)
redis.call('HSET', KEYS[2], member, ARGV[18] .. ':' .. frame)
redis.call('ZADD', kExp, ARGV[18], ARGV[19])
redis.call('HINCRBY', kStat, 'rows', 1)
redis.call('HINCRBY', kStat, 'bytes', size)
local holder = markHolder()
remember()
return 1 + route(holder)
`;

/**
 * list. KEYS: m, f. ARGV: afterSeq, limit, cutoffMs. Up to `limit` messages with seq > afterSeq and
 * createdMs > cutoffMs, oldest first, as a flat array {seq, member, frame, ...}.
 */
export const LIST_LUA = `
local limit, cutoff = tonumber(ARGV[2]), tonumber(ARGV[3])
local out, offset = {}, 0
while #out < limit * 3 do
  local batch = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', offset, limit)
  if #batch == 0 then break end
  for i = 1, #batch, 2 do
    local v = redis.call('HGET', KEYS[2], batch[i])
    if v then
      local c = string.find(v, ':', 1, true)
      if tonumber(string.sub(v, 1, c - 1)) > cutoff and #out < limit * 3 then
        out[#out + 1] = batch[i + 1]
        out[#out + 1] = batch[i]
        out[#out + 1] = string.sub(v, c + 1)
      end
    end
  end
  offset = offset + #batch / 2
end
return out
`;

/**
 * remove. KEYS: m, f. ARGV: the keys exp and stat, prefix and callerNode ('': none) (shared by every
 * call), then member, expMember, sender, receipt ('': none). Returns 1 when the message was there, else 0;
 * with a receipt (routed.ts) and a callerNode, the receipt is then published to the node holding
 * `sender` when that is a live node other than the caller ({@link LIVE_HOLDER}), and 10 is added to the
 * answer when a subscriber heard it: the removal is then the receipt's route too. A removal that fails
 * publishes nothing (its caller routes the receipt itself).
 */
export const REMOVE_LUA = `${LIVE_HOLDER}
local removed = 0
local v = redis.call('HGET', KEYS[2], ARGV[5])
if v then
  local c = string.find(v, ':', 1, true)
  redis.call('HDEL', KEYS[2], ARGV[5])
  redis.call('ZREM', KEYS[1], ARGV[5])
  redis.call('ZREM', ARGV[1], ARGV[6])
  redis.call('HINCRBY', ARGV[2], 'rows', -1)
  redis.call('HINCRBY', ARGV[2], 'bytes', -(#v - c))
  removed = 1
end
-- Last: a removal that failed above (an error reply) has published nothing, and its caller's routed
-- receipt is the only one.
if ARGV[8] ~= '' and ARGV[4] ~= '' then
  local holder = liveHolder(ARGV[3], ARGV[7], ARGV[4])
  if holder then return removed + heard(redis.pcall('PUBLISH', ARGV[3] .. 'node:' .. holder, ARGV[8])) end
end
return removed
`;

/**
 * sweep. KEYS: exp, stat. ARGV: cutoffMs, batch, prefix. Removes up to `batch` messages stored at or
 * before cutoffMs; returns them as a flat array {to, member, frame, ...}.
 */
export const SWEEP_LUA = `
local prefix = ARGV[3]
local out = {}
for _, em in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))) do
  local c = string.find(em, ':', 1, true)
  local n = tonumber(string.sub(em, 1, c - 1))
  local to = string.sub(em, c + 1, c + n)
  local member = string.sub(em, c + n + 1)
  local f = prefix .. 'f:' .. to
  local v = redis.call('HGET', f, member)
  redis.call('ZREM', KEYS[1], em)
  if v then
    local c2 = string.find(v, ':', 1, true)
    redis.call('HDEL', f, member)
    redis.call('ZREM', prefix .. 'm:' .. to, member)
    redis.call('HINCRBY', KEYS[2], 'rows', -1)
    redis.call('HINCRBY', KEYS[2], 'bytes', -(#v - c2))
    out[#out + 1] = to
    out[#out + 1] = member
    out[#out + 1] = string.sub(v, c2 + 1)
  end
end
return out
`;

/**
 * A de-duplication window. KEYS: d:<window>, db:<window>, dn:<window>. ARGV: member, nowMs, ttlMs, max, maxBytes, mode.
 * mode 'seen': whether member is there and unexpired (reads only). 'add': records it unless there
 * (an entry's time is never moved). 'check': both in one step. Adding first drops up to 1000 expired
 * entries (at or over ttlMs old, as the local window), then evicts the oldest while over max or maxBytes.
 * Returns 1 when the member was there (unexpired), else 0.
 */
export const DEDUP_LUA = `${DEDUP_ADD}
local there = dedupAdd(KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6] == 'seen')
return there
`;
