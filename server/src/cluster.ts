// Loaded by server.ts through a dynamic import, only when `cluster` is configured: a single-process
// server never loads ioredis or any Redis code.

import type { Redis } from 'ioredis';
import type { ServerSeams } from './context';
import type { ServerCore } from './core';
import { storedExpired } from './deliver';
import { redactUrl, type ResolvedClusterOptions, type ResolvedOptions } from './options';
import { createSessionChecker, resumeReplays, retryPausedReplays, type SessionChecker } from './cluster-sessions';
import { RedisPresence } from './presence-redis';
import { RedisReceipts } from './receipts-redis';
import { createRedisClient, whenReady } from './redis-client';
import { watchStall } from './redis-scripts';
import { DEFAULT_DIRTY_TTL_MS, RedisRouting } from './routing-redis';
import { RedisMessageStore } from './store-redis';

/** What `/health` and `/ready` show of a cluster node. */
export interface ClusterHealth {
  ok: boolean;
  store: { ok: boolean; reason?: string };
  routing: { ok: boolean; reason?: string };
}

/** One node's share of a cluster: the Redis seams it runs with, and the cluster-wide views the admin API needs. */
export interface ClusterNode {
  /** The Redis presence, store and routing, for {@link ServerCore}'s constructor. */
  readonly seams: ServerSeams;
  /** Connects the node's callbacks (rechecks, lapses, expiries) to the core built with {@link seams}. */
  attach(core: ServerCore): void;
  /** Whether this node can store, route and hear the other nodes now. */
  health(): ClusterHealth;
  /** Users online on any live node, at most `limit`. */
  onlineUsers(limit?: number): Promise<string[]>;
  /** Number of users online on any live node. */
  onlineCount(): Promise<number>;
  /** Messages stored for the whole cluster. */
  storedTotal(): Promise<number>;
  /** Withdraws this node (its users are offline for the others at once) and closes its connections. */
  close(): Promise<void>;
}

/**
 * Opens this node's Redis seams: one command connection shared by the presence, the store and the
 * routing, plus the routing's subscriber. Fails (nothing left open) when Redis does not answer within
 * `connectTimeoutMs`, or its persistence does not match `durability`.
 *
 * What the node does on its own, besides the seams' timers (cluster-sessions.ts):
 * - a recheck (users other nodes marked for this node) carries on each such user's replay;
 * - when the presence finds this node's registration lapsed, or the subscriber reconnected (kicks
 *   published meanwhile are gone), every local session is checked against the presence: one that
 *   another login superseded is kicked (code 1), one whose entry vanished is claimed again, and each
 *   one kept carries on its replay; a slice of the sessions is checked so every 5 s (each within 60 s);
 * - when the command connection is back after an outage, every local user's replay is carried on, for
 *   a message stored just before a failed notification; a replay a failed read stalled is carried on
 *   every `recheckMs`;
 * - Redis is PINGed every 500 ms: a node whose Redis is stalled is not ready.
 */
export async function openCluster(opts: ResolvedOptions, c: ResolvedClusterOptions): Promise<ClusterNode> {
  const logger = opts.logger;
  const nodeId = opts.nodeId;
  const client = createRedisClient(c.redisUrl, logger, `cluster ${nodeId}`);
  let core: ServerCore | null = null;
  let presence: RedisPresence | null = null;
  let store: RedisMessageStore | null = null;
  let routing: RedisRouting | null = null;
  let checker: SessionChecker | null = null;
  let receipts: RedisReceipts | null = null;
  try {
    await whenReady(client, c.connectTimeoutMs, `cluster ${nodeId} (${redactUrl(c.redisUrl)})`);
    const common = { redis: client, keyPrefix: c.keyPrefix, connectTimeoutMs: c.connectTimeoutMs, logger };
    presence = await RedisPresence.open({ ...common, nodeId, ttlMs: c.presenceTtlMs, onLapse: () => checker?.all() });
    store = await RedisMessageStore.open({
      ...common,
      maxRows: opts.maxStoredMessages,
      maxBytes: opts.maxStoredBytes,
      maxPerReceiver: opts.maxOfflinePerUser,
      ttlMs: opts.messageTtlMs,
      dedup: { c2s: opts.dedup, c2c: opts.c2cDedup },
      durability: c.durability,
      onExpired: (messages) => core && storedExpired(core.ctx, messages),
      // A message for a user on another node is marked for that node's recheck with the put itself, so
      // its delivery never depends on a notification; the put (putAndRoute) and the removal at the ACK
      // (removeWithReceipt) also publish the frame and the receipt to the node concerned.
      markHolder: { nodeId, dirtyTtlMs: DEFAULT_DIRTY_TTL_MS },
    });
    routing = await RedisRouting.open({
      ...common,
      nodeId,
      recheckMs: c.recheckMs,
      // The store's put marks the receiver's node itself (markHolder above): the route need not again.
      storeMarksHolder: true,
      // A subscriber that hears nothing is found within two checks: 10 s at the default recheckMs.
      subscriberCheckMs: Math.max(1000, c.recheckMs * 5),
      outcomeTimeoutMs: opts.qos.resendAfterMs * (opts.qos.maxRetries + 1) + opts.qos.checkIntervalMs * 2 + 5000,
      onRecheck: (users) => core && resumeReplays(core, users.map((u) => core?.sessions.current(u))),
      // A receipt routed here for a sender who left meanwhile waits for them as if they had been offline.
      keepReceipt: (sender, receiver, fp, atMs) => receipts?.add(sender, receiver, fp, atMs),
      onResubscribed: () => checker?.all(),
    });
  } catch (err) {
    await Promise.allSettled([routing?.close(), store?.close(), presence?.close()]);
    client.disconnect();
    throw err;
  }
  // Receipts for offline senders wait in Redis too: a sender gets them at whatever node it logs in.
  receipts = new RedisReceipts(client, c.keyPrefix, opts.receipts, logger);
  const seams: ServerSeams = { presence, store, routing: (local) => (routing as RedisRouting).bindLocal(local), receipts };
  checker = createSessionChecker(() => core, presence, logger);
  // From the start: a Redis that restarted may have lost its last writes (its seq counter with them).
  afterOutage(client, () => core && resumeReplays(core, core.allSessions(), true));
  const latency = watchLatency(client, () => void (presence as RedisPresence).retryReleases());
  const healthy = (): boolean => client.status === 'ready' && latency.slow() === null;
  const stopRetrying = retryPausedReplays(healthy, c.recheckMs, () => core);
  const stopAudit = checker.startAudit(healthy);
  logger.info('cluster node started', { redis: redactUrl(c.redisUrl), keyPrefix: c.keyPrefix, durability: c.durability });
  const p = presence;
  const st = store;
  const r = routing;
  return {
    seams,
    attach(k) {
      core = k;
    },
    health() {
      const slow = latency.slow();
      const s = slow ?? st.health();
      const rt = r.health();
      return { ok: s.ok && rt.ok, store: s, routing: rt };
    },
    onlineUsers: (limit) => p.list(limit),
    onlineCount: () => p.count(),
    storedTotal: () => st.total(),
    async close() {
      core = null;
      stopRetrying();
      stopAudit();
      latency.stop();
      await Promise.allSettled([r.close(), st.close(), p.close()]);
      client.disconnect();
    },
  };
}

/** How often a node PINGs Redis to tell a connected but stalled Redis from a healthy one. */
export const REDIS_PROBE_MS = 500;
/** A PING unanswered this long (or failed) makes the node not ready: its senders would wait up to the command timeout. */
export const REDIS_SLOW_MS = 1000;

/**
 * Probes the command connection every {@link REDIS_PROBE_MS}: `slow()` is a store health saying why
 * while a PING is unanswered past {@link REDIS_SLOW_MS} or the last one failed, else null, and the
 * connection is marked stalled meanwhile (its scripts fail at once). A connection's status alone says
 * 'ready' while Redis is paused, busy in a script or swapping.
 */
function watchLatency(client: Redis, recovered: () => void): { slow(): { ok: false; reason: string } | null; stop(): void } {
  let sentMs = 0;
  let failed = false;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const slow = (): { ok: false; reason: string } | null => {
    if (failed) return { ok: false, reason: 'Redis did not answer the last PING in time' };
    if (sentMs !== 0 && Date.now() - sentMs > REDIS_SLOW_MS) return { ok: false, reason: `Redis has not answered a PING for ${Date.now() - sentMs} ms` };
    return null;
  };
  // While stalled, the seams' scripts fail at once (redis-client.ts watchStall) rather than each wait 2 s.
  watchStall(client, () => slow()?.reason ?? null);
  const ping = (): void => {
    if (sentMs !== 0 || client.status !== 'ready') return;
    const at = (sentMs = Date.now());
    client.ping().then(
      () => settled(true, at),
      () => settled(false, at),
    );
  };
  const settled = (ok: boolean, at: number): void => {
    const wasSlow = slow() !== null;
    sentMs = 0;
    failed = !ok;
    // Releases refused while stalled were not even sent: they go now rather than at the next refresh.
    if (ok && wasSlow) recovered();
    // A PING that timed out (not one refused at once): the next waits in line at once, so the end of
    // the stall is seen when it ends, not at the next probe.
    if (!ok && Date.now() - at >= REDIS_SLOW_MS) ping();
  };
  const probe = (): void => {
    ping();
    timer = setTimeout(probe, REDIS_PROBE_MS);
    timer.unref();
  };
  // A reconnect means Redis answered its ready check: not stalled, before any other 'ready' listener runs.
  client.prependListener('ready', () => {
    if (sentMs === 0) settled(true, Date.now());
  });
  probe();
  return {
    slow,
    stop() {
      if (timer) clearTimeout(timer);
      timer = null;
      watchStall(client, null);
    },
  };
}

/** Calls `fn` each time the connection is ready again after it was lost. */
function afterOutage(client: Redis, fn: () => void): void {
  let lost = false;
  client.on('close', () => (lost = true));
  client.on('ready', () => {
    if (!lost) return;
    lost = false;
    fn();
  });
}
