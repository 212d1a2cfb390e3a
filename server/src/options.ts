import { SenseMode, senseModeTimings } from '../../src/sense-mode';
import type { ServerHooks } from './hooks';
import type { Logger } from './logger';
import { createConsoleLogger } from './logger';
import type { OfflineStore } from './offline-store';
import type { QosOptions } from './qos-s2c';
import type { RateLimitOptions } from './rate-limit';

/** Where a gateway listens. `port: 0` picks a free port; read the bound one from `server.ports`. */
export interface ListenOptions {
  port?: number;
  host?: string;
}

/** Options of {@link createServer}; every field is optional. A gateway set to false is not started. */
export interface ServerOptions {
  /**
   * WebSocket gateway (default port 3000, path `/websocket`, 65536-byte frames); a connection must finish
   * its HTTP upgrade within `handshakeTimeoutMs` (default 10000, as Netty) or it is dropped.
   */
  ws?: (ListenOptions & { path?: string; maxPayloadBytes?: number; handshakeTimeoutMs?: number }) | false;
  /** TCP gateway (default port 8901, bodies up to 6144 bytes). */
  tcp?: (ListenOptions & { maxBodyBytes?: number }) | false;
  /**
   * UDP gateway (default port 7901, datagrams up to 2048 bytes, at most 10000 peers, at most 1000
   * datagrams a second in all to peers that have not logged in: source addresses can be forged).
   */
  udp?: (ListenOptions & { maxDatagramBytes?: number; maxSessions?: number; unauthRepliesPerSecond?: number }) | false;
  /** Admin HTTP API (default port 8080); without `adminToken` every route but `/health` answers 403. */
  http?: (ListenOptions & { adminToken?: string }) | false;
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
  /** Stored messages in flight at once while a user's backlog is handed over after login (default 100). */
  replayWindow?: number;
  /** A connection must log in within this time (default 15000). */
  loginTimeoutMs?: number;
  /**
   * How long an awaited hook (`beforeC2S`, `beforeC2C`, `onOffline`) may take before the server gives up
   * on it (a before hook: error 318, no ACK; `onOffline`: not stored) and moves on (default 10000).
   */
  hookTimeoutMs?: number;
  /** Per-connection frame rate limit (default burst 200, 100/s); false disables it. */
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
  /** Bytes a connection may have queued for writing before it is dropped as a slow consumer (default 4 MiB). */
  maxBufferedBytes?: number;
  /**
   * Largest data frame (encoded, in bytes) the server relays, stores or pushes: larger ones are refused
   * with error 311. Default: the TCP body limit when the TCP gateway runs (a TCP client cannot read a
   * larger frame, and a stored one would be replayed at every login), otherwise the WebSocket payload
   * limit. MobileIMSDK's Java UDP clients read at most 1024 bytes.
   */
  maxMessageBytes?: number;
  hooks?: ServerHooks;
  logger?: Logger;
}

/** {@link ServerOptions} with every default filled in. */
export interface ResolvedOptions {
  ws: { port: number; host?: string; path: string; maxPayloadBytes: number; handshakeTimeoutMs: number } | false;
  tcp: { port: number; host?: string; maxBodyBytes: number } | false;
  udp: { port: number; host?: string; maxDatagramBytes: number; maxSessions: number; unauthRepliesPerSecond: number } | false;
  http: { port: number; host?: string; adminToken: string | null } | false;
  expiryMs: number;
  udpExpiryMs: number;
  dataDir: string | null;
  durability: 'normal' | 'full';
  store: OfflineStore | null;
  maxOfflinePerUser: number;
  replayWindow: number;
  loginTimeoutMs: number;
  hookTimeoutMs: number;
  rateLimit: RateLimitOptions | null;
  qos: QosOptions;
  dedup: { ttlMs: number; max: number; maxBytes: number };
  c2cDedup: { ttlMs: number; max: number; maxBytes: number };
  maxQueuedBytes: number;
  maxBufferedBytes: number;
  maxMessageBytes: number;
  hooks: ServerHooks;
  logger: Logger;
}

/** Fills in defaults and validates; throws TypeError/RangeError naming the bad option. */
export function resolveOptions(o: ServerOptions = {}): ResolvedOptions {
  const timings = senseModeTimings(o.senseMode ?? SenseMode.MODE_15S);
  const ws =
    o.ws === false ? false : { path: '/websocket', maxPayloadBytes: 65536, handshakeTimeoutMs: 10000, ...o.ws, port: port(o.ws?.port, 3000, 'ws.port') };
  if (ws && !ws.path.startsWith('/')) throw new TypeError(`ws.path must start with "/", got ${JSON.stringify(ws.path)}`);
  if (ws) positive(ws.handshakeTimeoutMs, 'ws.handshakeTimeoutMs');
  const tcp = o.tcp === false ? false : { maxBodyBytes: 6144, ...o.tcp, port: port(o.tcp?.port, 8901, 'tcp.port') };
  const udp =
    o.udp === false
      ? false
      : { maxDatagramBytes: 2048, maxSessions: 10000, unauthRepliesPerSecond: 1000, ...o.udp, port: port(o.udp?.port, 7901, 'udp.port') };
  if (udp) positive(udp.unauthRepliesPerSecond, 'udp.unauthRepliesPerSecond');
  const http =
    o.http === false ? false : { ...o.http, adminToken: o.http?.adminToken || null, port: port(o.http?.port, 8080, 'http.port') };
  const qos: QosOptions = { checkIntervalMs: 5000, resendAfterMs: 2000, maxRetries: 1, maxEntries: 100000, maxBytes: 32 * MIB, ...o.qos };
  positive(qos.checkIntervalMs, 'qos.checkIntervalMs');
  positive(qos.maxEntries, 'qos.maxEntries');
  positive(qos.maxBytes, 'qos.maxBytes');
  if (!Number.isFinite(qos.resendAfterMs) || qos.resendAfterMs < 0) throw new RangeError(`qos.resendAfterMs must be 0 or more, got ${String(qos.resendAfterMs)}`);
  if (!Number.isInteger(qos.maxRetries) || qos.maxRetries < 0) throw new RangeError(`qos.maxRetries must be a whole number 0 or more, got ${String(qos.maxRetries)}`);
  const rateLimit = o.rateLimit === false ? null : { burst: 200, perSecond: 100, ...o.rateLimit };
  if (rateLimit) {
    positive(rateLimit.burst, 'rateLimit.burst');
    positive(rateLimit.perSecond, 'rateLimit.perSecond');
  }
  const dedup = dedupOptions(o.dedup, 'dedup');
  const c2cDedup = dedupOptions(o.c2cDedup, 'c2cDedup');
  return {
    ws,
    tcp,
    udp,
    http,
    expiryMs: timings.serverExpiryMs,
    udpExpiryMs: timings.udpServerExpiryMs ?? timings.serverExpiryMs,
    dataDir: o.dataDir ?? null,
    durability: o.durability ?? 'normal',
    store: o.store ?? null,
    maxOfflinePerUser: positive(o.maxOfflinePerUser ?? 10000, 'maxOfflinePerUser'),
    replayWindow: positive(o.replayWindow ?? 100, 'replayWindow'),
    loginTimeoutMs: positive(o.loginTimeoutMs ?? 15000, 'loginTimeoutMs'),
    hookTimeoutMs: positive(o.hookTimeoutMs ?? 10000, 'hookTimeoutMs'),
    rateLimit,
    qos,
    dedup,
    c2cDedup,
    maxQueuedBytes: positive(o.maxQueuedBytes ?? MIB, 'maxQueuedBytes'),
    maxBufferedBytes: positive(o.maxBufferedBytes ?? 4 * 1024 * 1024, 'maxBufferedBytes'),
    maxMessageBytes: positive(o.maxMessageBytes ?? (tcp ? tcp.maxBodyBytes : ws ? ws.maxPayloadBytes : 65536), 'maxMessageBytes'),
    hooks: o.hooks ?? {},
    logger: o.logger ?? createConsoleLogger('info'),
  };
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

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number, got ${String(value)}`);
  return value;
}
