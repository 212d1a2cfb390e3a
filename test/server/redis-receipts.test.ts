import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../server/src/index';
import type { ReceiptBacklogLimits } from '../../server/src/receipts';
import { RedisReceipts } from '../../server/src/receipts-redis';
import { startRedisServer, type RedisServer } from '../helpers/redis-server';

/** Receipts waiting for offline senders, shared through Redis: the local backlog's bounds, cluster-wide. */

const T0 = 1_800_000_000_000;
let redis: RedisServer;
let prefixes = 0;
const conns: Redis[] = [];
beforeAll(async () => void (redis = await startRedisServer()));
afterAll(() => redis?.stop());
afterEach(() => {
  for (const c of conns.splice(0)) c.disconnect();
});

async function open(limits: Partial<ReceiptBacklogLimits> = {}) {
  const client = new Redis(redis.url);
  conns.push(client);
  let now = T0;
  const prefix = `r${++prefixes}:`;
  const l: ReceiptBacklogLimits = { maxPerSender: 1000, maxTotal: 100_000, maxBytes: 16 * 1024 * 1024, ttlMs: 60_000, ...limits };
  const keeper = new RedisReceipts(client, prefix, l, silentLogger, { now: () => now });
  const totals = async () => {
    const t = await client.hgetall(`${prefix}rct`);
    return { n: Number(t.n ?? 0), b: Number(t.b ?? 0) };
  };
  return { keeper, client, prefix, totals, advance: (ms: number) => void (now += ms), now: () => now };
}

const fps = (w: Array<{ fp: string }>) => w.map((r) => r.fp);

describe('RedisReceipts', () => {
  it('hands a sender its receipts once, oldest first, whoever kept them', async () => {
    const a = await open();
    const b = new RedisReceipts(a.client, a.prefix, { maxPerSender: 10, maxTotal: 100, maxBytes: 1e6, ttlMs: 60_000 }, silentLogger, { now: a.now });
    expect(await a.keeper.add('alice', 'bob', 'f1', T0)).toBe(true);
    expect(await b.add('alice', 'carol', 'f2', T0 + 1)).toBe(true);
    await a.keeper.add('dave', 'bob', 'g1', T0);
    expect(await b.take('alice', T0 + 10)).toEqual([
      { receiver: 'bob', fp: 'f1', atMs: T0 },
      { receiver: 'carol', fp: 'f2', atMs: T0 + 1 },
    ]);
    expect(await a.keeper.take('alice', T0 + 10)).toEqual([]);
    expect(fps(await a.keeper.take('dave', T0 + 10))).toEqual(['g1']);
    expect(await a.totals()).toEqual({ n: 0, b: 0 });
  });

  it('keeps at most maxPerSender per sender and maxTotal in all: the oldest give way', async () => {
    const { keeper, totals } = await open({ maxPerSender: 3, maxTotal: 5 });
    for (let i = 0; i < 5; i++) await keeper.add('alice', 'bob', `a${i}`, T0 + i);
    expect(keeper.dropped).toBe(2);
    for (let i = 0; i < 3; i++) await keeper.add('carol', 'bob', `c${i}`, T0 + 10 + i);
    // 6 would be over maxTotal 5: alice's oldest (a2) gave way.
    expect(keeper.dropped).toBe(3);
    expect((await totals()).n).toBe(5);
    expect(fps(await keeper.take('alice', T0 + 20))).toEqual(['a3', 'a4']);
    expect(fps(await keeper.take('carol', T0 + 20))).toEqual(['c0', 'c1', 'c2']);
    expect(await totals()).toEqual({ n: 0, b: 0 });
  });

  it('keeps at most maxBytes in all, and refuses a receipt larger than that alone', async () => {
    // Each of these receipts is charged the same bytes as by the local backlog (ids, fp and overhead).
    const probe = await open();
    await probe.keeper.add('alice', 'bob', 'x0', T0);
    const one = (await probe.totals()).b;
    const { keeper, totals } = await open({ maxBytes: one * 2 });
    for (let i = 0; i < 3; i++) await keeper.add('alice', 'bob', `x${i}`, T0 + i);
    expect(await totals()).toEqual({ n: 2, b: one * 2 });
    expect(await keeper.add('alice', 'b'.repeat(one * 2), 'big', T0 + 5)).toBe(false);
    expect(fps(await keeper.take('alice', T0 + 10))).toEqual(['x1', 'x2']);
  });

  it('drops receipts past the TTL: not handed out, and removed by later adds', async () => {
    const { keeper, totals, advance, now } = await open({ ttlMs: 1000 });
    await keeper.add('alice', 'bob', 'old', T0);
    await keeper.add('carol', 'bob', 'old2', T0);
    advance(999);
    expect(fps(await keeper.take('alice', now()))).toEqual(['old']);
    advance(1);
    expect(await keeper.take('carol', now())).toEqual([]);
    await keeper.add('dave', 'bob', 'new', now());
    await keeper.add('erin', 'bob', 'expired-by-now', T0);
    advance(1000);
    await keeper.add('frank', 'bob', 'newest', now());
    // Only frank's is left: dave's and erin's outlived the TTL and the add removed them.
    expect(await totals()).toEqual({ n: 1, b: expect.any(Number) });
    expect(fps(await keeper.take('frank', now()))).toEqual(['newest']);
  });

  it('drops a receipt (never throws) when Redis cannot keep it', async () => {
    const { keeper, client } = await open();
    client.disconnect();
    await new Promise((r) => setTimeout(r, 50));
    expect(await keeper.add('alice', 'bob', 'f1', T0)).toBe(false);
    expect(await keeper.take('alice', T0)).toEqual([]);
    expect(keeper.dropped).toBe(1);
  });
});
