// Latency of the Redis seams against a private local redis-server (AOF everysec), one operation at a
// time, and the throughput of 1000 puts in flight at once. Numbers only, no pass/fail.
// Usage (redis-server installed): npx vitest bench --run server/bench/redis-seams.bench.ts
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { startRedisServer, type RedisServer } from '../../test/helpers/redis-server';
import { silentLogger } from '../src/index';
import { RedisPresence } from '../src/presence-redis';
import { RedisMessageStore } from '../src/store-redis';

let redis: RedisServer;
let a: RedisPresence;
let b: RedisPresence;
let store: RedisMessageStore;
let n = 0;

beforeAll(async () => {
  redis = await startRedisServer();
  a = await RedisPresence.open({ redis: redis.url, nodeId: 'A', logger: silentLogger });
  b = await RedisPresence.open({ redis: redis.url, nodeId: 'B', logger: silentLogger });
  store = await RedisMessageStore.open({ redis: redis.url, logger: silentLogger });
});
afterAll(async () => {
  await Promise.all([a.close(), b.close(), store.close()]);
  await redis.stop();
});

describe('presence', () => {
  bench('claim (a new user: take)', async () => {
    await a.claim(`u${++n}`, { node: 'A', session: n, firstLoginTime: 1 }, 0);
  });
  bench('claim from the other node (replace + kick)', async () => {
    await b.claim(`u${n}`, { node: 'B', session: n, firstLoginTime: 2 }, 0);
  });
  bench('locate', async () => {
    await a.locate(`u${n}`);
  });
  bench('release', async () => {
    await a.claim(`r${++n}`, { node: 'A', session: n, firstLoginTime: 1 }, 0);
    await a.release(`r${n}`, 'A', n);
  });
});

describe('store', () => {
  const frame = JSON.stringify({ type: 2, from: 'alice', to: 'bob', fp: 'x'.repeat(36), QoS: true, dataContent: 'hello '.repeat(20) });
  bench('put + remove (one 200-byte message)', async () => {
    const fp = `f${++n}`;
    await store.put('bob', 'alice', fp, frame);
    await store.remove('bob', 'alice', fp);
  });
  bench('put alone', async () => {
    await store.put(`bob${n % 100}`, 'alice', `p${++n}`, frame);
  });
  bench('list 10 of a backlog', async () => {
    await store.list('bob1', 0, 10);
  });
  bench('checkAndRemember', async () => {
    await store.checkAndRemember('c2c', 'alice', `d${++n}`);
  });
  bench('1000 puts in flight at once', async () => {
    const base = ++n;
    n += 1000;
    await Promise.all(Array.from({ length: 1000 }, (_, i) => store.put(`c${i % 50}`, 'alice', `b${base + i}`, frame)));
  }, { iterations: 10 });
});
