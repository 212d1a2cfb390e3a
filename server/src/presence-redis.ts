import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createConsoleLogger, type Logger } from './logger';
import type { Presence, PresenceClaim, PresenceEntry } from './presence';
import { ABANDON_LUA, CLAIM_LUA, LIST_LUA, LOCATE_LUA, REFRESH_LUA, RELEASE_LUA, START_LUA, STOP_LUA } from './presence-redis-lua';
import { closeOwned, openTarget, whenReady, type RedisTarget } from './redis-client';
import { defineScripts, type RunScript } from './redis-scripts';
import { DEFAULT_DIRTY_TTL_MS } from './routing-redis';
import { realClock, unref, type StoreClock } from './store-expiry';

/** Why this node's registration was found broken by a refresh. */
export type PresenceLapse = 'lapsed' | 'conflict';

/** Options of {@link RedisPresence.open}. */
export interface RedisPresenceOptions {
  /** An ioredis connection (left open by close) or a redis:// URL (opened and closed here). */
  redis: RedisTarget;
  /** This node's id: the `node` of every entry it claims. */
  nodeId: string;
  /** Prefix of every key (default 'im:'). */
  keyPrefix?: string;
  /** How long this node's entries stay valid without a refresh (default 15000). */
  ttlMs?: number;
  /** How often the node refreshes them (default 5000; below `ttlMs`). */
  refreshMs?: number;
  /** Entries of dead nodes deleted per refresh at most (default 1000). */
  gcBatch?: number;
  /** Longest wait for the connection at open (default 10000). */
  connectTimeoutMs?: number;
  /**
   * Told when a refresh found this node's registration had expired (`lapsed`: other nodes took this
   * node's users for offline meanwhile, some entries may be gone) or is held by another process with the
   * same node id (`conflict`). The wiring should then re-check its local sessions against `locate`.
   */
  onLapse?(reason: PresenceLapse): void;
  clock?: Pick<StoreClock, 'setTimeout' | 'clearTimeout'>;
  logger?: Logger;
}

/** Releases that failed and are retried (one per ended session); beyond it the oldest is given up (its entry stays until the user logs in again). */
export const MAX_PENDING_RELEASES = 100_000;

/** The scripts, defined once per connection (ioredis runs them by EVALSHA, re-loading after a Redis restart). */
const SCRIPTS = {
  imPresenceClaim: [4, CLAIM_LUA],
  imPresenceRelease: [1, RELEASE_LUA],
  imPresenceAbandon: [1, ABANDON_LUA],
  imPresenceLocate: [1, LOCATE_LUA],
  imPresenceList: [1, LIST_LUA],
  imPresenceRefresh: [2, REFRESH_LUA],
  imPresenceStart: [3, START_LUA],
  imPresenceStop: [1, STOP_LUA],
} as const;

/**
 * {@link Presence} shared by every node through Redis. `claim` is one Lua script doing the v6.5
 * arbitration atomically; `release` is a compare-and-delete. Each node process holds a key
 * `alive:<node>` (value: a random incarnation, TTL `ttlMs`) that it re-arms every `refreshMs`; its users'
 * entries are valid only while that key holds their incarnation, so a dead node's users are offline
 * within `ttlMs`, with one write per refresh whatever the number of users. Each refresh also deletes
 * (in batches) the entries of dead nodes. Key layout: presence-redis-lua.ts.
 */
export class RedisPresence implements Presence {
  private readonly run: (name: keyof typeof SCRIPTS) => RunScript;
  private readonly prefix: string;
  private readonly inc = randomBytes(8).toString('hex');
  private timer: unknown = null;
  private closed = false;
  private failing = false;
  /**
   * Releases that failed (Redis down or slow), by session id: retried when the connection is ready again
   * and after each refresh, so a user who left during an outage does not stay online for the cluster.
   * A release is a compare-and-delete, so a late one never removes a newer login.
   */
  private readonly pendingReleases = new Map<number, { userId: string; abandon: boolean }>();
  private retrying = false;

  private constructor(
    private readonly client: Redis,
    private readonly owned: boolean,
    private readonly o: Required<Omit<RedisPresenceOptions, 'redis' | 'onLapse' | 'keyPrefix'>> & Pick<RedisPresenceOptions, 'onLapse'>,
    keyPrefix: string,
  ) {
    this.prefix = keyPrefix;
    this.run = defineScripts(client, SCRIPTS);
    client.on('ready', () => this.retryReleases());
  }

  /** Connects, removes what an earlier process with this node id left, and starts refreshing. */
  static async open(options: RedisPresenceOptions): Promise<RedisPresence> {
    if (typeof options.nodeId !== 'string' || options.nodeId === '') throw new TypeError('nodeId must be a non-empty string');
    const ttlMs = options.ttlMs ?? 15_000;
    const refreshMs = options.refreshMs ?? Math.min(5000, ttlMs / 3);
    if (!(ttlMs > 0)) throw new RangeError(`ttlMs must be a positive number, got ${String(ttlMs)}`);
    if (!(refreshMs > 0 && refreshMs < ttlMs)) throw new RangeError(`refreshMs must be positive and below ttlMs (${ttlMs}), got ${String(refreshMs)}`);
    const logger = options.logger ?? createConsoleLogger('info');
    const { client, owned } = openTarget(options.redis, logger, `presence ${options.nodeId}`);
    const p = new RedisPresence(
      client,
      owned,
      {
        nodeId: options.nodeId,
        ttlMs,
        refreshMs,
        gcBatch: options.gcBatch ?? 1000,
        connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
        onLapse: options.onLapse,
        clock: options.clock ?? realClock,
        logger,
      },
      options.keyPrefix ?? 'im:',
    );
    try {
      await whenReady(client, p.o.connectTimeoutMs, `presence ${options.nodeId}`);
      const abandoned = await p.abandonedIncarnation();
      const keys = [p.key('alive', p.o.nodeId), `${p.prefix}nodes`, p.key('nu', p.o.nodeId)];
      for (;;) {
        const popped = (await p.run('imPresenceStart')(...keys, p.inc, ttlMs, p.prefix, p.o.nodeId, p.o.gcBatch, abandoned)) as number;
        if (popped === -1) throw new Error(p.inUse('another process registered it while this one started'));
        if (popped === 0) break;
      }
    } catch (err) {
      await closeOwned(client, owned);
      throw err;
    }
    p.arm();
    return p;
  }

  /** See {@link Presence.claim}; `entry.node` must be this node. */
  async claim(userId: string, entry: PresenceEntry, claimedFirstLoginTime: number): Promise<PresenceClaim> {
    if (entry.node !== this.o.nodeId) throw new TypeError(`entry.node must be this node's id "${this.o.nodeId}", got "${entry.node}"`);
    const r = (await this.run('imPresenceClaim')(
      this.key('p', userId), this.key('nu', entry.node), this.key('alive', entry.node), `${this.prefix}nodes`,
      userId, entry.node, entry.session, entry.firstLoginTime, claimedFirstLoginTime, this.inc, this.prefix, this.o.ttlMs,
    )) as string[];
    switch (r[0]) {
      case 'take':
        return { kind: 'take' };
      case 'reject':
        return { kind: 'reject' };
      case 'kick':
      case 'silent':
        return { kind: 'replace', old: { node: r[1], session: Number(r[2]), firstLoginTime: Number(r[3]) }, kick: r[0] === 'kick' };
      default:
        throw new Error(`presence: node id "${this.o.nodeId}" is registered by another process; claim refused`);
    }
  }

  /**
   * See {@link Presence.release}. A release of this node's session that fails is kept and retried (see
   * `pendingReleases`) before the rejection reaches the caller.
   */
  async release(userId: string, node: string, session: number): Promise<boolean> {
    try {
      const released = await this.releaseNow(userId, node, session, false);
      if (node === this.o.nodeId) this.pendingReleases.delete(session);
      return released;
    } catch (err) {
      if (node === this.o.nodeId && !this.closed) this.keepRelease(userId, session, false);
      throw err;
    }
  }

  /**
   * See {@link Presence.abandon}: the entry this node's `session` claimed goes, and the holder it replaced
   * holds the user again if its node is live (marked for a recheck there). Retried like a release.
   */
  async abandon(userId: string, session: number): Promise<void> {
    try {
      await this.releaseNow(userId, this.o.nodeId, session, true);
      this.pendingReleases.delete(session);
    } catch (err) {
      if (!this.closed) this.keepRelease(userId, session, true);
      throw err;
    }
  }

  /** Releases that failed and wait for their retry. */
  get pendingReleaseCount(): number {
    return this.pendingReleases.size;
  }

  /** See {@link Presence.locate}. */
  async locate(userId: string): Promise<PresenceEntry | null> {
    const r = (await this.run('imPresenceLocate')(this.key('p', userId), this.prefix)) as string[] | null;
    return r ? { node: r[0], session: Number(r[1]), firstLoginTime: Number(r[2]) } : null;
  }

  /**
   * Users online on a live node, at most `limit`: read with SSCAN, 1000 at a time, so neither Redis (no
   * script walks every user) nor this process (no unbounded array) holds the whole presence at once.
   */
  async list(limit = Number.POSITIVE_INFINITY): Promise<string[]> {
    const users = new Set<string>();
    const nodes = (await this.run('imPresenceList')(`${this.prefix}nodes`, this.prefix, 'nodes')) as string[];
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, batch] = await this.client.sscan(this.key('nu', node), cursor, 'COUNT', 1000);
        for (const u of batch) {
          if (users.size >= limit) return [...users];
          users.add(u);
        }
        cursor = next;
      } while (cursor !== '0');
    }
    return [...users];
  }

  /** Number of users online on live nodes. */
  async count(): Promise<number> {
    return (await this.run('imPresenceList')(`${this.prefix}nodes`, this.prefix, 'count')) as number;
  }

  /**
   * Re-arms this node's registration now and collects a batch of dead nodes' garbage. Called every
   * `refreshMs` by a timer; rejects while Redis is unreachable.
   */
  async refresh(): Promise<void> {
    const r = (await this.run('imPresenceRefresh')(
      this.key('alive', this.o.nodeId), `${this.prefix}nodes`, this.inc, this.o.ttlMs, this.prefix, this.o.nodeId, this.o.gcBatch,
    )) as string[];
    if (r[0] === 'ok') return;
    const reason = r[0] as PresenceLapse;
    this.o.logger.error(
      reason === 'lapsed'
        ? `presence: node "${this.o.nodeId}" was not refreshed for ${this.o.ttlMs} ms; other nodes took its users for offline meanwhile`
        : `presence: node id "${this.o.nodeId}" is registered by another process; give each node its own id`,
    );
    try {
      this.o.onLapse?.(reason);
    } catch (err) {
      this.o.logger.error('presence: onLapse failed', err);
    }
  }

  /** Stops refreshing and withdraws this node's registration (its users are offline at once); closes a connection it opened. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.o.clock.clearTimeout(this.timer);
    this.timer = null;
    try {
      if (this.client.status === 'ready') await this.run('imPresenceStop')(this.key('alive', this.o.nodeId), this.inc);
    } catch {
      // Redis is down: the registration expires on its own within ttlMs.
    }
    await closeOwned(this.client, this.owned);
  }

  /**
   * The incarnation an earlier process with this node id left in Redis, once it is seen not to refresh
   * it ('' when there is none): a crashed process's key is taken over, while one whose remaining TTL grows
   * within `refreshMs` plus a second (it was re-armed) belongs to a live process, and this one refuses to
   * start rather than silently take that node's users (every node of a cluster refreshes at the same pace).
   */
  private async abandonedIncarnation(): Promise<string> {
    const key = this.key('alive', this.o.nodeId);
    const read = async (): Promise<[string | null, number]> => {
      const r = await this.client.multi().get(key).pttl(key).exec();
      return [(r?.[0]?.[1] as string | null) ?? null, Number(r?.[1]?.[1] ?? -2)];
    };
    let [held, ttl] = await read();
    if (held === null) return '';
    const stepMs = Math.max(20, Math.min(250, this.o.refreshMs / 4));
    const deadline = Date.now() + this.o.refreshMs + 1000;
    this.o.logger.warn(`presence: node id "${this.o.nodeId}" is registered in Redis; checking for up to ${this.o.refreshMs + 1000} ms that its process is gone`);
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, stepMs));
      const [now, left] = await read();
      if (now === null) return '';
      if (now !== held || left > ttl) throw new Error(this.inUse('its registration is being refreshed'));
      [held, ttl] = [now, left];
    }
    return held;
  }

  private inUse(why: string): string {
    return `presence: node id "${this.o.nodeId}" is in use by a live process (${why}); give each node its own id (nodeId, --node-id)`;
  }

  private async releaseNow(userId: string, node: string, session: number, abandon: boolean): Promise<boolean> {
    if (abandon) return (await this.run('imPresenceAbandon')(this.key('p', userId), userId, node, session, this.prefix, DEFAULT_DIRTY_TTL_MS)) !== 0;
    return (await this.run('imPresenceRelease')(this.key('p', userId), userId, node, session, this.prefix)) === 1;
  }

  private keepRelease(userId: string, session: number, abandon: boolean): void {
    const earlier = this.pendingReleases.get(session);
    this.pendingReleases.delete(session);
    this.pendingReleases.set(session, { userId, abandon: abandon || !!earlier?.abandon });
    if (this.pendingReleases.size <= MAX_PENDING_RELEASES) return;
    const [oldest, left] = this.pendingReleases.entries().next().value as [number, { userId: string }];
    this.pendingReleases.delete(oldest);
    this.o.logger.warn(`presence: more than ${MAX_PENDING_RELEASES} releases wait for Redis; "${left.userId}" (session ${oldest}) stays online for other nodes until they log in again`);
  }

  /**
   * Retries the failed releases, oldest first, until one fails again (Redis still unreachable). Runs on
   * reconnect and after each refresh; a cluster node also calls it when Redis answers again after a stall.
   */
  async retryReleases(): Promise<void> {
    if (this.retrying || this.closed || this.pendingReleases.size === 0) return;
    this.retrying = true;
    try {
      for (const [session, { userId, abandon }] of [...this.pendingReleases]) {
        if (this.closed) return;
        await this.releaseNow(userId, this.o.nodeId, session, abandon);
        this.pendingReleases.delete(session);
      }
      this.o.logger.info('presence: the releases that had failed are done');
    } catch {
      // Still unreachable: retried at the next refresh or reconnect.
    } finally {
      this.retrying = false;
    }
  }

  private key(kind: 'p' | 'nu' | 'alive', id: string): string {
    return `${this.prefix}${kind}:${id}`;
  }

  private arm(): void {
    if (this.closed) return;
    this.timer = this.o.clock.setTimeout(() => {
      this.refresh().then(
        () => {
          if (this.failing) this.o.logger.info(`presence: refreshing node "${this.o.nodeId}" works again`);
          this.failing = false;
          void this.retryReleases();
          this.arm();
        },
        (err: unknown) => {
          if (!this.failing) this.o.logger.error(`presence: refreshing node "${this.o.nodeId}" failed; its users go offline for other nodes after ${this.o.ttlMs} ms`, err);
          this.failing = true;
          this.arm();
        },
      );
    }, this.o.refreshMs);
    unref(this.timer);
  }
}
