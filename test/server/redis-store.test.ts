import { mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { OfflineStoreError, silentLogger } from '../../server/src/index';
import type { ExpiredMessage } from '../../server/src/offline-store';
import { RedisMessageStore, type RedisStoreOptions } from '../../server/src/store-redis';
import { startRedisServer, type RedisServer } from '../helpers/redis-server';

/** RedisMessageStore beyond the conformance suite: its own quotas, the sweep, byte-counted keys, bounds. */

const T0 = 1_800_000_000_000;
let redis: RedisServer;
let prefixes = 0;
const opened: RedisMessageStore[] = [];
beforeAll(async () => void (redis = await startRedisServer()));
afterAll(() => redis?.stop());
afterEach(async () => void (await Promise.all(opened.splice(0).map((s) => s.close()))));

/** A store on a fresh prefix whose clock `advance` moves. */
async function open(o: Partial<RedisStoreOptions> = {}) {
  let now = T0;
  const clock = { now: () => now, setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms), clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout) };
  const store = await RedisMessageStore.open({ redis: redis.url, keyPrefix: `s${++prefixes}:`, logger: silentLogger, clock, ...o });
  opened.push(store);
  return { store, advance: (ms: number) => void (now += ms) };
}

/** A loopback port nothing listens on (taken, then released). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as { port: number };
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

async function refusal(p: Promise<unknown>): Promise<OfflineStoreError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(OfflineStoreError);
  return err as OfflineStoreError;
}

describe('RedisMessageStore', () => {
  it('refuses a put past the receiver\'s quota (reason "full": error 319) in the same step, and still takes a retransmission', async () => {
    const { store } = await open({ maxPerReceiver: 2 });
    await store.put('bob', 'alice', 'f1', 'a');
    await store.put('bob', 'alice', 'f2', 'b');
    expect((await refusal(store.put('bob', 'alice', 'f3', 'c'))).reason).toBe('full');
    expect(await store.put('bob', 'alice', 'f2', 'b')).toBe(false);
    expect(await store.put('carol', 'alice', 'f3', 'c')).toBe(true);
    // Concurrent puts cannot overshoot: the check and the write are one script.
    const many = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => store.put('dave', 'alice', `g${i}`, 'x')));
    expect(many.filter((r) => r.status === 'fulfilled').length).toBe(2);
    expect(await store.count('dave')).toBe(2);
  });

  it('putUnlessSeen stores and records a new message, and answers "seen" (storing and recording nothing) for one the window holds', async () => {
    const { store, advance } = await open({ dedup: { c2c: { ttlMs: 1000, max: 10, maxBytes: 1e6 }, c2s: { ttlMs: 1000, max: 10, maxBytes: 1e6 } } });
    expect(await store.putUnlessSeen('bob', 'alice', 'f1', 'a', 'c2c')).toBe(true);
    expect(await store.seen('c2c', 'alice', 'f1')).toBe(true);
    // The retransmission: not stored again, even once the first copy was ACKed and removed.
    expect(await store.putUnlessSeen('bob', 'alice', 'f1', 'a', 'c2c')).toBe('seen');
    expect(await store.remove('bob', 'alice', 'f1')).toBe(true);
    expect(await store.putUnlessSeen('bob', 'alice', 'f1', 'a', 'c2c')).toBe('seen');
    expect(await store.count('bob')).toBe(0);
    // Another sender's same fp, or another window, is not a retransmission.
    expect(await store.putUnlessSeen('bob', 'carol', 'f1', 'c', 'c2c')).toBe(true);
    expect(await store.putUnlessSeen('dave', 'alice', 'f2', 'd', 'c2s')).toBe(true);
    expect(await store.seen('c2c', 'alice', 'f2')).toBe(false);
    // Past the window's TTL the fp is new again (as with seen()).
    advance(1000);
    expect(await store.putUnlessSeen('bob', 'alice', 'f1', 'a', 'c2c')).toBe(true);
    expect(await store.count('bob')).toBe(2);
    // ...and recorded afresh in place of its expired entry: the next copy is a retransmission again.
    expect(await store.seen('c2c', 'alice', 'f1')).toBe(true);
    expect(await store.putUnlessSeen('bob', 'alice', 'f1', 'a', 'c2c')).toBe('seen');
  });

  it('records the (sender, fp) in the de-duplication window asked for with the put itself, stored or already stored, and in no window otherwise', async () => {
    const { store, advance } = await open({ dedup: { c2c: { ttlMs: 1000, max: 10, maxBytes: 1e6 }, c2s: { ttlMs: 1000, max: 10, maxBytes: 1e6 } } });
    expect(await store.put('bob', 'alice', 'f1', 'a', 'c2c')).toBe(true);
    expect(await store.seen('c2c', 'alice', 'f1')).toBe(true);
    expect(await store.seen('c2s', 'alice', 'f1')).toBe(false);
    expect(await store.put('bob', 'alice', 'f2', 'b')).toBe(true);
    expect(await store.seen('c2c', 'alice', 'f2')).toBe(false);
    // A retransmission found stored is recorded too; the window's TTL applies as to remember().
    expect(await store.put('bob', 'alice', 'f2', 'b', 'c2c')).toBe(false);
    expect(await store.seen('c2c', 'alice', 'f2')).toBe(true);
    advance(1000);
    expect(await store.seen('c2c', 'alice', 'f1')).toBe(false);
    // A refused put records nothing.
    const full = await open({ maxRows: 1 });
    await full.store.put('bob', 'alice', 'g1', 'x');
    await refusal(full.store.put('bob', 'alice', 'g2', 'y', 'c2c'));
    expect(await full.store.seen('c2c', 'alice', 'g2')).toBe(false);
  });

  it('refuses a put past the global byte quota, counting UTF-8 bytes, and takes one again after a removal', async () => {
    const { store } = await open({ maxBytes: 10 });
    expect(await store.put('bob', 'alice', 'f1', 'éé✓')).toBe(true); // 7 bytes
    expect((await refusal(store.put('bob', 'alice', 'f2', 'abcd'))).reason).toBe('quota');
    expect(await store.put('bob', 'alice', 'f2', 'abc')).toBe(true);
    await store.remove('bob', 'alice', 'f1');
    expect(await store.put('bob', 'alice', 'f3', 'abcdefg')).toBe(true);
    expect(await store.total()).toBe(2);
  });

  it('keeps non-ASCII and colon-laden user ids and fps apart and returns them intact', async () => {
    const { store } = await open();
    const from = '用户:1';
    await store.put('接收者', from, 'fp:é', 'frame 1');
    await store.put('接收者', '用户', ':1fp:é', 'frame 2');
    const rows = await store.list('接收者', 0, 10);
    expect(rows.map((r) => [r.from, r.fp, r.frame])).toEqual([
      [from, 'fp:é', 'frame 1'],
      ['用户', ':1fp:é', 'frame 2'],
    ]);
    expect(await store.remove('接收者', from, 'fp:é')).toBe(true);
    expect((await store.list('接收者', 0, 10)).map((r) => r.from)).toEqual(['用户']);
  });

  it('sweeps expired messages (not one before its TTL), reports them to onExpired with receiver and fp, and frees the quota', async () => {
    const expired: ExpiredMessage[] = [];
    const { store, advance } = await open({ ttlMs: 1000, maxRows: 3, sweepBatch: 2, onExpired: (m) => expired.push(...m) });
    await store.put('接收者', 'alice', 'f1', 'one');
    await store.put('bob', 'alice', 'f2', 'two');
    advance(500);
    await store.put('bob', 'alice', 'f3', 'three');
    expect((await refusal(store.put('bob', 'alice', 'f4', 'x'))).reason).toBe('quota');
    advance(499);
    await store.sweep();
    expect(expired).toEqual([]);
    advance(1);
    await store.sweep();
    // Stored in the same millisecond: swept together, in no particular order.
    expect([...expired].sort((x, y) => x.fp.localeCompare(y.fp))).toEqual([
      { to: '接收者', fp: 'f1', frame: 'one' },
      { to: 'bob', fp: 'f2', frame: 'two' },
    ]);
    expect(await store.total()).toBe(1);
    expect(await store.count('bob')).toBe(1);
    expect(await store.put('bob', 'alice', 'f4', 'x')).toBe(true);
    expect((await store.list('bob', 0, 10)).map((r) => r.fp)).toEqual(['f3', 'f4']);
  });

  it('lists past expired messages still waiting for the sweep, and a limit counts listed messages only', async () => {
    const { store, advance } = await open({ ttlMs: 1000 });
    for (let i = 0; i < 5; i++) await store.put('bob', 'alice', `old${i}`, 'x');
    advance(600);
    for (let i = 0; i < 3; i++) await store.put('bob', 'alice', `new${i}`, 'x');
    advance(400);
    expect((await store.list('bob', 0, 2)).map((r) => r.fp)).toEqual(['new0', 'new1']);
    const all = await store.list('bob', 0, 10);
    expect(all.map((r) => r.fp)).toEqual(['new0', 'new1', 'new2']);
    expect((await store.list('bob', all[1].seq, 10)).map((r) => r.fp)).toEqual(['new2']);
  });

  it("bounds a window by bytes too: past maxBytes the oldest sender's fp is forgotten", async () => {
    // Each entry is charged 64 bytes plus its key's bytes ("5:alice" + fp): 64 + 9 = 73 for fN.
    const { store } = await open({ dedup: { c2c: { ttlMs: 60_000, max: 1000, maxBytes: 3 * 73 } } });
    for (const fp of ['f1', 'f2', 'f3']) await store.remember('c2c', 'alice', fp);
    expect(await store.seen('c2c', 'alice', 'f1')).toBe(true);
    await store.remember('c2c', 'alice', 'f4');
    expect(await store.seen('c2c', 'alice', 'f1')).toBe(false);
    expect(await store.seen('c2c', 'alice', 'f2')).toBe(true);
    expect(await store.seen('c2c', 'alice', 'f4')).toBe(true);
  });

  it('a key remembered again after it expired is charged once: the byte bound still holds afterwards', async () => {
    const { store, advance } = await open({ dedup: { c2c: { ttlMs: 1000, max: 1000, maxBytes: 2 * 73 } } });
    await store.remember('c2c', 'alice', 'f1');
    advance(1000);
    expect(await store.seen('c2c', 'alice', 'f1')).toBe(false);
    await store.remember('c2c', 'alice', 'f1');
    await store.remember('c2c', 'alice', 'f2');
    await store.remember('c2c', 'alice', 'f3');
    expect(await store.seen('c2c', 'alice', 'f1')).toBe(false);
    expect(await store.seen('c2c', 'alice', 'f3')).toBe(true);
  });

  it('checkAndRemember is atomic across connections: of 20 concurrent checks of one fp exactly one is new', async () => {
    const { store } = await open();
    // A second connection on the same keys (another node).
    const { store: other } = await open({ keyPrefix: `s${prefixes}:` });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? store : other).checkAndRemember('c2s', 'alice', 'same')));
    expect(results.filter((seen) => !seen).length).toBe(1);
  });

  it('answers each call as of the calls made before it: a list made in the same turn as a removal or put sees it', async () => {
    // As the replay does: the receiver's ACK removes its message (not awaited) and a recheck lists the store.
    const { store } = await open();
    await store.put('bob', 'alice', 'f1', 'a');
    const removed = store.remove('bob', 'alice', 'f1');
    const listed = store.list('bob', 0, 10);
    expect(await removed).toBe(true);
    expect((await listed).map((m) => m.fp)).toEqual([]);
    const put = store.put('bob', 'alice', 'f2', 'b', 'c2c');
    const listedAgain = store.list('bob', 0, 10);
    expect(await put).toBe(true);
    expect((await listedAgain).map((m) => m.fp)).toEqual(['f2']);
  });

  it('leaves out of a listing the messages whose removal was sent after it, and still lists up to its limit past them', async () => {
    // The listing runs before the removals (the receiver ACKed while it was on its way): it still shows
    // f1 and f2, which are left out. An empty answer would tell a replay that nothing is left after f2.
    const { store } = await open();
    for (const fp of ['f1', 'f2', 'f3']) await store.put('bob', 'alice', fp, fp);
    const listed = store.list('bob', 0, 2);
    const removed = [store.remove('bob', 'alice', 'f1'), store.remove('bob', 'alice', 'f2')];
    expect((await listed).map((m) => m.fp)).toEqual(['f3']);
    expect(await Promise.all(removed)).toEqual([true, true]);
    expect((await store.list('bob', 0, 2)).map((m) => m.fp)).toEqual(['f3']);
  });

  it('refuses to open on a Redis that evicts keys under memory pressure, naming the setting', async () => {
    const admin = new Redis(redis.url);
    try {
      await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
      await expect(RedisMessageStore.open({ redis: redis.url, logger: silentLogger })).rejects.toThrow(/maxmemory-policy allkeys-lru.*noeviction/);
    } finally {
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      admin.disconnect();
    }
  });

  it('a put whose script fails after writing the message says it may have written it, alone or in a batch; one Redis refused before any write does not', async () => {
    const { store } = await open();
    const prefix = `s${prefixes}:`;
    const admin = new Redis(redis.url);
    try {
      // The expiry index becomes a string: the script fails at its ZADD, after the message's own writes.
      await admin.set(`${prefix}exp`, 'not a sorted set');
      const alone = await refusal(store.put('bob', 'alice', 'f1', 'one'));
      expect([alone.reason, alone.mayHaveWritten]).toEqual(['unavailable', true]);
      // Two puts in one turn go as one batched script: each call's failure is its own, and says so too.
      const batched = await Promise.all([refusal(store.put('bob', 'alice', 'f2', 'two')), refusal(store.put('carol', 'alice', 'f3', 'three'))]);
      expect(batched.map((e) => [e.reason, e.mayHaveWritten])).toEqual([['unavailable', true], ['unavailable', true]]);
      // Redis does hold them: the sender must not be told they were refused.
      expect(await admin.hexists(`${prefix}f:bob`, '5:alicef1')).toBe(1);
      expect(await admin.hexists(`${prefix}f:carol`, '5:alicef3')).toBe(1);
      // A retransmission finds the message stored and succeeds.
      await admin.del(`${prefix}exp`);
      expect(await store.put('bob', 'alice', 'f1', 'one')).toBe(false);

      // Over maxmemory, Redis refuses a script's first write: nothing is written, a plain refusal.
      await admin.config('SET', 'maxmemory', '1');
      const oom = await refusal(store.put('dave', 'alice', 'f4', 'four'));
      expect([oom.reason, oom.mayHaveWritten]).toEqual(['unavailable', false]);
      expect(oom.message).toMatch(/OOM/);
      const oomBatch = await Promise.all([refusal(store.put('dave', 'alice', 'f5', 'five')), refusal(store.put('erin', 'alice', 'f6', 'six'))]);
      expect(oomBatch.map((e) => e.mayHaveWritten)).toEqual([false, false]);
      expect(await admin.exists(`${prefix}f:dave`, `${prefix}f:erin`)).toBe(0);
    } finally {
      await admin.config('SET', 'maxmemory', '0');
      admin.disconnect();
    }
  });

  it('a put Redis refuses at its first write (no good replicas, a read-only replica, a failed RDB save) wrote nothing: a plain refusal, alone or in a batch', async () => {
    const { store } = await open();
    const prefix = `s${prefixes}:`;
    const admin = new Redis(redis.url);
    const dir = ((await admin.config('GET', 'dir')) as string[])[1];
    let n = 0;
    /** A put alone and two in one batch, under the refusal `set` makes: each says nothing was written, and nothing was. */
    const refusedBeforeAnyWrite = async (code: string, set: () => Promise<unknown>, reset: () => Promise<unknown>) => {
      const puts = [`u${++n}`, `u${++n}`, `u${++n}`];
      await set();
      try {
        const alone = await refusal(store.put(puts[0], 'alice', 'f', 'one'));
        const batched = await Promise.all([refusal(store.put(puts[1], 'alice', 'f', 'two')), refusal(store.put(puts[2], 'alice', 'f', 'three'))]);
        for (const e of [alone, ...batched]) expect([e.reason, e.mayHaveWritten, e.message.includes(code)]).toEqual(['unavailable', false, true]);
        expect(await admin.exists(...puts.map((to) => `${prefix}f:${to}`), `${prefix}seq`)).toBe(0);
      } finally {
        await reset();
      }
      // Nothing was stored: each is stored now as a new message.
      expect(await Promise.all(puts.map((to) => store.put(to, 'alice', 'f', 'again')))).toEqual([true, true, true]);
      await admin.del(`${prefix}seq`);
    };
    try {
      await refusedBeforeAnyWrite('NOREPLICAS', () => admin.config('SET', 'min-replicas-to-write', '1'), () => admin.config('SET', 'min-replicas-to-write', '0'));
      // A replica of a primary it never reaches (a demoted primary, after a failover elsewhere).
      await refusedBeforeAnyWrite('READONLY', async () => admin.replicaof('127.0.0.1', String(await closedPort())), () => admin.replicaof('NO', 'ONE'));
      // The RDB file's path is a directory: the snapshot fails, and Redis refuses writes until one succeeds.
      await refusedBeforeAnyWrite(
        'MISCONF',
        async () => {
          mkdirSync(join(dir, 'dump.rdb', 'blocked'), { recursive: true });
          await admin.config('SET', 'save', '3600 1');
          // SCHEDULE: after the AOF rewrite Redis may be running.
          await admin.bgsave('SCHEDULE');
          await vi.waitFor(async () => expect(await admin.info('persistence')).toMatch(/rdb_bgsave_in_progress:0[\s\S]*rdb_last_bgsave_status:err/), { timeout: 10_000, interval: 20 });
        },
        async () => {
          await admin.config('SET', 'save', '');
          rmSync(join(dir, 'dump.rdb'), { recursive: true, force: true });
        },
      );
    } finally {
      admin.disconnect();
    }
  });

  it('rejects bad options naming them', async () => {
    await expect(RedisMessageStore.open({ redis: redis.url, ttlMs: 0 })).rejects.toThrow(/ttlMs/);
    await expect(RedisMessageStore.open({ redis: redis.url, durability: 'sometimes' as 'always' })).rejects.toThrow(/durability/);
    await expect(RedisMessageStore.open({ redis: 42 as unknown as string })).rejects.toThrow(/ioredis client or a redis:\/\/ URL/);
  });
});
