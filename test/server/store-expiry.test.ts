import { afterEach, describe, expect, it, vi } from 'vitest';
import { createServer, silentLogger, SqliteOfflineStore, type IMServer } from '../../server/src/index';
import type { ExpiredMessage, StoreClock } from '../../server/src/offline-store';
import { ackFrame, dataFrame, login, useServers } from './helpers';

const { setup } = useServers();
const stores: SqliteOfflineStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  vi.useRealTimers();
});

const T0 = 1_800_000_000_000;

/** A clock that moves only when told; `advanceTo` runs the timers due by then, in order. */
function manualClock(): StoreClock & { advanceTo(ms: number): void; setNow(ms: number): void } {
  let now = T0;
  let nextId = 1;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimeout: (fn, ms) => {
      const id = nextId++;
      timers.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout: (id) => void timers.delete(id as number),
    setNow: (ms) => void (now = ms),
    advanceTo(ms) {
      for (;;) {
        let due: [number, { at: number; fn: () => void }] | undefined;
        for (const entry of timers) if (entry[1].at <= ms && (!due || entry[1].at < due[1].at)) due = entry;
        if (!due) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].fn();
      }
      now = ms;
    },
  };
}

function store(clock: StoreClock, o: { ttlMs: number; sweepIntervalMs?: number; onExpired?: (m: ExpiredMessage[]) => void }): SqliteOfflineStore {
  const s = new SqliteOfflineStore(null, { clock, logger: silentLogger, ...o });
  stores.push(s);
  return s;
}

describe('message time to live', () => {
  it('lists a stored message until ttlMs after it was stored, not from then on, even before any sweep', async () => {
    const clock = manualClock();
    const s = store(clock, { ttlMs: 10_000, sweepIntervalMs: 3_600_000 });
    await s.put('u', 'sender', 'fp-1', '{"fp":"fp-1"}');
    clock.advanceTo(T0 + 9_999);
    expect(s.list('u', 0, 10).map((m) => m.fp)).toEqual(['fp-1']);
    clock.advanceTo(T0 + 10_000);
    expect(s.list('u', 0, 10)).toEqual([]);
    expect(s.total()).toBe(1);
  });

  it('removes expired messages in the background in batches, reports them, and keeps the younger ones', async () => {
    const clock = manualClock();
    const expired: ExpiredMessage[][] = [];
    const s = store(clock, { ttlMs: 10_000, sweepIntervalMs: 1_000, onExpired: (m) => void expired.push(m) });
    await Promise.all(Array.from({ length: 2500 }, (_, i) => s.put(`user${i % 7}`, 'sender', `fp-${i}`, `{"n":${i}}`)));
    clock.advanceTo(T0 + 5_000);
    await s.put('young', 'sender', 'fp-young', '{"young":true}');
    const bytesAll = s.usage().bytes;
    clock.advanceTo(T0 + 9_999);
    expect(s.total()).toBe(2501);
    expect(expired).toEqual([]);

    clock.advanceTo(T0 + 10_000);
    await vi.waitFor(() => expect(s.total()).toBe(1));
    expect(expired.map((batch) => batch.length)).toEqual([1000, 1000, 500]);
    expect(expired.flat().map((m) => m.fp).sort()).toEqual(Array.from({ length: 2500 }, (_, i) => `fp-${i}`).sort());
    expect(expired[0][0]).toEqual({ to: 'user0', fp: 'fp-0', frame: '{"n":0}' });
    expect(s.usage()).toEqual({ rows: 1, bytes: Buffer.byteLength('{"young":true}') });
    expect(bytesAll).toBeGreaterThan(s.usage().bytes);
    expect(s.count('user0')).toBe(0);
    expect(s.list('young', 0, 10).map((m) => m.fp)).toEqual(['fp-young']);

    clock.advanceTo(T0 + 14_999);
    expect(s.total()).toBe(1);
    clock.advanceTo(T0 + 15_000);
    expect(s.total()).toBe(0);
  });

  it('never replays a message past its TTL to a user who logs in, though the sweeper has not removed it yet', async () => {
    const clock = manualClock();
    const s = store(clock, { ttlMs: 60_000, sweepIntervalMs: 3_600_000 });
    const { ws } = await setup({ store: s });
    const a = await ws();
    await login(a, 'sender');
    a.send(dataFrame('sender', 'late', 'old news', 'fp-ttl'));
    expect((await a.nextOfType(4)).dataContent).toBe('fp-ttl');

    clock.advanceTo(T0 + 59_999);
    const early = await ws();
    await login(early, 'late');
    expect((await early.nextOfType(2)).fp).toBe('fp-ttl');
    early.close();

    clock.advanceTo(T0 + 60_000);
    const late = await ws();
    await login(late, 'late');
    expect(await late.quiet(200)).toEqual([]);
    expect(s.total()).toBe(1);
    late.send(ackFrame('late', 'sender', 'fp-ttl'));
    await expect.poll(() => s.total()).toBe(0);
  });

  it('reports a stored push that expired unACKed to onLost, exactly at messageTtlMs', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    vi.setSystemTime(T0);
    const lost: string[] = [];
    const ttl = 3_600_000;
    let server: IMServer | null = null;
    try {
      server = await createServer({
        ws: false,
        tcp: false,
        udp: false,
        http: false,
        logger: silentLogger,
        messageTtlMs: ttl,
        hooks: { onLost: (frames) => void lost.push(...frames.map((f) => f.fp as string)) },
      });
      const sent = await server.sendToUser('away', 'expires', { fp: 'fp-push' });
      expect(sent.status).toBe('stored');
      vi.advanceTimersByTime(ttl - 1);
      expect(lost).toEqual([]);
      expect(server.metrics().offlinePending).toBe(1);
      vi.advanceTimersByTime(1);
      expect(lost).toEqual(['fp-push']);
      expect(server.metrics().offlinePending).toBe(0);
    } finally {
      await server?.close();
    }
  });
});
