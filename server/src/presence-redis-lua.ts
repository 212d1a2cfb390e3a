/**
 * The Lua scripts of presence-redis.ts. Keys, under the prefix P (ARGV carries it, so scripts build the
 * keys of other nodes themselves: a standalone Redis or one shard, not Redis Cluster):
 *
 *   P p:<user>      hash {node, session, flt, inc}: where the user is online (`inc`: the node process's incarnation)
 *   P nu:<node>     set of the users whose entry names <node>
 *   P alive:<node>  string <inc>, PX ttl: the node process is live while this holds its incarnation
 *   P nodes         set of the node ids that may hold entries (for list, count and garbage collection)
 *
 * An entry is valid only while `alive:<node>` holds the entry's `inc`: a node that stops refreshing loses
 * every user at once when its key expires, and a restarted process (a new `inc`) never revives the
 * entries of the one before it.
 */

/** Reads an entry of the user ARGV[1] and whether it is valid; shared head of claim and locate. */
const READ_ENTRY = `
local function validEntry(prefix, pk)
  local e = redis.call('HMGET', pk, 'node', 'session', 'flt', 'inc')
  if not e[1] then return nil end
  if redis.call('GET', prefix .. 'alive:' .. e[1]) ~= e[4] then return false, e end
  return e
end
`;

/**
 * claim. KEYS: p:<user>, nu:<node>, alive:<node>, nodes. ARGV: user, node, session, flt, claimedFlt, inc,
 * prefix, ttlMs. The v6.5 arbitration of presence-local's `arbitrate`, atomically: none held (or an
 * invalid entry, or this very session) takes; claimed <= 0 or newer replaces with a kick; equal replaces
 * silently; older is refused and changes nothing. A claim re-arms this node's `alive` key if it had
 * expired (the node is evidently live); another incarnation holding it is a node-id conflict.
 * The entry keeps the holder it replaced (pnode, psession, pflt, pinc), for {@link ABANDON_LUA}.
 * Returns {'take'} | {'reject'} | {'kick'|'silent', oldNode, oldSession, oldFlt} | {'conflict'}.
 */
export const CLAIM_LUA = `${READ_ENTRY}
local user, node, session, flt, claimed, inc, prefix, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7], ARGV[8]
local alive = redis.call('GET', KEYS[3])
if not alive then
  redis.call('SET', KEYS[3], inc, 'PX', ttl)
  redis.call('SADD', KEYS[4], node)
elseif alive ~= inc then
  return {'conflict'}
end
local old, stale = validEntry(prefix, KEYS[1])
local verdict = 'take'
if not old then
  if stale then redis.call('SREM', prefix .. 'nu:' .. stale[1], user) end
elseif not (old[1] == node and old[2] == session) then
  local oldFlt = tonumber(old[3])
  if claimed <= 0 or claimed > oldFlt then verdict = 'kick'
  elseif claimed == oldFlt then verdict = 'silent'
  else return {'reject'} end
  if old[1] ~= node then redis.call('SREM', prefix .. 'nu:' .. old[1], user) end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'node', node, 'session', session, 'flt', flt, 'inc', inc)
redis.call('SADD', KEYS[2], user)
if verdict == 'take' then return {'take'} end
redis.call('HSET', KEYS[1], 'pnode', old[1], 'psession', old[2], 'pflt', old[3], 'pinc', old[4])
return {verdict, old[1], old[2], old[3]}
`;

/**
 * abandon: undoes a claim whose answer never reached its login (it timed out, or the connection went
 * meanwhile). KEYS: p:<user>. ARGV: user, node, session, prefix, dirtyTtlMs. If the entry still names
 * (node, session): the holder it replaced holds the user again when that node is still live (and is
 * marked for a recheck there: messages stored meanwhile were marked for this node), otherwise the entry
 * is deleted. Returns 2 restored, 1 deleted, 0 the entry names another session (nothing changed).
 */
export const ABANDON_LUA = `
local user, node, session, prefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local e = redis.call('HMGET', KEYS[1], 'node', 'session', 'pnode', 'psession', 'pflt', 'pinc')
if e[1] ~= node or e[2] ~= session then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', prefix .. 'nu:' .. node, user)
if not e[3] or redis.call('GET', prefix .. 'alive:' .. e[3]) ~= e[6] then return 1 end
redis.call('HSET', KEYS[1], 'node', e[3], 'session', e[4], 'flt', e[5], 'inc', e[6])
redis.call('SADD', prefix .. 'nu:' .. e[3], user)
local dirty = prefix .. 'dirty:' .. e[3]
redis.call('SADD', dirty, user)
redis.call('PEXPIRE', dirty, ARGV[5])
return 2
`;

/**
 * release: compare and delete. KEYS: p:<user>. ARGV: user, node, session, prefix. Deletes the entry only
 * if it names (node, session); returns 1 when that entry was valid, 0 otherwise (an invalid one is
 * deleted too: it is garbage). An entry that names (node, session) as the holder it replaced forgets it,
 * so abandoning that claim never gives the user back to a session that is gone.
 */
export const RELEASE_LUA = `${READ_ENTRY}
local user, node, session, prefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local e, stale = validEntry(prefix, KEYS[1])
local held = e or stale
if held and (held[1] ~= node or held[2] ~= session) then
  local p = redis.call('HMGET', KEYS[1], 'pnode', 'psession')
  if p[1] == node and p[2] == session then redis.call('HDEL', KEYS[1], 'pnode', 'psession', 'pflt', 'pinc') end
end
if not held or held[1] ~= node or held[2] ~= session then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', prefix .. 'nu:' .. node, user)
if e then return 1 end
return 0
`;

/** locate. KEYS: p:<user>. ARGV: prefix. Returns {node, session, flt} of a valid entry, or nil. */
export const LOCATE_LUA = `${READ_ENTRY}
local e = validEntry(ARGV[1], KEYS[1])
if not e then return nil end
return {e[1], e[2], e[3]}
`;

/**
 * route (used by routing-redis.ts: one round trip where locate, then a MULTI of SADD, PEXPIRE and
 * PUBLISH took two). KEYS: p:<user>. ARGV: prefix, callerNode (the two shared by every call of a node,
 * redis-scripts.ts), payload, dirtyTtlMs ('0': no mark), user.
 * Returns nil without a valid entry; else {node, session, flt, receivers}: when another node holds the
 * user, the user is added to that node's dirty set (prefix dirty:<id>, unless dirtyTtlMs is '0') and
 * `payload` published to its channel (prefix node:<id>), receivers being what PUBLISH answered; when the
 * caller holds the user, nothing is written (-1).
 */
export const ROUTE_LUA = `${READ_ENTRY}
local prefix = ARGV[1]
local e = validEntry(prefix, KEYS[1])
if not e then return nil end
if e[1] == ARGV[2] then return {e[1], e[2], e[3], -1} end
if ARGV[4] ~= '0' then
  local dirty = prefix .. 'dirty:' .. e[1]
  redis.call('SADD', dirty, ARGV[5])
  redis.call('PEXPIRE', dirty, ARGV[4])
end
return {e[1], e[2], e[3], redis.call('PUBLISH', prefix .. 'node:' .. e[1], ARGV[3])}
`;

/**
 * live nodes (ARGV[2] = 'nodes') or count ('count'). KEYS: nodes. ARGV: prefix, mode. The ids of the
 * nodes whose `alive` key exists, or the number of their users (a user is in exactly one node's set: a
 * claim moves it). O(nodes): the users themselves are read with SSCAN, a batch at a time.
 */
export const LIST_LUA = `
local prefix, mode = ARGV[1], ARGV[2]
local out, n = {}, 0
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', prefix .. 'alive:' .. node) == 1 then
    if mode == 'count' then
      n = n + redis.call('SCARD', prefix .. 'nu:' .. node)
    else
      out[#out + 1] = node
    end
  end
end
if mode == 'count' then return n end
return out
`;

/**
 * refresh. KEYS: alive:<node>, nodes. ARGV: inc, ttlMs, prefix, node, gcBatch. Re-arms this node's
 * `alive` key, then collects garbage of dead nodes (no `alive` key): up to gcBatch of their users'
 * entries are deleted per call (only entries still naming that node), and a node with none left leaves
 * `nodes`. Returns {'ok'}, {'lapsed'} (the key had expired: other nodes saw this one dead meanwhile) or
 * {'conflict'} (another incarnation holds the key: two processes use one node id; nothing is changed).
 */
export const REFRESH_LUA = `
local inc, ttl, prefix, node, budget = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local cur = redis.call('GET', KEYS[1])
local status = 'ok'
if not cur then status = 'lapsed' elseif cur ~= inc then return {'conflict'} end
redis.call('SET', KEYS[1], inc, 'PX', ttl)
redis.call('SADD', KEYS[2], node)
for _, n in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if budget <= 0 then break end
  if redis.call('EXISTS', prefix .. 'alive:' .. n) == 0 then
    local set = prefix .. 'nu:' .. n
    local users = redis.call('SPOP', set, budget)
    for _, u in ipairs(users) do
      local pk = prefix .. 'p:' .. u
      if redis.call('HGET', pk, 'node') == n then redis.call('DEL', pk) end
    end
    budget = budget - #users
    if redis.call('SCARD', set) == 0 then redis.call('SREM', KEYS[2], n) end
  end
end
return {status}
`;

/**
 * start: a new incarnation of this node. KEYS: alive:<node>, nodes, nu:<node>. ARGV: inc, ttlMs, prefix,
 * node, batch, abandoned. Takes the `alive` key if it is free, already this incarnation's, or still holds
 * `abandoned` (an earlier incarnation the caller watched stop refreshing: a crashed process with the same
 * node id); otherwise returns -1 and changes nothing (another process took the id meanwhile). Then
 * deletes up to `batch` entries left by earlier incarnations; returns how many users were popped (call
 * again until 0).
 */
export const START_LUA = `
local inc, ttl, prefix, node, batch = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= inc and cur ~= ARGV[6] then return -1 end
redis.call('SET', KEYS[1], inc, 'PX', ttl)
redis.call('SADD', KEYS[2], node)
local users = redis.call('SPOP', KEYS[3], batch)
for _, u in ipairs(users) do
  local pk = prefix .. 'p:' .. u
  local e = redis.call('HMGET', pk, 'node', 'inc')
  if e[1] == node and e[2] ~= inc then redis.call('DEL', pk) end
end
return #users
`;

/** stop: this incarnation leaves. KEYS: alive:<node>. ARGV: inc. Deletes the key if it is still ours: every entry of this node is invalid at once. */
export const STOP_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
`;
