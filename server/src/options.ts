import { isIP } from 'node:net';
import { SenseMode, senseModeTimings } from '../../src/sense-mode';
import { authNotice, createAuthenticator, logAuthNotice, type AuthOptions, type Authenticator } from './auth';
import type { ServerHooks } from './hooks';
import type { Logger } from './logger';
import { createLogger, defaultNodeId } from './logger';
import type { OfflineStore } from './offline-store';
import type { QosOptions } from './qos-s2c';
import { resolveRateLimit, type RateLimitOptions, type ResolvedRateLimit } from './rate-limit';
import type { ReceiptBacklogLimits } from './receipts';
import { resolveTlsOptions, type ResolvedTlsOptions, type TlsOptions } from './tls';

/** Where a gateway listens. `port: 0` picks a free port; read the bound one from `server.ports`. */
export interface ListenOptions {
  port?: number;
  host?: string;
}

/** Options of {@link createServer}; every field is optional. A gateway set to false is not started. */
export interface ServerOptions {
  /**
   * WebSocket gateway (default port 3000, path `/websocket`, 65536-byte frames); a connection must finish
   * its HTTP upgrade within `handshakeTimeoutMs` (default 10000, as Netty) or it is dropped. `trustedProxies`
   * (default none): addresses of reverse proxies whose X-Forwarded-For / X-Real-IP name the client in logs
   * and for `maxUnauthenticatedPerAddress`; their connections that name no client (and every TCP
   * connection from them) are not counted by that cap.
   */
  ws?: (ListenOptions & { path?: string; maxPayloadBytes?: number; handshakeTimeoutMs?: number; trustedProxies?: readonly string[] }) | false;
  /** TCP gateway (default port 8901, bodies up to 6144 bytes). */
  tcp?: (ListenOptions & { maxBodyBytes?: number }) | false;
  /**
   * UDP gateway (default port 7901, datagrams up to 2048 bytes, at most 10000 peers, at most 1000 of them
   * from one source IP, at most 1000 datagrams a second in all to peers that have not logged in: source
   * addresses can be forged).
   */
  udp?:
    | (ListenOptions & { maxDatagramBytes?: number; maxSessions?: number; maxSessionsPerAddress?: number; unauthRepliesPerSecond?: number })
    | false;
  /**
   * Admin HTTP API (default port 8080 on 127.0.0.1, not the gateways' address); without `adminToken` every
   * route but `/health`, `/ready` and (on loopback) `/metrics` answers 403.
   */
  http?: (ListenOptions & AdminHttpLimits & { adminToken?: string; metricsPublic?: boolean }) | false;
  /** This node's id, in every log line and in `/health` (default host name and pid); unique among a cluster's nodes. */
  nodeId?: string;
  /**
   * Cluster mode: this process is one node of a cluster sharing users, messages and presence through
   * Redis (server/README.md, Cluster). Offline and in-flight messages then live in Redis instead of
   * SQLite (`dataDir`, `durability` and `store` do not apply).
   */
  cluster?: ClusterOptions;
  /** Sense mode that sets the idle expiry of connections (default MODE_15S: 20 s, MobileIMSDK's default). */
  senseMode?: number;
  /** Directory of the offline store's database; null or absent keeps it in memory. */
  dataDir?: string | null;
  /** SQLite `synchronous`: 'normal' survives a process crash, 'full' also a power loss. */
  durability?: 'normal' | 'full';
  /** A custom offline store instead of the SQLite one. */
  store?: OfflineStore;
  /** Most messages kept for one receiver; beyond it the sender gets error 319 and no ACK (default 10000). */
  maxOfflinePerUser?: number;
  /** Most messages the built-in store keeps in all; beyond it the sender gets error 324 and no ACK (default 1000000). */
  maxStoredMessages?: number;
  /** Most bytes of stored frames (UTF-8) the built-in store keeps in all; beyond it error 324, no ACK (default 1 GiB). */
  maxStoredBytes?: number;
  /**
   * A stored message not ACKed by its receiver within this time after it was stored expires: it is never
   * delivered again and is removed in the background; `onLost` hears of it (default 14 days).
   */
  messageTtlMs?: number;
  /**
   * The built-in store's hold: a QoS message to a receiver online here is written to the receiver while
   * its put waits up to this many milliseconds for the next commit, and one the receiver ACKs within it is
   * never written to disk. The sender's ACK still follows the commit or the receiver's ACK, so it comes
   * at most this much later. 0 commits each put in the turn it is made (default 10).
   */
  storeHoldMs?: number;
  /** Stored messages in flight at once while a user's backlog is handed over after login (default 100). */
  replayWindow?: number;
  /** A connection must log in within this time (default 15000). */
  loginTimeoutMs?: number;
  /**
   * WebSocket and TCP connections one source IP may hold open without having logged in, counted across both
   * gateways (default 64; 0 = no cap). Beyond it a new connection is refused at once: WebSocket with HTTP 429
   * before the upgrade, TCP closed at accept. Behind a `ws.trustedProxies` proxy the forwarded client address
   * counts, and a connection naming no client is not counted. A connection stops counting once it logs in.
   */
  maxUnauthenticatedPerAddress?: number;
  /**
   * How long an awaited hook (`beforeC2S`, `beforeC2C`, `onOffline`) may take before the server gives up
   * on it (a before hook: error 318, no ACK; `onOffline`: not stored) and moves on (default 10000).
   */
  hookTimeoutMs?: number;
  /**
   * Per-connection frame rate limits; false disables them. Frames a connection originates (data, echo,
   * login, logout): burst 200, 100/s, then error 315. ACKs of QoS frames the server wrote to it: free.
   * Keep-alives and ACKs beyond those: burst 100, 10/s (`controlBurst`, `controlPerSecond`), then error 332.
   */
  rateLimit?: RateLimitOptions | false;
  /**
   * Server QoS daemon timings (default 5000 / 2000 / 1, as MobileIMSDK) and its bounds: at most
   * `maxEntries` (default 100000) messages and `maxBytes` (default 32 MiB) waiting for an ACK server-wide;
   * a message to an online receiver beyond them is refused with error 321.
   */
  qos?: Partial<QosOptions>;
  /** C2S de-duplication window (default 10 minutes, 100000 entries, 16 MiB). */
  dedup?: { ttlMs?: number; max?: number; maxBytes?: number };
  /** C2C de-duplication window of (sender, fp) (default 10 minutes, 100000 entries, 16 MiB). */
  c2cDedup?: { ttlMs?: number; max?: number; maxBytes?: number };
  /** Characters of frames one connection may have waiting behind slow hooks before error 322 closes it (default 1 MiB). */
  maxQueuedBytes?: number;
  /**
   * Device receipts kept for senders who are offline when their receiver's device ACKs (default 1000 per
   * sender, 100000 in all, 16 MiB, 7 days); beyond a bound the oldest give way (the sender's own past its
   * cap, anyone's past the totals).
   */
  receipts?: Partial<ReceiptBacklogLimits>;
  /** Bytes a connection may have queued for writing before it is dropped as a slow consumer (default 4 MiB). */
  maxBufferedBytes?: number;
  /**
   * Largest data frame (encoded, in bytes) the server relays, stores or pushes: larger ones are refused
   * with error 311. Default: the TCP body limit when the TCP gateway runs (a TCP client cannot read a
   * larger frame, and a stored one would be replayed at every login), otherwise the WebSocket payload
   * limit. MobileIMSDK's Java UDP clients read at most 1024 bytes.
   */
  maxMessageBytes?: number;
  /**
   * How logins are authenticated (see {@link AuthOptions}); it runs before `hooks.verifyLogin`. Absent,
   * with no `verifyLogin` hook either, every login is accepted and the server warns at start.
   */
  auth?: AuthOptions;
  /**
   * TLS for the WebSocket gateway (then `wss://`) and the TCP gateway, from PEM file paths; reloaded on
   * SIGHUP and when the files change. UDP stays plain. Absent: both serve plain text.
   */
  tls?: TlsOptions | null;
  hooks?: ServerHooks;
  logger?: Logger;
}

/** Bounds of the admin API's connections: its port must never hold what the gateways need. */
export interface AdminHttpLimits {
  /** Connections open at once; more are closed at accept (default 64). */
  maxConnections?: number;
  /** A request's headers must arrive within this time (default 5000). */
  headersTimeoutMs?: number;
  /** A whole request, body included, must arrive within this time (default 10000). */
  requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this time (default 5000). */
  keepAliveTimeoutMs?: number;
  /** Largest request body read (default 65536). */
  maxBodyBytes?: number;
}

/** The admin API's options with every default filled in. */
export interface ResolvedAdminHttp extends Required<AdminHttpLimits> {
  port: number;
  host: string;
  adminToken: string | null;
  /** `/metrics` without the token even when not bound to loopback. */
  metricsPublic: boolean;
}

/** Options of the cluster mode ({@link ServerOptions.cluster}). */
export interface ClusterOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS) of the Redis every node shares. */
  redisUrl: string;
  /** Prefix of every Redis key and channel, so several clusters can share one Redis (default 'im:'). */
  keyPrefix?: string;
  /**
   * What an ACK promises (see server/README.md, Cluster): 'everysec' (default) needs Redis's AOF on;
   * 'always' also needs `appendfsync always`, checked at start.
   */
  durability?: 'everysec' | 'always';
  /** How long a node's users stay online for the others after it stops refreshing (default 15000). */
  presenceTtlMs?: number;
  /** How often a node re-checks the store for its users that other nodes marked (default 1000). */
  recheckMs?: number;
  /** Longest wait for Redis at start (default 10000). */
  connectTimeoutMs?: number;
}

/** {@link ClusterOptions} with every default filled in. */
export type ResolvedClusterOptions = Required<ClusterOptions>;

/** {@link ServerOptions} with every default filled in. */
export interface ResolvedOptions {
  ws: { port: number; host?: string; path: string; maxPayloadBytes: number; handshakeTimeoutMs: number; trustedProxies?: readonly string[] } | false;
  tcp: { port: number; host?: string; maxBodyBytes: number } | false;
  udp:
    | { port: number; host?: string; maxDatagramBytes: number; maxSessions: number; maxSessionsPerAddress: number; unauthRepliesPerSecond: number }
    | false;
  http: ResolvedAdminHttp | false;
  nodeId: string;
  cluster: ResolvedClusterOptions | null;
  expiryMs: number;
  udpExpiryMs: number;
  dataDir: string | null;
  durability: 'normal' | 'full';
  store: OfflineStore | null;
  maxOfflinePerUser: number;
  maxStoredMessages: number;
  maxStoredBytes: number;
  messageTtlMs: number;
  storeHoldMs: number;
  replayWindow: number;
  loginTimeoutMs: number;
  maxUnauthenticatedPerAddress: number;
  hookTimeoutMs: number;
  rateLimit: ResolvedRateLimit | null;
  qos: QosOptions;
  dedup: { ttlMs: number; max: number; maxBytes: number };
  c2cDedup: { ttlMs: number; max: number; maxBytes: number };
  maxQueuedBytes: number;
  receipts: ReceiptBacklogLimits;
  maxBufferedBytes: number;
  maxMessageBytes: number;
  /** The login verifier, or null when none is configured. */
  auth: Authenticator | null;
  tls: ResolvedTlsOptions | null;
  hooks: ServerHooks;
  logger: Logger;
}

/** Fills in defaults and validates (throws TypeError/RangeError naming the bad option), then logs how logins are authenticated. */
export function resolveOptions(o: ServerOptions = {}): ResolvedOptions {
  const timings = senseModeTimings(o.senseMode ?? SenseMode.MODE_15S);
  const ws =
    o.ws === false ? false : { path: '/websocket', maxPayloadBytes: 65536, handshakeTimeoutMs: 10000, ...o.ws, port: port(o.ws?.port, 3000, 'ws.port') };
  if (ws && !ws.path.startsWith('/')) throw new TypeError(`ws.path must start with "/", got ${JSON.stringify(ws.path)}`);
  if (ws && ws.trustedProxies !== undefined && (!Array.isArray(ws.trustedProxies) || !ws.trustedProxies.every((a) => typeof a === 'string' && isIP(a) !== 0))) {
    throw new TypeError(`ws.trustedProxies must be an array of IP addresses such as ["127.0.0.1"], got ${JSON.stringify(ws.trustedProxies)}`);
  }
  if (ws) positive(ws.handshakeTimeoutMs, 'ws.handshakeTimeoutMs');
  const tcp = o.tcp === false ? false : { maxBodyBytes: 6144, ...o.tcp, port: port(o.tcp?.port, 8901, 'tcp.port') };
  const udp =
    o.udp === false
      ? false
      : {
          maxDatagramBytes: 2048,
          maxSessions: 10000,
          maxSessionsPerAddress: 1000,
          unauthRepliesPerSecond: 1000,
          ...o.udp,
          port: port(o.udp?.port, 7901, 'udp.port'),
        };
  if (udp) {
    positive(udp.unauthRepliesPerSecond, 'udp.unauthRepliesPerSecond');
    positiveInt(udp.maxSessions, 'udp.maxSessions');
    positiveInt(udp.maxSessionsPerAddress, 'udp.maxSessionsPerAddress');
  }
  const http = o.http === false ? false : resolveAdminHttp(o.http ?? {});
  const qos: QosOptions = { checkIntervalMs: 5000, resendAfterMs: 2000, maxRetries: 1, maxEntries: 100000, maxBytes: 32 * MIB, maxEntriesPerReceiver: 1000, maxBytesPerReceiver: MIB, ...o.qos };
  positive(qos.checkIntervalMs, 'qos.checkIntervalMs');
  positive(qos.maxEntries, 'qos.maxEntries');
  positive(qos.maxBytes, 'qos.maxBytes');
  positive(qos.maxEntriesPerReceiver, 'qos.maxEntriesPerReceiver');
  positive(qos.maxBytesPerReceiver, 'qos.maxBytesPerReceiver');
  if (!Number.isFinite(qos.resendAfterMs) || qos.resendAfterMs < 0) throw new RangeError(`qos.resendAfterMs must be 0 or more, got ${String(qos.resendAfterMs)}`);
  if (!Number.isInteger(qos.maxRetries) || qos.maxRetries < 0) throw new RangeError(`qos.maxRetries must be a whole number 0 or more, got ${String(qos.maxRetries)}`);
  const rateLimit = o.rateLimit === false ? null : resolveRateLimit({ burst: 200, perSecond: 100, ...o.rateLimit });
  if (rateLimit) {
    positive(rateLimit.burst, 'rateLimit.burst');
    positive(rateLimit.perSecond, 'rateLimit.perSecond');
    positive(rateLimit.controlBurst, 'rateLimit.controlBurst');
    positive(rateLimit.controlPerSecond, 'rateLimit.controlPerSecond');
  }
  if (o.dataDir != null && (typeof o.dataDir !== 'string' || o.dataDir === '')) {
    throw new TypeError(`dataDir must be a directory path (or null for an in-memory store), got ${JSON.stringify(o.dataDir)}`);
  }
  if (o.durability !== undefined && o.durability !== 'normal' && o.durability !== 'full') {
    throw new TypeError(`durability must be "normal" or "full", got ${JSON.stringify(o.durability)}`);
  }
  const dedup = dedupOptions(o.dedup, 'dedup');
  const c2cDedup = dedupOptions(o.c2cDedup, 'c2cDedup');
  const receipts: ReceiptBacklogLimits = { maxPerSender: 1000, maxTotal: 100000, maxBytes: 16 * 1024 * 1024, ttlMs: 7 * 24 * 3600 * 1000, ...o.receipts };
  for (const key of ['maxPerSender', 'maxTotal', 'maxBytes', 'ttlMs'] as const) positive(receipts[key], `receipts.${key}`);
  const auth = createAuthenticator(o.auth);
  const hooks = o.hooks ?? {};
  const logger = o.logger ?? createLogger({ level: 'info', nodeId: o.nodeId });
  logAuthNotice(logger, authNotice(o.auth, auth, typeof hooks.verifyLogin === 'function'));
  return {
    ws,
    tcp,
    udp,
    http,
    nodeId: nodeId(o.nodeId),
    cluster: resolveCluster(o),
    expiryMs: timings.serverExpiryMs,
    udpExpiryMs: timings.udpServerExpiryMs ?? timings.serverExpiryMs,
    dataDir: o.dataDir ?? null,
    durability: o.durability ?? 'normal',
    store: o.store ?? null,
    maxOfflinePerUser: positive(o.maxOfflinePerUser ?? 10000, 'maxOfflinePerUser'),
    maxStoredMessages: positive(o.maxStoredMessages ?? 1_000_000, 'maxStoredMessages'),
    maxStoredBytes: positive(o.maxStoredBytes ?? 1024 ** 3, 'maxStoredBytes'),
    messageTtlMs: positive(o.messageTtlMs ?? 14 * 24 * 60 * 60 * 1000, 'messageTtlMs'),
    storeHoldMs: atMost(nonNegativeInt(o.storeHoldMs ?? 10, 'storeHoldMs'), 1000, 'storeHoldMs'),
    replayWindow: positive(o.replayWindow ?? 100, 'replayWindow'),
    loginTimeoutMs: positive(o.loginTimeoutMs ?? 15000, 'loginTimeoutMs'),
    maxUnauthenticatedPerAddress: nonNegativeInt(o.maxUnauthenticatedPerAddress ?? 64, 'maxUnauthenticatedPerAddress'),
    hookTimeoutMs: positive(o.hookTimeoutMs ?? 10000, 'hookTimeoutMs'),
    rateLimit,
    qos,
    dedup,
    receipts,
    c2cDedup,
    maxQueuedBytes: positive(o.maxQueuedBytes ?? MIB, 'maxQueuedBytes'),
    maxBufferedBytes: positive(o.maxBufferedBytes ?? 4 * 1024 * 1024, 'maxBufferedBytes'),
    maxMessageBytes: positive(o.maxMessageBytes ?? (tcp ? tcp.maxBodyBytes : ws ? ws.maxPayloadBytes : 65536), 'maxMessageBytes'),
    tls: resolveTlsOptions(o.tls),
    auth,
    hooks,
    logger,
  };
}

/** A Redis URL without its password, for logs and banners. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

/** Validates the cluster options; null when there is no cluster. */
function resolveCluster(o: ServerOptions): ResolvedClusterOptions | null {
  const c = o.cluster;
  if (c === undefined || c === null) return null;
  if (typeof c !== 'object') throw new TypeError(`cluster must be an object such as { redisUrl: "redis://127.0.0.1:6379" }, got ${typeof c}`);
  if (typeof c.redisUrl !== 'string' || !/^rediss?:\/\/[^/]/.test(c.redisUrl)) {
    throw new TypeError(`cluster.redisUrl must be a redis:// or rediss:// URL, got ${JSON.stringify(c.redisUrl)}`);
  }
  if (o.store) throw new TypeError('cluster and store cannot be combined: in a cluster the messages are stored in Redis');
  const keyPrefix = c.keyPrefix ?? 'im:';
  if (typeof keyPrefix !== 'string' || keyPrefix === '' || /[\s{}]/.test(keyPrefix)) {
    throw new TypeError(`cluster.keyPrefix must be a non-empty string without spaces or braces, got ${JSON.stringify(keyPrefix)}`);
  }
  const durability = c.durability ?? 'everysec';
  if (durability !== 'everysec' && durability !== 'always') throw new TypeError(`cluster.durability must be "everysec" or "always", got ${JSON.stringify(durability)}`);
  return {
    redisUrl: c.redisUrl,
    keyPrefix,
    durability,
    presenceTtlMs: positive(c.presenceTtlMs ?? 15000, 'cluster.presenceTtlMs'),
    recheckMs: positive(c.recheckMs ?? 1000, 'cluster.recheckMs'),
    connectTimeoutMs: positive(c.connectTimeoutMs ?? 10000, 'cluster.connectTimeoutMs'),
  };
}

/** The node id: given (a non-empty string of at most 128 characters) or host name and pid. */
function nodeId(given: string | undefined): string {
  if (given === undefined) return defaultNodeId();
  if (typeof given !== 'string' || given === '' || given.length > 128 || /[\s{}]/.test(given)) {
    throw new TypeError(`nodeId must be 1–128 characters without spaces or braces, got ${JSON.stringify(given)}`);
  }
  return given;
}

function resolveAdminHttp(h: Exclude<ServerOptions['http'], false | undefined>): ResolvedAdminHttp {
  const r: ResolvedAdminHttp = {
    port: port(h.port, 8080, 'http.port'),
    host: h.host ?? '127.0.0.1',
    adminToken: h.adminToken || null,
    metricsPublic: h.metricsPublic === true,
    maxConnections: positive(h.maxConnections ?? 64, 'http.maxConnections'),
    headersTimeoutMs: positive(h.headersTimeoutMs ?? 5000, 'http.headersTimeoutMs'),
    requestTimeoutMs: positive(h.requestTimeoutMs ?? 10000, 'http.requestTimeoutMs'),
    keepAliveTimeoutMs: positive(h.keepAliveTimeoutMs ?? 5000, 'http.keepAliveTimeoutMs'),
    maxBodyBytes: positive(h.maxBodyBytes ?? 65536, 'http.maxBodyBytes'),
  };
  if (r.headersTimeoutMs > r.requestTimeoutMs) {
    throw new RangeError(`http.headersTimeoutMs (${r.headersTimeoutMs}) must not exceed http.requestTimeoutMs (${r.requestTimeoutMs})`);
  }
  return r;
}

const MIB = 1024 * 1024;

function dedupOptions(given: ServerOptions['dedup'], name: string): { ttlMs: number; max: number; maxBytes: number } {
  const d = { ttlMs: 600000, max: 100000, maxBytes: 16 * MIB, ...given };
  positive(d.ttlMs, `${name}.ttlMs`);
  positive(d.max, `${name}.max`);
  positive(d.maxBytes, `${name}.maxBytes`);
  return d;
}

function port(value: number | undefined, fallback: number, name: string): number {
  const p = value ?? fallback;
  if (!Number.isInteger(p) || p < 0 || p > 65535) throw new RangeError(`${name} must be an integer 0–65535 (0 = any free port), got ${String(value)}`);
  return p;
}

function nonNegativeInt(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`${name} must be a whole number 0 or more (0 = off), got ${String(value)}`);
  return value;
}

function positiveInt(value: number, name: string): number {
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`${name} must be a whole number 1 or more, got ${String(value)}`);
  return value;
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number, got ${String(value)}`);
  return value;
}

function atMost(value: number, max: number, name: string): number {
  if (value > max) throw new RangeError(`${name} must be at most ${max}, got ${value}`);
  return value;
}
