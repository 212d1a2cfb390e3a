import type { Redis } from 'ioredis';
import { entryBytes, MAX_FP_LENGTH } from './bounds';
import type { Logger } from './logger';
import type { ReceiptBacklogLimits, ReceiptKeeper, WaitingReceipt } from './receipts';
import { defineScripts, finite, type RunScript } from './redis-scripts';

/**
 * Keys, under the prefix P (a standalone Redis or one shard, as the other seams):
 *
 *   P rc:<sender>  list of the receipts waiting for <sender>, oldest first: "<atMs>|<bytes>|<json [receiver, fp]>"
 *   P rcs          sorted set: sender -> atMs of its oldest waiting receipt (who gives way first)
 *   P rct          hash {n, b}: receipts and charged bytes waiting in all
 *
 * Every receipt is charged the bytes the local backlog charges (bounds.ts entryBytes), so the same
 * limits mean the same thing on one node and across a cluster.
 */

/** Drops the first receipt of `sender` (its list key `k`), keeping the totals and the order set right. */
const DROP_FIRST = `
local function dropFirst(prefix, sender)
  local k = prefix .. 'rc:' .. sender
  local e = redis.call('LPOP', k)
  if not e then redis.call('ZREM', prefix .. 'rcs', sender) return end
  local bytes = tonumber(string.match(e, '^%d+|(%d+)|'))
  redis.call('HINCRBY', prefix .. 'rct', 'n', -1)
  redis.call('HINCRBY', prefix .. 'rct', 'b', -bytes)
  local nxt = redis.call('LINDEX', k, 0)
  if nxt then redis.call('ZADD', prefix .. 'rcs', tonumber(string.match(nxt, '^(%d+)|')), sender)
  else redis.call('ZREM', prefix .. 'rcs', sender) end
end
`;

/**
 * add. ARGV: prefix, sender, entry, atMs, bytes, nowMs, maxPerSender, maxTotal, maxBytes, ttlMs. First
 * drops up to 100 receipts past the TTL (oldest first), then makes room: the sender's oldest past
 * maxPerSender, anyone's oldest past maxTotal or maxBytes. Returns the receipts dropped to make room.
 */
const ADD_LUA = `${DROP_FIRST}
local prefix, sender, entry = ARGV[1], ARGV[2], ARGV[3]
local at, bytes, now = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local maxPer, maxTotal, maxBytes, ttl = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local order, totals = prefix .. 'rcs', prefix .. 'rct'
for _ = 1, 100 do
  local oldest = redis.call('ZRANGE', order, 0, 0, 'WITHSCORES')
  if #oldest == 0 or now - tonumber(oldest[2]) < ttl then break end
  dropFirst(prefix, oldest[1])
end
local dropped = 0
local k = prefix .. 'rc:' .. sender
while redis.call('LLEN', k) >= maxPer do dropFirst(prefix, sender) dropped = dropped + 1 end
while true do
  local n = tonumber(redis.call('HGET', totals, 'n') or '0')
  local b = tonumber(redis.call('HGET', totals, 'b') or '0')
  if n < maxTotal and b + bytes <= maxBytes then break end
  local oldest = redis.call('ZRANGE', order, 0, 0)
  if #oldest == 0 then break end
  dropFirst(prefix, oldest[1])
  dropped = dropped + 1
end
if redis.call('RPUSH', k, entry) == 1 then redis.call('ZADD', order, at, sender) end
redis.call('HINCRBY', totals, 'n', 1)
redis.call('HINCRBY', totals, 'b', bytes)
return dropped
`;

/** take. ARGV: prefix, sender. Removes and returns every receipt waiting for the sender, oldest first. */
const TAKE_LUA = `
local prefix, sender = ARGV[1], ARGV[2]
local k = prefix .. 'rc:' .. sender
local all = redis.call('LRANGE', k, 0, -1)
if #all == 0 then return all end
local bytes = 0
for _, e in ipairs(all) do bytes = bytes + tonumber(string.match(e, '^%d+|(%d+)|')) end
redis.call('DEL', k)
redis.call('ZREM', prefix .. 'rcs', sender)
redis.call('HINCRBY', prefix .. 'rct', 'n', -#all)
redis.call('HINCRBY', prefix .. 'rct', 'b', -bytes)
return all
`;

const SCRIPTS = { imReceiptAdd: [0, ADD_LUA], imReceiptTake: [0, TAKE_LUA] } as const;

/**
 * The receipts waiting for offline senders, shared by every node through Redis (a cluster node's
 * {@link ReceiptKeeper}): a sender gets them at its next login whatever node it logs in at. Bounded as
 * the local backlog (per sender, in all, in bytes, by TTL), each add and take one script. Best effort like
 * every receipt: a Redis failure drops the receipt (logged), never the message.
 */
export class RedisReceipts implements ReceiptKeeper {
  private readonly run: (name: keyof typeof SCRIPTS) => RunScript;
  /** Receipts dropped because a bound was reached or Redis failed (this node's count). */
  dropped = 0;

  constructor(
    client: Redis,
    private readonly prefix: string,
    private readonly limits: ReceiptBacklogLimits,
    private readonly logger: Logger,
    private readonly clock: { now(): number } = Date,
  ) {
    this.run = defineScripts(client, SCRIPTS);
  }

  /** See {@link ReceiptKeeper.add}. */
  async add(sender: string, receiver: string, fp: string, atMs: number): Promise<boolean> {
    const bytes = entryBytes(sender, receiver, fp);
    if (fp.length > MAX_FP_LENGTH || bytes > this.limits.maxBytes) {
      this.dropped++;
      return false;
    }
    const l = this.limits;
    const entry = `${atMs}|${bytes}|${JSON.stringify([receiver, fp])}`;
    try {
      const displaced = (await this.run('imReceiptAdd')(this.prefix, sender, entry, atMs, bytes, this.clock.now(), l.maxPerSender, finite(l.maxTotal), finite(l.maxBytes), finite(l.ttlMs))) as number;
      this.dropped += displaced;
      return true;
    } catch (err) {
      this.dropped++;
      this.logger.warn(`the receipt of ${fp} for "${sender}" could not be kept (Redis); dropped`, { error: (err as Error).message });
      return false;
    }
  }

  /** See {@link ReceiptKeeper.take}; [] when Redis fails (logged). */
  async take(sender: string, nowMs: number): Promise<WaitingReceipt[]> {
    let all: string[];
    try {
      all = (await this.run('imReceiptTake')(this.prefix, sender)) as string[];
    } catch (err) {
      this.logger.warn(`the receipts waiting for "${sender}" could not be read (Redis); they wait for the next login`, { error: (err as Error).message });
      return [];
    }
    const out: WaitingReceipt[] = [];
    for (const e of all) {
      // "<atMs>|<bytes>|<json>"
      const first = e.indexOf('|');
      const bar = e.indexOf('|', first + 1);
      const atMs = Number(e.slice(0, first));
      if (nowMs - atMs >= this.limits.ttlMs) continue;
      const [receiver, fp] = JSON.parse(e.slice(bar + 1)) as [string, string];
      out.push({ receiver, fp, atMs });
    }
    return out;
  }
}
