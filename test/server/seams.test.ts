import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { OfflineStoreError, silentLogger, SqliteOfflineStore } from '../../server/src/index';
import type { Presence, PresenceEntry } from '../../server/src/presence';
import { LocalPresence } from '../../server/src/presence-local';
import type { MessageStore } from '../../server/src/store';
import { LocalMessageStore } from '../../server/src/store-local';
import { makeRedisPresence, makeRedisStore, stopSharedRedis } from './redis-seams';

/**
 * Conformance suites for the server's seams: the same behavioural cases run against every implementation
 * of Presence and MessageStore through a factory. A shared (cluster) implementation adds its own factory
 * to the lists below; `node` names the process a handle belongs to, so a shared implementation hands out
 * one client per node and the cases check that what one node writes, another sees.
 */

/** Handles on one presence, as seen from each node. */
interface PresenceHarness {
  at(node: string): Presence;
  close(): Promise<void>;
}

/** Bounds of a store under test; the harness moves its clock with `advance`. */
interface StoreBounds {
  maxRows: number;
  ttlMs: number;
  dedupTtlMs: number;
  dedupMax: number;
}

/** Handles on one store, as seen from each node. */
interface StoreHarness {
  at(node: string): MessageStore;
  /** Moves the time every TTL is judged by. */
  advance(ms: number): Promise<void>;
  close(): Promise<void>;
}

const presenceImplementations: Array<[string, () => Promise<PresenceHarness>]> = [
  [
    'local',
    async () => {
      const p = new LocalPresence();
      return { at: () => p, close: async () => p.close() };
    },
  ],
  ['redis', makeRedisPresence],
];

const storeImplementations: Array<[string, (b: StoreBounds) => Promise<StoreHarness>]> = [
  [
    'local (SQLite in memory)',
    async (b) => {
      // Only Date is faked: the store's and the windows' TTLs read Date.now(), their timers stay real.
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(T0);
      const offline = new SqliteOfflineStore(null, { maxRows: b.maxRows, ttlMs: b.ttlMs, logger: silentLogger });
      const dedup = { ttlMs: b.dedupTtlMs, max: b.dedupMax, maxBytes: Number.POSITIVE_INFINITY };
      const store = new LocalMessageStore(offline, { c2s: dedup, c2c: dedup });
      return {
        at: () => store,
        advance: async (ms) => void vi.setSystemTime(Date.now() + ms),
        close: async () => {
          await store.close();
          offline.close();
        },
      };
    },
  ],
  ['redis', (b) => makeRedisStore(b, T0)],
];

const T0 = 1_800_000_000_000;
afterAll(stopSharedRedis);
const entry = (node: string, session: number, firstLoginTime: number): PresenceEntry => ({ node, session, firstLoginTime });

describe.each(presenceImplementations)('Presence conformance: %s', (_name, make) => {
  let h: PresenceHarness;
  beforeEach(async () => void (h = await make()));
  afterEach(() => h.close());

  it('takes a user no one holds, and locates and lists it from any node', async () => {
    const a = entry('n1', 1, T0);
    expect(await h.at('n1').claim('u', a, 0)).toEqual({ kind: 'take' });
    expect(await h.at('n2').locate('u')).toEqual(a);
    expect(await h.at('n2').list()).toEqual(['u']);
    expect(await h.at('n1').count()).toBe(1);
    expect(await h.at('n1').locate('nobody')).toBeNull();
  });

  it('a first login (firstLoginTime 0) replaces the holder with a kick, whichever node it arrives on', async () => {
    const old = entry('n1', 1, T0);
    const next = entry('n2', 1, T0 + 5);
    await h.at('n1').claim('u', old, 0);
    expect(await h.at('n2').claim('u', next, 0)).toEqual({ kind: 'replace', old, kick: true });
    expect(await h.at('n1').locate('u')).toEqual(next);
  });

  it('a newer firstLoginTime replaces with a kick; an equal one replaces silently; an older one is refused and changes nothing', async () => {
    const p = h.at('n1');
    const first = entry('n1', 1, T0);
    await p.claim('u', first, 0);
    const newer = entry('n1', 2, T0 + 1);
    expect(await p.claim('u', newer, T0 + 1)).toEqual({ kind: 'replace', old: first, kick: true });
    const same = entry('n2', 3, T0 + 1);
    expect(await h.at('n2').claim('u', same, T0 + 1)).toEqual({ kind: 'replace', old: newer, kick: false });
    expect(await p.claim('u', entry('n1', 4, T0 + 7), T0)).toEqual({ kind: 'reject' });
    expect(await p.locate('u')).toEqual(same);
    expect(await p.count()).toBe(1);
  });

  it('a session claiming again what it holds takes it', async () => {
    const a = entry('n1', 1, T0);
    await h.at('n1').claim('u', a, 0);
    expect(await h.at('n1').claim('u', a, T0)).toEqual({ kind: 'take' });
  });

  it('releases a user only for the session holding it (not a superseded one, not the same id on another node)', async () => {
    const p = h.at('n1');
    await p.claim('u', entry('n1', 1, T0), 0);
    await p.claim('u', entry('n1', 2, T0 + 1), 0);
    expect(await p.release('u', 'n1', 1)).toBe(false);
    expect(await h.at('n2').release('u', 'n2', 2)).toBe(false);
    expect((await p.locate('u'))?.session).toBe(2);
    expect(await p.release('u', 'n1', 2)).toBe(true);
    expect(await p.locate('u')).toBeNull();
    expect(await p.release('u', 'n1', 2)).toBe(false);
    expect(await p.list()).toEqual([]);
  });

  it('keeps users apart', async () => {
    const p = h.at('n1');
    await p.claim('a', entry('n1', 1, T0), 0);
    await p.claim('b', entry('n1', 2, T0), 0);
    expect(await p.claim('a', entry('n1', 3, T0 + 1), T0 - 1)).toEqual({ kind: 'reject' });
    expect([...(await p.list())].sort()).toEqual(['a', 'b']);
    await p.release('a', 'n1', 1);
    expect(await p.list()).toEqual(['b']);
  });
});

describe.each(storeImplementations)('MessageStore conformance: %s', (_name, make) => {
  let h: StoreHarness;
  const bounds: StoreBounds = { maxRows: 5, ttlMs: 60_000, dedupTtlMs: 10_000, dedupMax: 100 };
  beforeEach(async () => void (h = await make(bounds)));
  afterEach(async () => {
    await h.close();
    vi.useRealTimers();
  });

  it('puts, lists oldest first from a cursor, counts and removes one sender\'s message', async () => {
    const s = h.at('n1');
    expect(await s.put('bob', 'alice', 'f1', '{"fp":"f1"}')).toBe(true);
    expect(await s.put('bob', 'alice', 'f2', '{"fp":"f2"}')).toBe(true);
    expect(await s.put('carol', 'alice', 'f1', '{"fp":"f1"}')).toBe(true);
    const rows = await h.at('n2').list('bob', 0, 10);
    expect(rows.map((r) => [r.from, r.fp, r.frame])).toEqual([
      ['alice', 'f1', '{"fp":"f1"}'],
      ['alice', 'f2', '{"fp":"f2"}'],
    ]);
    expect(rows[1].seq).toBeGreaterThan(rows[0].seq);
    expect((await s.list('bob', rows[0].seq, 10)).map((r) => r.fp)).toEqual(['f2']);
    expect((await s.list('bob', 0, 1)).map((r) => r.fp)).toEqual(['f1']);
    expect(await s.count('bob')).toBe(2);
    expect(await s.total()).toBe(3);
    expect(await s.remove('bob', 'alice', 'f1')).toBe(true);
    expect(await s.remove('bob', 'alice', 'f1')).toBe(false);
    expect(await s.count('bob')).toBe(1);
  });

  it('stores a (sender, fp) once per receiver, and two senders\' equal fps apart', async () => {
    const s = h.at('n1');
    expect(await s.put('bob', 'alice', 'f', 'first')).toBe(true);
    expect(await h.at('n2').put('bob', 'alice', 'f', 'again')).toBe(false);
    expect(await s.put('bob', 'mallory', 'f', 'other')).toBe(true);
    expect(await s.remove('bob', 'mallory', 'f')).toBe(true);
    expect((await s.list('bob', 0, 10)).map((r) => [r.from, r.frame])).toEqual([['alice', 'first']]);
  });

  it('refuses a put past the total quota with reason "quota", and takes one again once a message is removed', async () => {
    const s = h.at('n1');
    for (let i = 0; i < bounds.maxRows; i++) await s.put(`u${i}`, 'alice', `f${i}`, 'x');
    const refused = await Promise.resolve()
      .then(() => s.put('late', 'alice', 'fx', 'x'))
      .then(
        () => null,
        (err: unknown) => err,
      );
    expect(refused).toBeInstanceOf(OfflineStoreError);
    expect((refused as OfflineStoreError).reason).toBe('quota');
    expect(await s.count('late')).toBe(0);
    await s.remove('u0', 'alice', 'f0');
    expect(await s.put('late', 'alice', 'fx', 'x')).toBe(true);
  });

  it('no longer lists a message once its TTL is over (one millisecond before, it still does)', async () => {
    const s = h.at('n1');
    await s.put('bob', 'alice', 'f', 'x');
    await h.advance(bounds.ttlMs - 1);
    expect((await s.list('bob', 0, 10)).map((r) => r.fp)).toEqual(['f']);
    await h.advance(1);
    expect(await s.list('bob', 0, 10)).toEqual([]);
  });

  it('recognises a retransmission per window and sender, from any node, until the window\'s TTL is over', async () => {
    const s = h.at('n1');
    expect(await s.seen('c2c', 'alice', 'f')).toBe(false);
    await s.remember('c2c', 'alice', 'f');
    expect(await h.at('n2').seen('c2c', 'alice', 'f')).toBe(true);
    expect(await s.seen('c2c', 'mallory', 'f')).toBe(false);
    expect(await s.seen('c2s', 'alice', 'f')).toBe(false);
    expect(await s.checkAndRemember('c2s', 'alice', 'f')).toBe(false);
    expect(await h.at('n2').checkAndRemember('c2s', 'alice', 'f')).toBe(true);
    await h.advance(bounds.dedupTtlMs - 1);
    expect(await s.seen('c2c', 'alice', 'f')).toBe(true);
    await h.advance(1);
    expect(await s.seen('c2c', 'alice', 'f')).toBe(false);
    expect(await s.checkAndRemember('c2s', 'alice', 'f')).toBe(false);
  });

  it('keys (sender, fp) so that no two pairs collide, whatever characters they hold', async () => {
    const s = h.at('n1');
    await s.remember('c2c', 'a:b', 'c');
    expect(await s.seen('c2c', 'a', 'b:c')).toBe(false);
    expect(await s.seen('c2c', 'a:b', 'c')).toBe(true);
  });

  it('bounds each window: past its size the oldest sender\'s fp is forgotten, the newest still recognised', async () => {
    const s = h.at('n1');
    for (let i = 0; i <= bounds.dedupMax; i++) await s.remember('c2c', 'alice', `f${i}`);
    expect(await s.seen('c2c', 'alice', 'f0')).toBe(false);
    expect(await s.seen('c2c', 'alice', `f${bounds.dedupMax}`)).toBe(true);
  });
});
