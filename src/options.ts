import { systemClock, type Clock } from './clock';
import { silentLogger, type Logger } from './logger';
import { SenseMode, senseModeTimings, type SenseModeValue } from './sense-mode';
import type { SocketAdapter } from './transport';

/** Options of {@link IMClient}; only `url` and `adapter` are required. */
export interface IMClientOptions {
  /** Server address, such as `ws://127.0.0.1:3000/websocket` (MobileIMSDK needs that exact path). */
  url: string;
  /** The platform adapter, such as `createBrowserAdapter()`. */
  adapter: SocketAdapter;
  /** Keep-alive timings as a MobileIMSDK sense mode (default `SenseMode.MODE_5S`, as MobileIMSDK-H5). */
  senseMode?: SenseModeValue;
  /** Explicit keep-alive timings; overrides `senseMode`. */
  keepAlive?: { intervalMs: number; timeoutMs: number };
  /** Automatic re-login after a lost link: full-jitter exponential backoff. */
  reconnect?: { minDelayMs?: number; maxDelayMs?: number; maxAttempts?: number };
  /** QoS timings and bounds; the defaults are MobileIMSDK's. */
  qos?: {
    checkIntervalMs?: number;
    resendAfterMs?: number;
    maxRetries?: number;
    dedupTtlMs?: number;
    dedupMax?: number;
    /** Messages that may wait for a link at once; a `send()` past it rejects with `OUTBOX_FULL`. */
    maxPending?: number;
    /** A message not acknowledged this long after `send()` is reported lost, online or not. */
    deliverTimeoutMs?: number;
  };
  /** How long a login may take, from opening the socket to the server's answer (default 10 s). */
  loginTimeoutMs?: number;
  /** How long `echo()` waits for its reply (default 5 s). */
  echoTimeoutMs?: number;
  /** After a return to the foreground or the network, how long the probe beat may wait (default 3 s). */
  probeTimeoutMs?: number;
  /** Called before each automatic re-login for a fresh token. */
  getToken?: () => string | Promise<string>;
  logger?: Logger;
  clock?: Clock;
  /** Randomness for backoff jitter and fingerprints (default `Math.random`). */
  random?: () => number;
}

/** {@link IMClientOptions} with every default filled in. */
export interface ResolvedOptions {
  url: string;
  adapter: SocketAdapter;
  keepAlive: { intervalMs: number; timeoutMs: number };
  reconnect: { minDelayMs: number; maxDelayMs: number; maxAttempts: number };
  qos: {
    checkIntervalMs: number;
    resendAfterMs: number;
    maxRetries: number;
    dedupTtlMs: number;
    dedupMax: number;
    maxPending: number;
    deliverTimeoutMs: number;
  };
  loginTimeoutMs: number;
  echoTimeoutMs: number;
  probeTimeoutMs: number;
  getToken: (() => string | Promise<string>) | null;
  logger: Logger;
  clock: Clock;
  random: () => number;
}

function positive(value: number | undefined, name: string, fallback: number, allowZero = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0 || (!allowZero && value === 0)) {
    throw new RangeError(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} number of milliseconds or a count, got ${String(value)}`);
  }
  return value;
}

/** Validates options and fills defaults; throws `TypeError`/`RangeError` saying what to pass instead. */
export function resolveOptions(o: IMClientOptions): ResolvedOptions {
  if (!o || typeof o !== 'object') throw new TypeError('new IMClient(options): options must be an object with url and adapter');
  if (typeof o.url !== 'string' || o.url === '') throw new TypeError('options.url must be a server URL such as ws://127.0.0.1:3000/websocket');
  if (!o.adapter || typeof o.adapter.connect !== 'function') {
    throw new TypeError('options.adapter must be a platform adapter, such as createBrowserAdapter()');
  }
  const mode = senseModeTimings(o.senseMode ?? SenseMode.MODE_5S);
  const ka = o.keepAlive;
  const keepAlive = {
    intervalMs: positive(ka?.intervalMs, 'keepAlive.intervalMs', mode.intervalMs),
    timeoutMs: positive(ka?.timeoutMs, 'keepAlive.timeoutMs', mode.timeoutMs),
  };
  const r = o.reconnect ?? {};
  const reconnect = {
    minDelayMs: positive(r.minDelayMs, 'reconnect.minDelayMs', 1000, true),
    maxDelayMs: positive(r.maxDelayMs, 'reconnect.maxDelayMs', 30000, true),
    maxAttempts: positive(r.maxAttempts, 'reconnect.maxAttempts', Infinity, true),
  };
  if (reconnect.maxDelayMs < reconnect.minDelayMs) throw new RangeError('reconnect.maxDelayMs must not be below reconnect.minDelayMs');
  const q = o.qos ?? {};
  const qos = {
    checkIntervalMs: positive(q.checkIntervalMs, 'qos.checkIntervalMs', 5000),
    resendAfterMs: positive(q.resendAfterMs, 'qos.resendAfterMs', 3000, true),
    maxRetries: positive(q.maxRetries, 'qos.maxRetries', 2, true),
    dedupTtlMs: positive(q.dedupTtlMs, 'qos.dedupTtlMs', 600000),
    dedupMax: positive(q.dedupMax, 'qos.dedupMax', 10000),
    maxPending: positive(q.maxPending, 'qos.maxPending', 1000),
    deliverTimeoutMs: positive(q.deliverTimeoutMs, 'qos.deliverTimeoutMs', 120000),
  };
  if (o.getToken !== undefined && typeof o.getToken !== 'function') throw new TypeError('options.getToken must be a function returning a token');
  return {
    url: o.url,
    adapter: o.adapter,
    keepAlive,
    reconnect,
    qos,
    loginTimeoutMs: positive(o.loginTimeoutMs, 'loginTimeoutMs', 10000),
    echoTimeoutMs: positive(o.echoTimeoutMs, 'echoTimeoutMs', 5000),
    probeTimeoutMs: positive(o.probeTimeoutMs, 'probeTimeoutMs', 3000),
    getToken: o.getToken ?? null,
    logger: o.logger ?? silentLogger,
    clock: o.clock ?? systemClock,
    random: o.random ?? Math.random,
  };
}
