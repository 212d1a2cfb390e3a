import { systemClock, type Clock } from './clock';
import { DEV } from './dev';
import { silentLogger, type Logger } from './logger';
import { SenseMode, keepAliveTimings, type SenseModeValue } from './sense-mode';
import type { OutboxStore } from './qos-outbox';
import type { SocketAdapter } from './transport';

/** Options of {@link IMClient}; only `url` and `adapter` are required. */
export interface IMClientOptions {
  /**
   * Server address, such as `ws://127.0.0.1:3000/websocket` (MobileIMSDK needs that exact path), or a list
   * of equivalent addresses: each client walks the list in its own random order, starting at a random entry
   * and moving to the next of that order after a connect or login that fails, or when the server goes away.
   */
  url: string | readonly string[];
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
  /** Keeps unacknowledged QoS messages across reloads (see `mobileimsdk-ts/adapters/storage`). */
  outboxStore?: OutboxStore;
  /** Ask the server for device receipts (`received` events); ignored by MobileIMSDK servers (default true). */
  receipts?: boolean;
  logger?: Logger;
  clock?: Clock;
  /** Randomness for backoff jitter and fingerprints (default `Math.random`). */
  random?: () => number;
}

/**
 * {@link IMClientOptions} with every default filled in. Internal: the members the options' names do not
 * have to match take a leading underscore, so the minifier may shorten them.
 */
export interface ResolvedOptions {
  /** A copy of the addresses (one for a single URL); the client reorders it into its walk. */
  _urls: string[];
  _adapter: SocketAdapter;
  _keepAlive: { intervalMs: number; timeoutMs: number };
  _reconnect: { minDelayMs: number; maxDelayMs: number; maxAttempts: number };
  _qos: {
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
  _getToken: (() => string | Promise<string>) | null;
  _outboxStore: OutboxStore | null;
  _receipts: boolean;
  _logger: Logger;
  _clock: Clock;
  _random: () => number;
}

/** Names that may be 0; every other number must be positive. */
const ZERO_OK = ['minDelayMs', 'maxDelayMs', 'maxAttempts', 'resendAfterMs', 'maxRetries'];

/** Fills `out` (fresh defaults, changed in place) from `given`, checking each value given; `section` names them in errors. */
function numbers<T extends Record<string, number>>(section: string, given: Partial<T> | undefined, out: T): T {
  for (const key of Object.keys(out) as Array<keyof T & string>) {
    const value = given ? given[key] : undefined;
    if (value === undefined) continue;
    const zeroOk = ZERO_OK.indexOf(key) >= 0;
    if (typeof value !== 'number' || !(value > 0 || (zeroOk && value === 0))) {
      throw new RangeError(
        DEV ? `${section}${key} must be a ${zeroOk ? 'non-negative' : 'positive'} number, got ${String(value)}` : `invalid ${section}${key}`,
      );
    }
    out[key] = value as T[keyof T & string];
  }
  return out;
}

/** Validates options and fills defaults; throws `TypeError`/`RangeError` saying what to pass instead. */
export function resolveOptions(o: IMClientOptions): ResolvedOptions {
  if (!o || typeof o !== 'object') throw new TypeError(DEV ? 'new IMClient(options): options must be an object with url and adapter' : 'invalid options');
  // A copy: a list changed by the caller later does not change the client's. findIndex visits holes.
  const urls: string[] = ([] as string[]).concat(o.url);
  if (!urls[0] || urls.findIndex((url) => typeof url !== 'string' || !url) >= 0) {
    throw new TypeError(DEV ? 'options.url must be a server URL such as ws://127.0.0.1:3000/websocket, or a non-empty array of them' : 'invalid options.url');
  }
  if (!o.adapter || typeof o.adapter.connect !== 'function') {
    throw new TypeError(DEV ? 'options.adapter must be a platform adapter, such as createBrowserAdapter()' : 'invalid options.adapter');
  }
  // The sense mode's timings (a fresh object of exactly intervalMs and timeoutMs) are the defaults.
  const keepAlive = numbers('keepAlive.', o.keepAlive, keepAliveTimings(o.senseMode || SenseMode.MODE_5S));
  const reconnect = numbers('reconnect.', o.reconnect, { minDelayMs: 1000, maxDelayMs: 30000, maxAttempts: Infinity });
  if (reconnect.maxDelayMs < reconnect.minDelayMs) throw new RangeError(DEV ? 'reconnect.maxDelayMs must not be below reconnect.minDelayMs' : 'invalid reconnect.maxDelayMs');
  const qos = numbers('qos.', o.qos, {
    checkIntervalMs: 5000,
    resendAfterMs: 3000,
    maxRetries: 2,
    dedupTtlMs: 600000,
    dedupMax: 10000,
    maxPending: 1000,
    deliverTimeoutMs: 120000,
  });
  const timeouts = numbers('', o, { loginTimeoutMs: 10000, echoTimeoutMs: 5000, probeTimeoutMs: 3000 });
  if (o.getToken !== undefined && typeof o.getToken !== 'function') throw new TypeError(DEV ? 'options.getToken must be a function returning a token' : 'invalid options.getToken');
  if (o.receipts !== undefined && typeof o.receipts !== 'boolean') throw new TypeError(DEV ? 'options.receipts must be true or false' : 'invalid options.receipts');
  if (o.outboxStore !== undefined && (!o.outboxStore || typeof o.outboxStore.load !== 'function' || typeof o.outboxStore.save !== 'function')) {
    throw new TypeError(
      DEV ? 'options.outboxStore must have load(userId) and save(userId, messages), such as createOutboxStore(localStorage)' : 'invalid options.outboxStore',
    );
  }
  // The timeouts keep their option names; the object that holds them carries the rest.
  return Object.assign(timeouts, {
    _urls: urls,
    _adapter: o.adapter,
    _keepAlive: keepAlive,
    _reconnect: reconnect,
    _qos: qos,
    _getToken: o.getToken || null,
    _outboxStore: o.outboxStore || null,
    _receipts: o.receipts !== false,
    _logger: o.logger || silentLogger,
    _clock: o.clock || systemClock,
    _random: o.random || Math.random,
  });
}
