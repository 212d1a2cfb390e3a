import { randomUUID } from 'node:crypto';
import { createFrame, MsgType, SERVER_ID } from '../../src/protocol';
import { startAdminHttp } from './admin-http';
import { frameBytes, MAX_FP_LENGTH } from './bounds';
import type { ClusterNode } from './cluster';
import { ServerCore } from './core';
import { deliver, storedExpired, type DeliveryResult } from './deliver';
import type { Gateway } from './gateway';
import { startTcpGateway } from './gateway-tcp';
import { startUdpGateway } from './gateway-udp';
import { startWsGateway } from './gateway-ws';
import { watchDescriptors } from './fd-watch';
import type { MetricsSnapshot } from './metrics';
import { SqliteOfflineStore, type OfflineStore } from './offline-store';
import { resolveOptions, type ServerOptions } from './options';
import { createPrometheusExporter } from './prometheus';
import type { QosOutcome } from './qos-s2c';
import { isValidUserId } from './user-id';

/** Options of {@link IMServer.sendToUser}. */
export interface SendOptions {
  /** Ask for an ACK, retransmit, and store while the user is offline (default true). */
  qos?: boolean;
  /** Application sub-type (default -1). */
  typeu?: number;
  /** Fingerprint to use (default a random UUID). */
  fp?: string;
}

/**
 * How a push ended: `delivered` (the client ACKed), `stored` (kept durably and delivered on the user's
 * next login, unless it expires first: `messageTtlMs` after it was stored, then `onLost` hears of it),
 * `sent` (written without QoS), `dropped` (not QoS and the user is offline, or the offline hook refused
 * it), `lost` (no ACK and no store holds it), `full` (the user's offline box is full), `quota` (the whole
 * store is at its limit), `unavailable` (the store cannot write durably now), `busy` (the user is online
 * but too many messages wait for an ACK server-wide or for that user); these four send and store nothing.
 * `uncertain`: the cluster's Redis failed after the write went out, so it may hold the push; send it
 * again with the same fp (the store keeps one copy per fp, the SDK shows it once).
 */
export interface SendResult {
  fp: string | null;
  status: 'delivered' | 'stored' | 'sent' | 'dropped' | 'lost' | 'full' | 'quota' | 'unavailable' | 'uncertain' | 'busy';
}

/** The bound ports of the gateways that were started. */
export interface BoundPorts {
  ws?: number;
  tcp?: number;
  udp?: number;
  http?: number;
}

/** What `GET /health` answers: 503 when the store reports a fault. */
export interface HealthReport {
  status: 'ok' | 'degraded';
  node: string;
  uptimeMs: number;
  /** The store's own report, when it has a `health()` method. */
  store?: unknown;
  /** A cluster node's connections to Redis (they decide `/ready`, not this). */
  cluster?: unknown;
}

/** What `GET /ready` answers: 503 while the store is not writable or the server drains. */
export interface ReadinessReport {
  ready: boolean;
  node: string;
  draining: boolean;
  store?: unknown;
}

/** A running server, as returned by {@link createServer}. */
export interface IMServer {
  readonly ports: BoundPorts;
  /** This node's id (`nodeId`). */
  readonly nodeId: string;
  /** S2C push; with QoS it resolves once the client ACKs (or the message is stored for later). */
  sendToUser(userId: string, content: string, options?: SendOptions): Promise<SendResult>;
  /**
   * Kicks a user (type 54, then close) on whichever node holds the session; false when the user is not
   * online. Bad arguments throw at once.
   */
  kick(userId: string, code?: number, reason?: string): Promise<boolean>;
  /** User ids logged in to this process (this node of a cluster). */
  onlineUsers(): string[];
  /**
   * User ids online anywhere, at most `limit` (default all): every node of the cluster (in one process,
   * the same as {@link onlineUsers}).
   */
  allOnlineUsers(limit?: number): Promise<string[]>;
  /** Counters for the admin API. */
  metrics(): MetricsSnapshot;
  /** Every metric in the Prometheus text format. */
  prometheusMetrics(): Promise<string>;
  /** The content type of {@link IMServer.prometheusMetrics}. */
  readonly prometheusContentType: string;
  /** Liveness, with the store's health when it reports one. */
  health(): Promise<HealthReport>;
  /** Readiness: the store is writable and the server is not draining. */
  readiness(): Promise<ReadinessReport>;
  /**
   * Graceful stop: stops accepting, sends every client error 336 and closes it (WebSocket 1001), waits up
   * to `drainMs` for the connections to go and their pending store writes to finish, then {@link close}s.
   */
  shutdown(drainMs: number): Promise<void>;
  /** Stops every gateway, drops every connection and closes the store. */
  close(): Promise<void>;
}

/**
 * Starts the server: the gateways that are not disabled, the QoS daemon and the offline store.
 * @example
 * const server = await createServer({ ws: { port: 3000 }, tcp: false, udp: false, http: { port: 8080, adminToken } });
 * await server.sendToUser('u1', 'hello');
 */
export async function createServer(options: ServerOptions = {}): Promise<IMServer> {
  const opts = resolveOptions(options);
  let core: ServerCore | null = null;
  // Loaded only for a cluster: one process never loads the Redis client.
  const cluster = opts.cluster ? await (await import('./cluster')).openCluster(opts, opts.cluster) : null;
  const ownStore =
    opts.store || cluster
    ? null
    : new SqliteOfflineStore(opts.dataDir, {
        synchronous: opts.durability,
        maxRows: opts.maxStoredMessages,
        maxBytes: opts.maxStoredBytes,
        ttlMs: opts.messageTtlMs,
        holdMs: opts.storeHoldMs,
        logger: opts.logger,
        onExpired: (messages) => core && storedExpired(core.ctx, messages),
      });
  const store = cluster ? null : (opts.store ?? (ownStore as SqliteOfflineStore));
  core = new ServerCore(opts, store, cluster?.seams);
  cluster?.attach(core);
  const gateways: Gateway[] = [];
  const ports: BoundPorts = {};
  let offlinePending = 0;
  let closed = false;
  const logger = opts.logger;
  const fdWatch = watchDescriptors(logger);
  const exporter = createPrometheusExporter(
    core.metrics,
    {
      onlineUsers: () => core.onlineCount(),
      offlinePending: () => (ownStore && !closed ? ownStore.total() : null),
      qosPending: () => core.qos.size,
      storeWritesSpared: () => ownStore?.spared ?? null,
    },
    cluster ? { nodeId: opts.nodeId, onlineUsers: () => cluster.onlineCount(), storedMessages: () => cluster.storedTotal() } : null,
  );

  const server: IMServer = {
    ports,
    nodeId: opts.nodeId,
    async sendToUser(userId, content, o = {}) {
      if (closed) throw new Error('the server is closed');
      if (!isValidUserId(userId)) {
        throw new TypeError(`sendToUser needs a user id (not blank, "0" or "-1", at most 256 characters), got ${JSON.stringify(userId)}`);
      }
      if (typeof content !== 'string') throw new TypeError('sendToUser content must be a string');
      if (o.fp !== undefined && (typeof o.fp !== 'string' || o.fp === '')) {
        throw new TypeError(`sendToUser fp must be a non-empty string (omit it for a random UUID), got ${JSON.stringify(o.fp)}`);
      }
      // The client's ACK would carry it back, and an ACK with a longer fp is refused (error 320).
      if (o.fp !== undefined && o.fp.length > MAX_FP_LENGTH) throw new RangeError(`sendToUser fp is ${o.fp.length} characters; at most ${MAX_FP_LENGTH}`);
      if (o.typeu !== undefined && !Number.isInteger(o.typeu)) throw new TypeError(`sendToUser typeu must be an integer, got ${String(o.typeu)}`);
      const qos = o.qos !== false;
      const fp = qos ? (o.fp ?? randomUUID()) : (o.fp ?? null);
      const frame = createFrame({ type: MsgType.DATA, dataContent: content, from: SERVER_ID, to: userId, fp, QoS: qos, typeu: o.typeu ?? -1 });
      const size = frameBytes(frame);
      if (size > opts.maxMessageBytes) throw new RangeError(`sendToUser: the frame is ${size} bytes, over maxMessageBytes (${opts.maxMessageBytes})`);
      let settle: (outcome: QosOutcome) => void = () => undefined;
      const outcome = new Promise<QosOutcome>((resolve) => (settle = resolve));
      // Not asked to check a de-duplication window: never 'duplicate'.
      const result = (await deliver(core.ctx, frame, settle)) as Exclude<DeliveryResult, 'duplicate'>;
      if (result !== 'sent' || !qos) return { fp, status: result };
      const end = await outcome;
      if (end === 'delivered') return { fp, status: 'delivered' };
      return { fp, status: opts.hooks.onOffline ? 'lost' : 'stored' };
    },
    kick(userId, code = 2, reason) {
      if (!Number.isInteger(code)) throw new TypeError(`kick code must be an integer (2 = admin kick), got ${String(code)}`);
      return Promise.resolve(core.kick(userId, code, reason));
    },
    onlineUsers: () => core.onlineUsers(),
    allOnlineUsers: async (limit) => (cluster ? cluster.onlineUsers(limit) : core.onlineUsers().slice(0, limit ?? Number.POSITIVE_INFINITY)),
    prometheusMetrics: () => exporter.scrape(),
    prometheusContentType: exporter.contentType,
    async health() {
      // A cluster node's Redis trouble is shown, but is not this process's fault: restarting it (what a
      // failed liveness probe does) cannot help, so it makes the node not ready (/ready), not unhealthy.
      if (cluster) return { status: closed ? 'degraded' : 'ok', node: opts.nodeId, uptimeMs: core.metrics.uptimeMs(), cluster: cluster.health() };
      const h = await storeHealth(store);
      const ok = !closed && (h === null || h.ok);
      return { status: ok ? 'ok' : 'degraded', node: opts.nodeId, uptimeMs: core.metrics.uptimeMs(), ...(h ? { store: h.detail } : {}) };
    },
    async readiness() {
      const h = cluster ? clusterHealth(cluster) : await storeHealth(store);
      const ready = !closed && !core.draining && (h === null || h.ok);
      return { ready, node: opts.nodeId, draining: core.draining, ...(h ? { store: h.detail } : {}) };
    },
    async shutdown(drainMs) {
      if (!Number.isFinite(drainMs) || drainMs < 0) throw new RangeError(`shutdown drainMs must be 0 or more, got ${String(drainMs)}`);
      if (closed || core.draining) return;
      core.draining = true;
      const sessions = core.allSessions();
      logger.info('draining: clients are told to reconnect (error 336)', { sessions: sessions.length, drainMs });
      for (const g of gateways) g.stopAccepting?.();
      for (const s of sessions) core.goAway(s);
      let settled = false;
      void Promise.allSettled(sessions.map((s) => s.chain)).then(() => (settled = true));
      const deadline = Date.now() + drainMs;
      while ((!settled || core.allSessions().length > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
      const left = core.allSessions().length;
      if (left > 0 || !settled) logger.warn('drain time over: closing what is left', { sessions: left, pendingWrites: !settled });
      await server.close();
    },
    metrics: () => {
      if (ownStore && !closed) offlinePending = ownStore.total();
      // A cluster's count comes from Redis: the last one read, refreshed for the next call.
      if (cluster && !closed) cluster.storedTotal().then((n) => (offlinePending = n), () => undefined);
      return core.metrics.snapshot(core.onlineCount(), offlinePending);
    },
    async close() {
      if (closed) return;
      closed = true;
      fdWatch.stop();
      core.qos.stop();
      for (const s of core.allSessions()) core.io.closeSession(s);
      await Promise.all(gateways.map((g) => g.close()));
      for (const s of core.allSessions()) core.closed(s);
      ownStore?.close();
      await cluster?.close();
      logger.info('stopped');
    },
  };

  try {
    if (opts.ws) gateways.push(await startWsGateway(core, opts.ws).then((g) => ((ports.ws = g.port), g)));
    if (opts.tcp) gateways.push(await startTcpGateway(core, opts.tcp).then((g) => ((ports.tcp = g.port), g)));
    if (opts.udp) gateways.push(await startUdpGateway(core, opts.udp).then((g) => ((ports.udp = g.port), g)));
    if (opts.http) gateways.push(await startAdminHttp(server, opts.http, opts.logger).then((g) => ((ports.http = g.port), g)));
  } catch (err) {
    await server.close();
    throw err;
  }
  core.qos.start();
  logger.info('started', { ports });
  return server;
}

/** Pause between checks while draining. */
const DRAIN_POLL_MS = 25;
/** A store's `health()` slower than this counts as unhealthy. */
const HEALTH_TIMEOUT_MS = 1000;

/** A cluster node's health: its store's connection, and both routing connections. */
function clusterHealth(cluster: ClusterNode): { ok: boolean; detail: unknown } {
  const h = cluster.health();
  return { ok: h.ok, detail: h };
}

/**
 * The store's health when it has a `health()` method (sync or async): `false`, `{ok: false}` or
 * `{writable: false}`, a throw or no answer within a second count as unhealthy. null when it has none.
 */
async function storeHealth(store: OfflineStore | null): Promise<{ ok: boolean; detail: unknown } | null> {
  const fn = (store as { health?: () => unknown } | null)?.health;
  if (typeof fn !== 'function') return null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const h = await Promise.race([
      Promise.resolve(fn.call(store)),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${HEALTH_TIMEOUT_MS} ms`)), HEALTH_TIMEOUT_MS))),
    ]);
    const o = h && typeof h === 'object' ? (h as Record<string, unknown>) : null;
    const ok = h !== false && o?.ok !== false && o?.writable !== false && o?.healthy !== false;
    return { ok, detail: h };
  } catch (err) {
    return { ok: false, detail: { ok: false, error: (err as Error).message } };
  } finally {
    clearTimeout(timer);
  }
}
