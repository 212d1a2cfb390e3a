import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OfflineStoreError, silentLogger } from '../../server/src/index';
import type { PresenceEntry } from '../../server/src/presence';
import { RedisPresence, type PresenceLapse, type RedisPresenceOptions } from '../../server/src/presence-redis';
import { RedisMessageStore } from '../../server/src/store-redis';
import { startRedisServer, type RedisServer } from '../helpers/redis-server';

/**
 * Redis-specific behaviour of the cluster seams on a private redis-server: arbitration between two nodes,
 * concurrent claims, a node that stops refreshing, a node id restarted, a Redis killed and restarted.
 */

const T0 = 1_800_000_000_000;
const entry = (node: string, session: number, firstLoginTime: number): PresenceEntry => ({ node, session, firstLoginTime });

let redis: RedisServer;
let prefixes = 0;
const toClose: Array<{ close(): Promise<void> }> = [];
beforeAll(async () => void (redis = await startRedisServer()));
afterAll(() => redis?.stop());
afterEach(async () => void (await Promise.all(toClose.splice(0).map((c) => c.close().catch(() => {})))));

async function node(nodeId: string, keyPrefix: string, o: Partial<RedisPresenceOptions> = {}): Promise<RedisPresence> {
  const p = await RedisPresence.open({ redis: redis.url, nodeId, keyPrefix, logger: silentLogger, ...o });
  toClose.push(p);
  return p;
}

/** Polls `check` every 20 ms until it holds or `withinMs` is over; returns whether it held. */
async function eventually(check: () => Promise<boolean>, withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      if (await check()) return true;
    } catch {
      // not yet (Redis reconnecting)
    }
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('RedisPresence across nodes', () => {
  it('arbitrates a user between two nodes: newer kicks, equal replaces silently, older is refused', async () => {
    const prefix = `p${++prefixes}:`;
    const a = await node('A', prefix);
    const b = await node('B', prefix);
    const onA = entry('A', 1, T0);
    expect(await a.claim('u', onA, 0)).toEqual({ kind: 'take' });
    const onB = entry('B', 7, T0 + 10);
    expect(await b.claim('u', onB, T0 + 10)).toEqual({ kind: 'replace', old: onA, kick: true });
    const backOnA = entry('A', 2, T0 + 10);
    expect(await a.claim('u', backOnA, T0 + 10)).toEqual({ kind: 'replace', old: onB, kick: false });
    expect(await b.claim('u', entry('B', 8, T0 + 20), T0 + 5)).toEqual({ kind: 'reject' });
    expect(await b.locate('u')).toEqual(backOnA);
    expect(await b.list()).toEqual(['u']);
    expect(await a.count()).toBe(1);
    // The superseded node cannot release what it no longer holds.
    expect(await b.release('u', 'B', 7)).toBe(false);
    expect(await a.release('u', 'A', 2)).toBe(true);
    expect(await b.count()).toBe(0);
  });

  it('abandoning a claim gives the user back to the session it replaced, unless that session was released meanwhile', async () => {
    const prefix = `p${++prefixes}:`;
    const a = await node('A', prefix);
    const b = await node('B', prefix);
    await a.claim('u', entry('A', 1, T0), 0);
    await b.claim('u', entry('B', 2, T0 + 1), 0);
    await b.abandon('u', 2);
    expect(await a.locate('u')).toEqual(entry('A', 1, T0));
    // B claims again; A's session ends (its release finds B's entry) before B's claim is abandoned.
    await b.claim('u', entry('B', 3, T0 + 1), 0);
    expect(await a.release('u', 'A', 1)).toBe(false);
    await b.abandon('u', 3);
    expect(await a.locate('u')).toBeNull();
    expect(await a.list()).toEqual([]);
  });

  it('50 concurrent pairs of claims for one user each, from two nodes, leave exactly one holder per user', async () => {
    const prefix = `p${++prefixes}:`;
    const a = await node('A', prefix);
    const b = await node('B', prefix);
    const users = Array.from({ length: 50 }, (_, i) => `user${i}`);
    const verdicts = await Promise.all(users.map((u, i) => Promise.all([a.claim(u, entry('A', i, T0), 0), b.claim(u, entry('B', i, T0 + 1), 0)])));
    for (const [i, u] of users.entries()) {
      const [va, vb] = verdicts[i];
      const holder = await a.locate(u);
      // One took the free user, the other replaced it with a kick; the holder is the one that came second.
      expect([va.kind, vb.kind].sort()).toEqual(['replace', 'take']);
      const second = va.kind === 'replace' ? entry('A', i, T0) : entry('B', i, T0 + 1);
      const first = va.kind === 'replace' ? entry('B', i, T0 + 1) : entry('A', i, T0);
      expect(holder).toEqual(second);
      expect(va.kind === 'replace' ? va : vb).toEqual({ kind: 'replace', old: first, kick: true });
    }
    expect(await a.count()).toBe(50);
    expect([...(await b.list())].sort()).toEqual([...users].sort());
  });

  it("a node that stops refreshing loses its users within its TTL, and the live node collects them", async () => {
    const prefix = `p${++prefixes}:`;
    const own = new Redis(redis.url, { lazyConnect: true });
    own.on('error', () => {});
    await own.connect();
    const a = await node('A', prefix, { redis: own, ttlMs: 300, refreshMs: 100 });
    const b = await node('B', prefix, { ttlMs: 1000, refreshMs: 100 });
    await a.claim('u1', entry('A', 1, T0), 0);
    await a.claim('u2', entry('A', 2, T0), 0);
    await new Promise((r) => setTimeout(r, 400));
    // Refreshed: alive past its TTL.
    expect(await b.locate('u1')).toEqual(entry('A', 1, T0));
    own.disconnect();
    const stoppedAt = Date.now();
    expect(await b.count()).toBe(2);
    expect(await eventually(async () => (await b.locate('u1')) === null, 2000)).toBe(true);
    // Within the TTL (300 ms) plus the last refresh's interval (100 ms) and polling slack, not just "eventually".
    expect(Date.now() - stoppedAt).toBeLessThan(1500);
    expect(await b.list()).toEqual([]);
    expect(await b.count()).toBe(0);
    expect(await b.claim('u1', entry('B', 1, T0 + 1), T0 + 1)).toEqual({ kind: 'take' });
    // B's refreshes delete the dead node's entries and forget the node.
    const raw = new Redis(redis.url);
    try {
      expect(await eventually(async () => (await raw.exists(`${prefix}p:u2`)) === 0 && (await raw.sismember(`${prefix}nodes`, 'A')) === 0, 2000)).toBe(true);
      expect(await raw.hget(`${prefix}p:u1`, 'node')).toBe('B');
    } finally {
      raw.disconnect();
    }
  });

  it('a process given the node id of a live one is refused; one restarted after a crash takes the id over without reviving the old users, and the old one hears of the conflict', async () => {
    const prefix = `p${++prefixes}:`;
    const lapses: PresenceLapse[] = [];
    const own = new Redis(redis.url, { lazyConnect: true });
    own.on('error', () => {});
    await own.connect();
    const old = await node('A', prefix, { redis: own, refreshMs: 50, ttlMs: 5000, onLapse: (r) => lapses.push(r) });
    await old.claim('u', entry('A', 1, T0), 0);
    // Live (refreshing every 50 ms): a second process with its id is refused, and changes nothing.
    await expect(node('A', prefix, { refreshMs: 50, ttlMs: 5000 })).rejects.toThrow(/node id "A" is in use by a live process/);
    expect(await old.locate('u')).toEqual(entry('A', 1, T0));
    // Crashed (no more refreshes, its key still there): taken over once seen not to be re-armed.
    own.disconnect();
    const restarted = await node('A', prefix, { refreshMs: 50, ttlMs: 5000 });
    expect(await restarted.locate('u')).toBeNull();
    expect(await restarted.claim('v', entry('A', 1, T0), 0)).toEqual({ kind: 'take' });
    expect(await restarted.list()).toEqual(['v']);
    // Were the old process to come back, it hears of the conflict and may not claim under the id.
    await own.connect();
    expect(await eventually(async () => lapses.includes('conflict'), 1000)).toBe(true);
    await expect(old.claim('w', entry('A', 2, T0), 0)).rejects.toThrow(/another process/);
    expect(await restarted.list()).toEqual(['v']);
  });
});

describe('RedisPresence lapses', () => {
  it('a node whose registration expired hears of it at its next refresh (onLapse "lapsed") and is registered again', async () => {
    const prefix = `l${++prefixes}:`;
    const lapses: PresenceLapse[] = [];
    const a = await node('A', prefix, { refreshMs: 50, ttlMs: 1000, onLapse: (r) => lapses.push(r) });
    const b = await node('B', prefix);
    await a.claim('u', entry('A', 1, T0), 0);
    const raw = new Redis(redis.url);
    try {
      // As if the node had stalled past its TTL: its key is gone, its users offline for everyone.
      await raw.del(`${prefix}alive:A`);
      expect(await b.locate('u')).toBeNull();
      expect(await eventually(async () => lapses.includes('lapsed'), 1000)).toBe(true);
      expect(await b.locate('u')).toEqual(entry('A', 1, T0));
      expect(lapses).not.toContain('conflict');
    } finally {
      raw.disconnect();
    }
  });
});

describe('Redis killed and restarted', () => {
  // A failed case must not leave Redis down for the next ones.
  let restartIfDown = false;
  afterEach(async () => {
    if (restartIfDown) await redis.restart();
    restartIfDown = false;
  });

  it('presence and store reject while Redis is down (put: OfflineStoreError "unavailable"), and work again after a restart without being recreated; a SIGKILL loses no ACKed message', async () => {
    const prefix = `k${++prefixes}:`;
    const p = await node('A', prefix, { refreshMs: 100, ttlMs: 3000 });
    const store = await RedisMessageStore.open({ redis: redis.url, keyPrefix: prefix, logger: silentLogger, sweepIntervalMs: 100 });
    toClose.push(store);
    // Until the SIGKILL: with everysec Redis may postpone its AOF write and answer anyway (the restart
    // brings back the file's own everysec).
    const config = new Redis(redis.url);
    await config.config('SET', 'appendfsync', 'always').finally(() => config.disconnect());
    expect(await store.put('bob', 'alice', 'f1', '{"fp":"f1"}')).toBe(true);
    await store.remember('c2c', 'alice', 'f1');
    await p.claim('u', entry('A', 1, T0), 0);

    await redis.kill();
    restartIfDown = true;
    const refused = await store.put('bob', 'alice', 'f2', 'x').catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(OfflineStoreError);
    expect((refused as OfflineStoreError).reason).toBe('unavailable');
    await expect(p.claim('v', entry('A', 2, T0), 0)).rejects.toThrow();
    await expect(p.locate('u')).rejects.toThrow();
    await expect(store.list('bob', 0, 10)).rejects.toThrow();
    await expect(store.checkAndRemember('c2s', 'alice', 'f')).rejects.toThrow();
    expect(await eventually(async () => !store.health().ok, 2000)).toBe(true);
    // Timers keep failing while it is down (refresh, sweep): nothing throws out of them.
    await new Promise((r) => setTimeout(r, 300));

    await redis.restart();
    restartIfDown = false;
    expect(await eventually(async () => store.health().ok && (await store.total()) >= 0, 5000)).toBe(true);
    expect(await eventually(async () => (await p.locate('u')) !== undefined, 5000)).toBe(true);
    // What was ACKed before the SIGKILL is still there (appendfsync always: fsynced before the answer).
    expect((await store.list('bob', 0, 10)).map((r) => r.fp)).toEqual(['f1']);
    expect(await store.seen('c2c', 'alice', 'f1')).toBe(true);
    expect(await p.locate('u')).toEqual(entry('A', 1, T0));
    expect(await store.put('bob', 'alice', 'f2', 'x')).toBe(true);
    expect(await p.claim('v', entry('A', 2, T0), 0)).toEqual({ kind: 'take' });
    expect(await store.total()).toBe(2);
  });

  it('the AOF keeps stored messages, their order and the totals across a Redis restart', async () => {
    const prefix = `r${++prefixes}:`;
    const store = await RedisMessageStore.open({ redis: redis.url, keyPrefix: prefix, logger: silentLogger });
    toClose.push(store);
    for (let i = 0; i < 20; i++) await store.put('bob', `s${i % 3}`, `f${i}`, `frame ${i} ✓`);
    await store.remove('bob', 's0', 'f0');
    await redis.restart();
    expect(await eventually(async () => (await store.total()) === 19, 5000)).toBe(true);
    const rows = await store.list('bob', 0, 100);
    expect(rows.map((r) => r.fp)).toEqual(Array.from({ length: 19 }, (_, i) => `f${i + 1}`));
    expect(rows[4]).toMatchObject({ from: 's2', fp: 'f5', frame: 'frame 5 ✓' });
    expect(await store.count('bob')).toBe(19);
  });

  it('durability "always" refuses a Redis that fsyncs every second, naming the setting', async () => {
    await expect(RedisMessageStore.open({ redis: redis.url, durability: 'always', logger: silentLogger })).rejects.toThrow(/appendfsync always.*appendfsync everysec/);
  });
});
