import { createConsoleLogger, type Logger } from './logger';
import type { ExpiredMessage } from './offline-store';
import { realClock, type StoreClock } from './store-expiry';

/** Options of {@link SqliteOfflineStore}; every field is optional. */
export interface SqliteStoreOptions {
  /** SQLite `synchronous`: 'normal' (default) survives a process crash, 'full' also a power loss. */
  synchronous?: 'normal' | 'full';
  /** Most messages stored in all; beyond it a put is refused with reason 'quota' (default 1000000). */
  maxRows?: number;
  /** Most bytes of stored frames (UTF-8) in all; beyond it a put is refused with 'quota' (default 1 GiB). */
  maxBytes?: number;
  /** A message not ACKed this long after it was stored expires: never replayed, then removed (default 14 days). */
  ttlMs?: number;
  /** How often expired messages are removed (default 60000, or `ttlMs` when shorter). */
  sweepIntervalMs?: number;
  /** Expired messages removed per transaction; the sweeper yields to other work between batches (default 1000). */
  sweepBatch?: number;
  /**
   * Most milliseconds a held put (a message being written to its online receiver) waits for the next
   * commit; a message its receiver ACKs within that time is never written to disk. Its sender's ACK comes
   * at most this much later. 0 commits every put in the turn it is made (default 10).
   */
  holdMs?: number;
  /** How often the database file is checked for having been deleted or replaced (default 5000). */
  checkIntervalMs?: number;
  clock?: StoreClock;
  logger?: Logger;
  /** Called with each batch of expired messages the sweeper removed. */
  onExpired?(messages: ExpiredMessage[]): void;
}

/** {@link SqliteStoreOptions} with every default filled in. */
export type ResolvedStoreOptions = Required<Omit<SqliteStoreOptions, 'onExpired'>> & Pick<SqliteStoreOptions, 'onExpired'>;

const DAY_MS = 24 * 60 * 60 * 1000;

/** Fills in defaults and validates; throws TypeError/RangeError naming the bad option. */
export function resolveStoreOptions(o: SqliteStoreOptions): ResolvedStoreOptions {
  const ttlMs = positive(o.ttlMs ?? 14 * DAY_MS, 'ttlMs');
  if (o.synchronous !== undefined && o.synchronous !== 'normal' && o.synchronous !== 'full') {
    throw new TypeError(`synchronous must be "normal" or "full", got ${JSON.stringify(o.synchronous)}`);
  }
  return {
    synchronous: o.synchronous ?? 'normal',
    maxRows: positive(o.maxRows ?? 1_000_000, 'maxRows'),
    maxBytes: positive(o.maxBytes ?? 1024 ** 3, 'maxBytes'),
    ttlMs,
    sweepIntervalMs: positive(o.sweepIntervalMs ?? Math.min(60_000, ttlMs), 'sweepIntervalMs'),
    sweepBatch: wholePositive(o.sweepBatch ?? 1000, 'sweepBatch'),
    holdMs: holdMs(o.holdMs ?? 10),
    checkIntervalMs: positive(o.checkIntervalMs ?? 5000, 'checkIntervalMs'),
    clock: o.clock ?? realClock,
    logger: o.logger ?? createConsoleLogger('info'),
    onExpired: o.onExpired,
  };
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number, got ${String(value)}`);
  return value;
}

function holdMs(value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 1000) throw new RangeError(`holdMs must be a whole number 0–1000, got ${String(value)}`);
  return value;
}

function wholePositive(value: number, name: string): number {
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`${name} must be a whole number above 0, got ${String(value)}`);
  return value;
}
