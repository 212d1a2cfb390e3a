import { Redis } from 'ioredis';
import type { Logger } from './logger';

/** A Redis connection to use, or the URL to open one at (then it is closed with the object that opened it). */
export type RedisTarget = Redis | string;

/** Longest a command waits for Redis's answer before it fails (a stalled Redis must not stall a sender). */
export const REDIS_COMMAND_TIMEOUT_MS = 2000;

/**
 * Opens a connection for the cluster seams. Commands fail at once while Redis is unreachable
 * (`enableOfflineQueue: false`, `maxRetriesPerRequest: 0`) rather than wait in a queue: a message is
 * then refused with an error the sender sees, never held unacknowledged. The connection keeps
 * reconnecting (backoff up to 1 s) and ioredis restores a subscriber's channels after a reconnect.
 * Errors are logged once per outage, and the recovery once.
 */
export function createRedisClient(url: string, logger: Logger, label: string, subscriber = false): Redis {
  const client = new Redis(url, {
    enableOfflineQueue: subscriber,
    maxRetriesPerRequest: subscriber ? null : 0,
    commandTimeout: subscriber ? undefined : REDIS_COMMAND_TIMEOUT_MS,
    retryStrategy: (times) => Math.min(50 * times, 1000),
    connectionName: label.replace(/[^\w.-]/g, '_'),
  });
  watchRedis(client, logger, label);
  return client;
}

/** Logs a connection's failures once per outage and its recovery; an 'error' listener also keeps ioredis from printing. */
export function watchRedis(client: Redis, logger: Logger, label: string): void {
  let down = false;
  client.on('error', (err: Error) => {
    if (down) return;
    down = true;
    logger.error(`redis (${label}): ${err.message}; retrying`);
  });
  client.on('ready', () => {
    if (!down) return;
    down = false;
    logger.info(`redis (${label}): connected again`);
  });
}

/** Resolves once the connection is ready; rejects after `timeoutMs` (a programmer's or operator's error to report). */
export function whenReady(client: Redis, timeoutMs: number, label: string): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new Error(`redis (${label}): not connected within ${timeoutMs} ms (status ${client.status})`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}

/** The connection to use for `target`, and whether it was opened here (and is to be closed here). */
export function openTarget(target: RedisTarget, logger: Logger, label: string): { client: Redis; owned: boolean } {
  if (typeof target === 'string') return { client: createRedisClient(target, logger, label), owned: true };
  if (!target || typeof (target as Redis).defineCommand !== 'function') throw new TypeError('redis must be an ioredis client or a redis:// URL');
  return { client: target, owned: false };
}

/** Closes a connection opened here; never throws (the connection may be down). */
export async function closeOwned(client: Redis, owned: boolean): Promise<void> {
  if (!owned) return;
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}

/**
 * A Redis key part for a user id, node id or fingerprint whose length is counted in UTF-8 bytes, so a Lua
 * script (which counts bytes) can split it: `<bytes>:<text>`. Keys built by joining such parts never collide.
 */
export function lengthPrefixed(part: string): string {
  return `${Buffer.byteLength(part, 'utf8')}:${part}`;
}

/** Splits a member built as `lengthPrefixed(a) + b` back into [a, b]. */
export function splitPrefixed(member: string): [string, string] {
  const colon = member.indexOf(':');
  const n = Number(member.slice(0, colon));
  const rest = Buffer.from(member.slice(colon + 1), 'utf8');
  return [rest.subarray(0, n).toString('utf8'), rest.subarray(n).toString('utf8')];
}
