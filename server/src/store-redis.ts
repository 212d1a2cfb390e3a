import { ReplyError, type Redis } from 'ioredis';
import { countDown, countUp, FlatMap } from './flat-map';
import { createConsoleLogger, type Logger } from './logger';
import type { ExpiredMessage, StoredMessage, StoreHealth } from './offline-store';
import { closeOwned, lengthPrefixed, openTarget, splitPrefixed, whenReady, type RedisTarget } from './redis-client';
import { defineScripts, finite, mayHaveWrittenBeforeFailing, NotSentError, type RunScript } from './redis-scripts';
import type { DedupWindowName, MessageStore } from './store';
import { OfflineStoreError } from './store-error';
import { realClock, unref, type StoreClock } from './store-expiry';
import type { DedupBounds } from './store-local';
import { routedDataHead, routedReceipt } from './routed';
import { DEDUP_LUA, LIST_LUA, PUT_LUA, REMOVE_LUA, SWEEP_LUA } from './store-redis-lua';

/**
 * What a put's ACK promises. 'everysec': Redis's AOF with `appendfsync everysec`, so a crash of the Redis
 * host can lose up to about one second of ACKed messages (a crash of Redis's process alone loses none:
 * the writes are in the OS). 'always': every write is fsynced before Redis answers; the store refuses to
 * open unless Redis runs with `appendonly yes` and `appendfsync always`. (WAITAOF, which would let one
 * write wait for its own fsync, needs Redis 7.2; Debian bookworm ships 7.0.15.)
 */
export type RedisDurability = 'everysec' | 'always';

/** Options of {@link RedisMessageStore.open}. */
export interface RedisStoreOptions {
  /** An ioredis connection (left open by close) or a redis:// URL (opened and closed here). */
  redis: RedisTarget;
  /** Prefix of every key (default 'im:'). */
  keyPrefix?: string;
  /** Most messages stored in all; beyond it a put is refused with reason 'quota' (default 1000000). */
  maxRows?: number;
  /** Most bytes of stored frames (UTF-8) in all; beyond it 'quota' (default 1 GiB). */
  maxBytes?: number;
  /** Most messages stored per receiver, checked in the same atomic step as the put (reason 'full'; default none). */
  maxPerReceiver?: number;
  /** A message not ACKed this long after it was stored is never listed again, then swept (default 14 days). */
  ttlMs?: number;
  /** How often expired messages are removed (default 60000, or `ttlMs` when shorter). */
  sweepIntervalMs?: number;
  /** Expired messages removed per script call (default 500). */
  sweepBatch?: number;
  /** The two de-duplication windows' bounds (default 10 min, 100000 keys, 64 MiB each). */
  dedup?: { c2s?: DedupBounds; c2c?: DedupBounds };
  /** See {@link RedisDurability} (default 'everysec'). */
  durability?: RedisDurability;
  /** Longest wait for the connection at open (default 10000). */
  connectTimeoutMs?: number;
  clock?: StoreClock;
  logger?: Logger;
  /** Called with each batch of expired messages the sweep removed. */
  onExpired?(messages: ExpiredMessage[]): void;
  /**
   * A cluster node's store: each put also marks the receiver for a recheck by the node holding them,
   * if that is another live node (the presence and routing of presence-redis.ts and routing-redis.ts,
   * on the same prefix), atomically with the message; and {@link RedisMessageStore.putAndRoute} and
   * {@link RedisMessageStore.removeWithReceipt} publish to that node's channel. Default: neither.
   */
  markHolder?: { nodeId: string; dirtyTtlMs: number };
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** Puts whose outcome is unknown remembered at most (about 1 KB each at the longest ids and fp). */
const MAX_UNCERTAIN_PUTS = 10_000;
const DEFAULT_DEDUP: DedupBounds = { ttlMs: 10 * 60_000, max: 100_000, maxBytes: 64 * 1024 * 1024 };

/** The scripts; those of every message (put, remove, the windows) go to Redis in batches (redis-scripts.ts). */
const SCRIPTS = {
  imStorePut: [2, PUT_LUA, 'batched', 15],
  imStoreList: [2, LIST_LUA],
  imStoreRemove: [2, REMOVE_LUA, 'batched', 4],
  imStoreSweep: [2, SWEEP_LUA],
  imStoreDedup: [3, DEDUP_LUA, 'batched'],
} as const;

/**
 * {@link MessageStore} shared by every node through Redis (layout: store-redis-lua.ts). A put is one Lua
 * script (idempotent per (from, fp) and receiver, the quotas checked in the same step) and answers after
 * Redis applied it (durability: {@link RedisDurability}); any Redis failure refuses it with an
 * OfflineStoreError 'unavailable', so the sender gets an error, never an ACK. Messages expire by the
 * calling node's clock: never listed once `ttlMs` old, and removed by a background sweep every
 * `sweepIntervalMs` (Redis key TTLs cannot expire single hash fields before Redis 7.4). The
 * de-duplication windows are bounded sorted sets, so a flood of fingerprints cannot grow them.
 */
export class RedisMessageStore implements MessageStore {
  /**
   * Every script goes over one connection, whose answers come in the order the scripts were sent, and the
   * calls of one script are sent in the order made (redis-scripts.ts): see {@link MessageStore.settlesInOrder}.
   */
  readonly settlesInOrder = true;
  private readonly run: (name: keyof typeof SCRIPTS) => RunScript;
  private timer: unknown = null;
  private closed = false;
  private sweeping: Promise<void> | null = null;
  /** Puts sent whose answer never came (Redis may hold them), oldest first, at most MAX_UNCERTAIN_PUTS. */
  private readonly uncertain = new Set<string>();
  /**
   * Removals sent and not answered yet, by receiver and member: a listing answered meanwhile was run
   * before them (one connection, answers in order) and still shows those messages, which their receiver
   * has ACKed: {@link list} leaves them out rather than have them handed over again.
   */
  private readonly removing = new FlatMap<number>();
  /**
   * A cluster's plain puts (made without the route: the receiver had a session here, the push waits for
   * its outcome, or it came behind another plain put) sent and not answered yet, by receiver and sender,
   * until the turn after the answer. Such a put is routed by its caller once it answers, after any later
   * put has run: a later put of that sender's to that receiver, made meanwhile, must not publish itself
   * ({@link putAndRoute}), or it would reach the receiver first (the receiver moved to another node in
   * between). A put that was to publish itself is not counted: under steady traffic between two nodes
   * each message still takes one script. One that finds the receiver nowhere and is routed after its
   * answer may still be overtaken by a later one published to where the receiver has just logged in; that
   * receiver's login replay races the live messages as it always has.
   */
  private readonly putting = new FlatMap<number>();
  /** The put script's shared arguments (PUT_LUA's ARGV 1-15) with each window, and with none. */
  private readonly putShared: Record<DedupWindowName | 'none', Array<string | number>>;
  /** The removal script's shared arguments (REMOVE_LUA's ARGV 1-4: the keys exp and stat, the prefix, this node). */
  private readonly removeShared: [string, string, string, string];

  private constructor(
    private readonly client: Redis,
    private readonly owned: boolean,
    private readonly prefix: string,
    private readonly o: {
      maxRows: number; maxBytes: number; maxPerReceiver: number; ttlMs: number; sweepIntervalMs: number; sweepBatch: number;
      dedup: Record<DedupWindowName, DedupBounds>; clock: StoreClock; logger: Logger; onExpired?: (m: ExpiredMessage[]) => void;
      markHolder?: { nodeId: string; dirtyTtlMs: number };
    },
  ) {
    this.run = defineScripts(client, SCRIPTS);
    const shared = (window: DedupWindowName | 'none'): Array<string | number> => [
      `${prefix}exp`, `${prefix}seq`, `${prefix}stat`, ...this.windowKeys(window === 'none' ? 'c2c' : window),
      finite(o.maxRows), finite(o.maxBytes), o.maxPerReceiver, prefix, o.markHolder?.nodeId ?? '', o.markHolder?.dirtyTtlMs ?? 0,
      ...(window === 'none' ? ['', 0, 0] : [o.dedup[window].ttlMs, finite(o.dedup[window].max), finite(o.dedup[window].maxBytes)]),
    ];
    this.putShared = { c2s: shared('c2s'), c2c: shared('c2c'), none: shared('none') };
    this.removeShared = [`${prefix}exp`, `${prefix}stat`, prefix, o.markHolder?.nodeId ?? ''];
  }

  /** Connects, checks Redis's persistence against `durability` (and that it never evicts keys), and starts the expiry sweep. */
  static async open(options: RedisStoreOptions): Promise<RedisMessageStore> {
    const ttlMs = positive(options.ttlMs ?? 14 * DAY_MS, 'ttlMs');
    const durability = options.durability ?? 'everysec';
    if (durability !== 'everysec' && durability !== 'always') throw new TypeError(`durability must be "everysec" or "always", got ${JSON.stringify(durability)}`);
    const logger = options.logger ?? createConsoleLogger('info');
    const dedup = (b: DedupBounds | undefined, name: string): DedupBounds => ({
      ttlMs: positive((b ?? DEFAULT_DEDUP).ttlMs, `dedup.${name}.ttlMs`),
      max: positive((b ?? DEFAULT_DEDUP).max, `dedup.${name}.max`),
      maxBytes: positive((b ?? DEFAULT_DEDUP).maxBytes, `dedup.${name}.maxBytes`),
    });
    const o = {
      maxRows: positive(options.maxRows ?? 1_000_000, 'maxRows'),
      maxBytes: positive(options.maxBytes ?? 1024 ** 3, 'maxBytes'),
      maxPerReceiver: options.maxPerReceiver === undefined ? 0 : positive(options.maxPerReceiver, 'maxPerReceiver'),
      ttlMs,
      sweepIntervalMs: positive(options.sweepIntervalMs ?? Math.min(60_000, ttlMs), 'sweepIntervalMs'),
      sweepBatch: positive(options.sweepBatch ?? 500, 'sweepBatch'),
      dedup: { c2s: dedup(options.dedup?.c2s, 'c2s'), c2c: dedup(options.dedup?.c2c, 'c2c') },
      clock: options.clock ?? realClock,
      logger,
      onExpired: options.onExpired,
      markHolder: options.markHolder,
    };
    const { client, owned } = openTarget(options.redis, logger, 'store');
    try {
      await whenReady(client, options.connectTimeoutMs ?? 10_000, 'store');
      await checkPersistence(client, durability, logger);
    } catch (err) {
      await closeOwned(client, owned);
      throw err;
    }
    const store = new RedisMessageStore(client, owned, options.keyPrefix ?? 'im:', o);
    store.arm();
    return store;
  }

  /** Whether put checks a per-receiver limit itself (`maxPerReceiver` given): see {@link MessageStore.checksBoxLimit}. */
  get checksBoxLimit(): boolean {
    return this.o.maxPerReceiver > 0;
  }

  /**
   * See {@link MessageStore.put}; refuses with OfflineStoreError 'quota', 'full' or 'unavailable'. An
   * 'unavailable' says `mayHaveWritten` when the script went out and no answer came back (the connection
   * broke, the command timed out: Redis may have applied it) or when it failed part-way (a command in it
   * failed after the message was written: see `mayHaveWrittenBeforeFailing`), and for every later attempt
   * of that message until one succeeds, so its sender is never told "refused" for a message Redis holds.
   */
  async put(to: string, from: string, fp: string, frame: string, remember?: DedupWindowName): Promise<boolean> {
    return (await this.write(to, from, fp, frame, remember, false)) === 1;
  }

  /** See {@link MessageStore.putUnlessSeen}: the window is checked in the put's own script; refusals as {@link put}. */
  async putUnlessSeen(to: string, from: string, fp: string, frame: string, window: DedupWindowName): Promise<boolean | 'seen'> {
    const r = await this.write(to, from, fp, frame, window, true, '');
    return r === 2 ? 'seen' : r === 1;
  }

  /**
   * See {@link MessageStore.putAndRoute}: with `markHolder`, the put script also publishes the frame to
   * the live node holding `to` (not this one) as routing-redis.ts would, and answers 'routed' when that
   * node's subscriber heard it. Refusals as {@link put}.
   */
  async putAndRoute(to: string, from: string, fp: string, frame: string, remember: DedupWindowName | undefined, unlessSeen: boolean): Promise<boolean | 'seen' | 'routed'> {
    // Behind an earlier put of this sender's to this receiver, not answered yet: a plain put, which its
    // caller routes after the earlier one's route (see {@link putting}).
    // Under steady traffic between nodes none is counted: the key is not even built.
    const behind = this.putting.size > 0 && this.putting.has(lengthPrefixed(to) + lengthPrefixed(from));
    const r = await this.write(to, from, fp, frame, remember, unlessSeen, this.o.markHolder && !behind ? routedDataHead(to) : '');
    return r === 2 ? 'seen' : r >= 10 ? 'routed' : r === 1;
  }

  /** The put script: 1 stored, 0 stored already, 2 seen (with `unlessSeen`), plus 10 when routed; refusals thrown. */
  private async write(
    to: string, from: string, fp: string, frame: string, remember: DedupWindowName | undefined, unlessSeen: boolean, routeHead = '',
  ): Promise<number> {
    if (this.closed) throw new OfflineStoreError('unavailable', 'the offline store is closed');
    const member = lengthPrefixed(from) + fp;
    const id = lengthPrefixed(to) + member;
    const unsure = this.uncertain.has(id);
    const pair = routeHead === '' && this.o.markHolder ? lengthPrefixed(to) + lengthPrefixed(from) : null;
    if (pair !== null) countUp(this.putting, pair);
    let r: number;
    try {
      r = await this.writeOnce(to, id, member, frame, remember, unlessSeen, routeHead, unsure);
    } finally {
      // Once the caller has routed it: its route is made in the microtasks after the answer and sent at
      // the end of this turn, before any script made in a later turn.
      if (pair !== null) setImmediate(countDown, this.putting, pair);
    }
    if (r === -1) throw new OfflineStoreError('quota', `the offline store is full (${this.o.maxRows} messages or ${this.o.maxBytes} bytes)`);
    if (r === -2) throw new OfflineStoreError('full', `the offline box of "${to}" is full (${this.o.maxPerReceiver} messages)`);
    return r;
  }

  /** One run of the put script (see {@link write}); failures as OfflineStoreError. */
  private async writeOnce(
    to: string, id: string, member: string, frame: string, remember: DedupWindowName | undefined, unlessSeen: boolean, routeHead: string, unsure: boolean,
  ): Promise<number> {
    let r: number;
    try {
      // Not connected: the script cannot go out (ioredis refuses it at once, no offline queue).
      if (this.client.status !== 'ready') throw new Error(`Redis is not connected (${this.client.status})`);
      const sent = this.run('imStorePut')(
        this.key('m', to), this.key('f', to),
        ...this.putShared[remember ?? 'none'],
        member, frame, this.o.clock.now(), id, to, unlessSeen && remember ? '1' : '', routeHead,
      );
      r = (await sent.catch((err: unknown) => {
        // No answer came (Redis may have applied it), or the script failed part-way (its writes stay):
        // the message may be stored. Refused before it went out, or by Redis before any write: it is not.
        const unanswered = !(err instanceof ReplyError) && !(err instanceof NotSentError);
        if (unanswered || mayHaveWrittenBeforeFailing(err)) this.markUncertain(id);
        throw err;
      })) as number;
    } catch (err) {
      const mayHaveWritten = unsure || this.uncertain.has(id);
      throw new OfflineStoreError('unavailable', `the offline store (Redis) cannot write now${mayHaveWritten ? ' (it may have been written)' : ''}: ${(err as Error).message}`, { cause: err, mayHaveWritten });
    }
    this.uncertain.delete(id);
    return r;
  }

  /** Remembers a put whose answer never came; the oldest is forgotten past MAX_UNCERTAIN_PUTS. */
  private markUncertain(id: string): void {
    this.uncertain.delete(id);
    this.uncertain.add(id);
    if (this.uncertain.size > MAX_UNCERTAIN_PUTS) this.uncertain.delete(this.uncertain.values().next().value as string);
  }

  /**
   * See {@link MessageStore.list}. Messages whose removal was sent after the listing (their receiver
   * ACKed meanwhile) are left out, and as many more are listed after them: a short answer would tell a
   * replay that nothing is stored past them.
   */
  async list(to: string, afterSeq: number, limit: number): Promise<StoredMessage[]> {
    const rows: StoredMessage[] = [];
    const prefixedTo = lengthPrefixed(to);
    for (let after = afterSeq; rows.length < limit; ) {
      const want = limit - rows.length;
      const flat = (await this.run('imStoreList')(this.key('m', to), this.key('f', to), after, want, this.o.clock.now() - this.o.ttlMs)) as string[];
      let left = 0;
      for (let i = 0; i < flat.length; i += 3) {
        // A removal sent after this listing is not applied in it: left out.
        if (this.removing.size > 0 && this.removing.has(prefixedTo + flat[i + 1])) {
          left++;
          continue;
        }
        const [from, fp] = splitPrefixed(flat[i + 1]);
        rows.push({ seq: Number(flat[i]), from, fp, frame: flat[i + 2] });
      }
      // Fewer than asked for: nothing more is stored past them.
      if (left === 0 || flat.length < want * 3) break;
      after = Number(flat[flat.length - 3]);
    }
    return rows;
  }

  /** See {@link MessageStore.remove}. */
  async remove(to: string, from: string, fp: string): Promise<boolean> {
    return (await this.removeMember(to, from, fp, '')) % 10 === 1;
  }

  /**
   * See {@link MessageStore.removeWithReceipt}: with `markHolder`, the removal script also publishes the
   * receipt to the live node holding `from` (not this one), as routing-redis.ts would.
   */
  async removeWithReceipt(to: string, from: string, fp: string, atMs: number): Promise<{ removed: boolean; told: boolean }> {
    const r = await this.removeMember(to, from, fp, this.o.markHolder ? routedReceipt(from, to, fp, atMs) : '');
    return { removed: r % 10 === 1, told: r >= 10 };
  }

  /** The removal script: 1 removed, 0 not there, plus 10 when `receipt` was published. */
  private async removeMember(to: string, from: string, fp: string, receipt: string): Promise<number> {
    const member = lengthPrefixed(from) + fp;
    const id = lengthPrefixed(to) + member;
    countUp(this.removing, id);
    try {
      return (await this.run('imStoreRemove')(this.key('m', to), this.key('f', to), ...this.removeShared, member, id, from, receipt)) as number;
    } finally {
      countDown(this.removing, id);
    }
  }

  /** Messages stored for `to` (expired ones not yet swept included, as the SQLite store counts). */
  async count(to: string): Promise<number> {
    return this.client.zcard(this.key('m', to));
  }

  /** See {@link MessageStore.lastSeq}: the seq counter every put increments. */
  async lastSeq(): Promise<number> {
    return Number((await this.client.get(`${this.prefix}seq`)) ?? 0);
  }

  /** Messages stored in all. */
  async total(): Promise<number> {
    return Number((await this.client.hget(`${this.prefix}stat`, 'rows')) ?? 0);
  }

  /** Whether a put can reach Redis now (for /health and /ready). */
  health(): StoreHealth {
    if (this.closed) return { ok: false, reason: 'the offline store is closed' };
    return this.client.status === 'ready' ? { ok: true } : { ok: false, reason: `Redis is not connected (${this.client.status})` };
  }

  /** See {@link MessageStore.seen}. */
  async seen(window: DedupWindowName, sender: string, fp: string): Promise<boolean> {
    return (await this.dedup(window, sender, fp, 'seen')) === 1;
  }

  /** See {@link MessageStore.remember}. */
  async remember(window: DedupWindowName, sender: string, fp: string): Promise<void> {
    await this.dedup(window, sender, fp, 'add');
  }

  /** See {@link MessageStore.checkAndRemember}. */
  async checkAndRemember(window: DedupWindowName, sender: string, fp: string): Promise<boolean> {
    return (await this.dedup(window, sender, fp, 'check')) === 1;
  }

  /**
   * Removes expired messages now, in batches until none is left, reporting them to `onExpired`. Runs
   * every `sweepIntervalMs` on every node (the scripts are atomic, so nodes sweeping at once is harmless).
   */
  sweep(): Promise<void> {
    this.sweeping ??= this.sweepAll().finally(() => (this.sweeping = null));
    return this.sweeping;
  }

  /** Stops the sweep; closes a connection it opened. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.o.clock.clearTimeout(this.timer);
    this.timer = null;
    await this.sweeping?.catch(() => {});
    await closeOwned(this.client, this.owned);
  }

  private windowKeys(window: DedupWindowName): [string, string, string] {
    return [`${this.prefix}d:${window}`, `${this.prefix}db:${window}`, `${this.prefix}dn:${window}`];
  }

  private dedup(window: DedupWindowName, sender: string, fp: string, mode: 'seen' | 'add' | 'check'): Promise<unknown> {
    const b = this.o.dedup[window];
    return this.run('imStoreDedup')(
      ...this.windowKeys(window),
      lengthPrefixed(sender) + fp, this.o.clock.now(), b.ttlMs, finite(b.max), finite(b.maxBytes), mode,
    );
  }

  private async sweepAll(): Promise<void> {
    for (;;) {
      if (this.closed) return;
      const flat = (await this.run('imStoreSweep')(`${this.prefix}exp`, `${this.prefix}stat`, this.o.clock.now() - this.o.ttlMs, this.o.sweepBatch, this.prefix)) as string[];
      if (flat.length === 0) return;
      const expired: ExpiredMessage[] = [];
      for (let i = 0; i < flat.length; i += 3) expired.push({ to: flat[i], fp: splitPrefixed(flat[i + 1])[1], frame: flat[i + 2] });
      this.o.logger.info(`offline store: ${expired.length} messages expired unACKed after ${this.o.ttlMs} ms and were removed`);
      try {
        this.o.onExpired?.(expired);
      } catch (err) {
        this.o.logger.error('offline store: onExpired failed', err);
      }
      if (flat.length / 3 < this.o.sweepBatch) return;
    }
  }

  private arm(): void {
    this.timer = this.o.clock.setTimeout(() => {
      this.sweep().then(
        () => this.closed || this.arm(),
        (err: unknown) => {
          this.o.logger.error('offline store: removing expired messages from Redis failed', err);
          if (!this.closed) this.arm();
        },
      );
    }, this.o.sweepIntervalMs);
    unref(this.timer);
  }

  private key(kind: 'm' | 'f', to: string): string {
    return `${this.prefix}${kind}:${to}`;
  }
}

/** Checks Redis's settings: refuses a Redis that evicts keys, and 'always' unless the AOF gives it. */
async function checkPersistence(client: Redis, durability: RedisDurability, logger: Logger): Promise<void> {
  let appendonly: string | undefined;
  let fsync: string | undefined;
  let eviction: string | undefined;
  try {
    appendonly = ((await client.config('GET', 'appendonly')) as string[])[1];
    fsync = ((await client.config('GET', 'appendfsync')) as string[])[1];
    eviction = ((await client.config('GET', 'maxmemory-policy')) as string[])[1];
  } catch (err) {
    if (durability === 'always') throw new Error(`offline store: durability "always" needs CONFIG GET to check appendfsync, which Redis refused: ${(err as Error).message}`);
    logger.warn(`offline store: cannot read Redis's persistence settings (${(err as Error).message}); make sure it runs with appendonly yes`);
    return;
  }
  // An evicted message would be gone after its sender's ACK: a store that evicts is no store.
  if (eviction !== 'noeviction') {
    throw new Error(`offline store: Redis may evict keys under memory pressure (maxmemory-policy ${eviction}); stored messages would vanish after their ACK: set maxmemory-policy noeviction`);
  }
  if (durability === 'always' && (appendonly !== 'yes' || fsync !== 'always')) {
    throw new Error(`offline store: durability "always" needs Redis with appendonly yes and appendfsync always (it has appendonly ${appendonly}, appendfsync ${fsync})`);
  }
  if (appendonly !== 'yes') logger.warn('offline store: Redis runs without appendonly: a Redis restart loses every stored message since its last snapshot');
  else if (fsync !== 'always') logger.info(`offline store: Redis fsyncs its AOF ${fsync === 'everysec' ? 'every second' : `by policy "${fsync}"`}: a crash of the Redis host may lose the last ~1 s of ACKed messages`);
}

function positive(value: number, name: string): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) throw new RangeError(`${name} must be a positive number, got ${String(value)}`);
  return value;
}
