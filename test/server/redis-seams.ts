import { silentLogger } from '../../server/src/index';
import { RedisPresence } from '../../server/src/presence-redis';
import { RedisMessageStore } from '../../server/src/store-redis';
import { startRedisServer, type RedisServer } from '../helpers/redis-server';

/**
 * Factories of the Redis implementations for the seams' conformance suites (seams.test.ts): one private
 * redis-server per test file, started at the first use, and a fresh key prefix per case. Each node gets
 * its own connection, so what one node writes, another reads through Redis.
 */

let server: Promise<RedisServer> | null = null;
let cases = 0;

/** The file's redis-server, started once. */
export function sharedRedis(): Promise<RedisServer> {
  server ??= startRedisServer();
  return server;
}

/** Stops the file's redis-server if one was started. */
export async function stopSharedRedis(): Promise<void> {
  const s = server;
  server = null;
  if (s) await (await s).stop();
}

const NODES = ['n1', 'n2', 'n3'];

/** A Presence per node on one Redis. */
export async function makeRedisPresence(): Promise<{ at(node: string): RedisPresence; close(): Promise<void> }> {
  const { url } = await sharedRedis();
  const keyPrefix = `t${++cases}:`;
  const nodes = new Map<string, RedisPresence>();
  for (const nodeId of NODES) nodes.set(nodeId, await RedisPresence.open({ redis: url, nodeId, keyPrefix, logger: silentLogger }));
  return {
    at: (node) => nodes.get(node) ?? fail(node),
    close: async () => void (await Promise.all([...nodes.values()].map((p) => p.close()))),
  };
}

/** A MessageStore per node on one Redis, their TTLs judged by one clock that `advance` moves. */
export async function makeRedisStore(b: { maxRows: number; ttlMs: number; dedupTtlMs: number; dedupMax: number }, t0: number) {
  const { url } = await sharedRedis();
  const keyPrefix = `t${++cases}:`;
  let now = t0;
  const clock = { now: () => now, setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms), clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout) };
  const dedup = { ttlMs: b.dedupTtlMs, max: b.dedupMax, maxBytes: Number.POSITIVE_INFINITY };
  const nodes = new Map<string, RedisMessageStore>();
  for (const n of NODES) {
    nodes.set(n, await RedisMessageStore.open({ redis: url, keyPrefix, maxRows: b.maxRows, ttlMs: b.ttlMs, dedup: { c2s: dedup, c2c: dedup }, clock, logger: silentLogger }));
  }
  return {
    at: (node: string) => nodes.get(node) ?? fail(node),
    advance: async (ms: number) => void (now += ms),
    close: async () => void (await Promise.all([...nodes.values()].map((s) => s.close()))),
  };
}

function fail(node: string): never {
  throw new Error(`no handle for node "${node}" (the Redis harness has ${NODES.join(', ')})`);
}
