import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createFrame } from '../../src/protocol';
import { SenseMode } from '../../src/sense-mode';
import { ServerCore } from '../../server/src/core';
import { DedupWindow } from '../../server/src/dedup';
import { deliver } from '../../server/src/deliver';
import { silentLogger } from '../../server/src/logger';
import { SqliteOfflineStore } from '../../server/src/offline-store';
import { resolveOptions, type ServerOptions } from '../../server/src/options';
import { TokenBucket } from '../../server/src/rate-limit';
import type { Session, TransportName } from '../../server/src/session';
import { stopCores } from './helpers';

/** An in-memory connection: records what the core writes and whether it closed it. */
class FakeLink {
  readonly writes: Array<Record<string, unknown>> = [];
  closed = false;
  session!: Session;
  constructor(private readonly core: ServerCore, readonly transport: TransportName = 'ws', readonly remote = 'fake:1') {}
  write(text: string): boolean {
    if (this.closed) return false;
    this.writes.push(JSON.parse(text) as Record<string, unknown>);
    return true;
  }
  close(): void {
    this.closed = true;
    this.core.closed(this.session);
  }
  ofType(type: number) {
    return this.writes.filter((w) => w.type === type);
  }
}

const stores: SqliteOfflineStore[] = [];
const cores: ServerCore[] = [];

function makeCore(o: ServerOptions = {}) {
  // Puts commit in their turn (no hold timer): these tests step the QoS daemon's timers from the send on.
  const store = new SqliteOfflineStore(null, { holdMs: 0 });
  stores.push(store);
  const core = new ServerCore(resolveOptions({ logger: silentLogger, ...o }), store);
  cores.push(core);
  const connect = (transport: TransportName = 'ws') => {
    const link = new FakeLink(core, transport);
    link.session = core.open(link);
    return link;
  };
  return { core, store, connect };
}

function loginText(uid: string): string {
  return JSON.stringify({ type: 0, dataContent: JSON.stringify({ loginUserId: uid, loginToken: 't', firstLoginTime: 0 }), from: uid, to: '0' });
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  vi.setSystemTime(1_800_000_000_000);
});

afterEach(() => {
  stopCores(cores.splice(0));
  for (const s of stores.splice(0)) s.close();
  vi.useRealTimers();
});

describe('idle expiry', () => {
  it('closes a TCP/WS session exactly at the mode expiry after its last frame', async () => {
    const { core, connect } = makeCore({ senseMode: SenseMode.MODE_5S, loginTimeoutMs: 1e9 });
    const link = connect('ws');
    await vi.advanceTimersByTimeAsync(10_999);
    expect(link.closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(link.closed).toBe(true);
    expect(core.metrics.open.ws).toBe(0);
  });

  it('is reset by every valid frame, echo included', async () => {
    const { core, connect } = makeCore({ senseMode: SenseMode.MODE_3S, loginTimeoutMs: 1e9 });
    const link = connect('ws');
    await vi.advanceTimersByTimeAsync(5_000);
    core.receive(link.session, '{"type":5,"dataContent":"ping"}');
    await vi.advanceTimersByTimeAsync(6_999);
    expect(link.closed).toBe(false);
    expect(link.ofType(53)).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(link.closed).toBe(true);
  });

  it('reports an expired logged-in session through onLogout with kick code -1', async () => {
    const logouts: Array<[string, number]> = [];
    const { core, connect } = makeCore({ senseMode: SenseMode.MODE_3S, hooks: { onLogout: (u, c) => void logouts.push([u, c]) } });
    const link = connect('tcp');
    core.receive(link.session, loginText('idle-user'));
    await vi.advanceTimersByTimeAsync(6_999);
    expect(core.onlineUsers()).toEqual(['idle-user']);
    await vi.advanceTimersByTimeAsync(1);
    expect(logouts).toEqual([['idle-user', -1]]);
    expect(core.onlineUsers()).toEqual([]);
  });

  it('closes each of many sessions exactly at its own deadline, whatever order their frames came in', async () => {
    const { core, connect } = makeCore({ senseMode: SenseMode.MODE_5S, loginTimeoutMs: 1e9 });
    const a = connect('ws');
    await vi.advanceTimersByTimeAsync(1_000);
    const b = connect('tcp');
    await vi.advanceTimersByTimeAsync(1_000);
    const c = connect('ws');
    await vi.advanceTimersByTimeAsync(3_000);
    core.receive(a.session, '{"type":5,"dataContent":"ping"}'); // a: last frame at 5,000, due at 16,000
    await vi.advanceTimersByTimeAsync(6_999); // 11,999: b (due 12,000) and c (due 13,000) still open
    expect([a.closed, b.closed, c.closed]).toEqual([false, false, false]);
    await vi.advanceTimersByTimeAsync(1);
    expect([a.closed, b.closed, c.closed]).toEqual([false, true, false]);
    await vi.advanceTimersByTimeAsync(999);
    expect(c.closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(c.closed).toBe(true);
    await vi.advanceTimersByTimeAsync(2_999);
    expect(a.closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(a.closed).toBe(true);
  });

  it('uses the UDP expiry for UDP sessions', async () => {
    const { connect } = makeCore({ senseMode: SenseMode.MODE_3S, loginTimeoutMs: 1e9 });
    const link = connect('udp');
    await vi.advanceTimersByTimeAsync(9_999);
    expect(link.closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(link.closed).toBe(true);
  });
});

describe('login deadline', () => {
  it('closes a session that has not logged in by the deadline, with error 316', async () => {
    const { connect } = makeCore({ loginTimeoutMs: 5_000 });
    const link = connect();
    await vi.advanceTimersByTimeAsync(4_999);
    expect(link.closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(link.closed).toBe(true);
    expect(JSON.parse(link.ofType(52)[0].dataContent as string).errorCode).toBe(316);
  });

  it('also bounds a login whose verify hook is slower than the deadline', async () => {
    const { core, connect } = makeCore({
      loginTimeoutMs: 5_000,
      hooks: { verifyLogin: () => new Promise<number>((r) => setTimeout(() => r(0), 60_000)) },
    });
    const link = connect();
    core.receive(link.session, loginText('slow'));
    await vi.advanceTimersByTimeAsync(5_000);
    expect(link.closed).toBe(true);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(link.ofType(50)).toEqual([]);
    expect(core.onlineUsers()).toEqual([]);
  });

  it('does not apply once the session is logged in', async () => {
    const { core, connect } = makeCore({ loginTimeoutMs: 5_000 });
    const link = connect();
    core.receive(link.session, loginText('u1'));
    await vi.advanceTimersByTimeAsync(1);
    expect(link.ofType(50)).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(link.closed).toBe(false);
  });
});

describe('server QoS daemon (MobileIMSDK: check 5000 ms, just-sent 2000 ms, 1 retry)', () => {
  async function online(uid: string) {
    const ctx = makeCore({ senseMode: SenseMode.MODE_120S });
    const lost: unknown[] = [];
    ctx.core.opts.hooks.onLost = (frames) => void lost.push(...frames.map((f) => f.fp));
    const link = ctx.connect();
    ctx.core.receive(link.session, loginText(uid));
    await vi.advanceTimersByTimeAsync(0);
    return { ...ctx, link, lost };
  }

  it('retransmits at the first check older than 2000 ms and declares loss one check later', async () => {
    const { core, store, link, lost } = await online('u1');
    core.qos.start();
    const frame = createFrame({ type: 2, dataContent: 'hi', from: '0', to: 'u1', fp: 'fp-1', QoS: true });
    expect(await deliver(core.ctx, frame)).toBe('sent');
    expect(link.ofType(2)).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(4_999);
    expect(link.ofType(2)).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(link.ofType(2)).toHaveLength(2);
    expect(core.metrics.retransmissions).toBe(1);
    await vi.advanceTimersByTimeAsync(4_999);
    expect(lost).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(lost).toEqual(['fp-1']);
    expect(core.metrics.lost).toBe(1);
    expect(store.count('u1')).toBe(1);
  });

  it('does not retransmit a message younger than 2000 ms at a check', async () => {
    const { core, link } = await online('u2');
    core.qos.start();
    await vi.advanceTimersByTimeAsync(3_500);
    await deliver(core.ctx, createFrame({ type: 2, dataContent: 'hi', from: '0', to: 'u2', fp: 'fp-2', QoS: true }));
    await vi.advanceTimersByTimeAsync(1_500);
    expect(link.ofType(2)).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(link.ofType(2)).toHaveLength(2);
  });

  it('settles on the receiver\'s ACK and removes the stored copy', async () => {
    const { core, store, link } = await online('u3');
    core.qos.start();
    const outcomes: string[] = [];
    await deliver(core.ctx, createFrame({ type: 2, dataContent: 'hi', from: '0', to: 'u3', fp: 'fp-3', QoS: true }), (o) => void outcomes.push(o));
    expect(store.count('u3')).toBe(1);
    core.receive(link.session, JSON.stringify({ type: 4, dataContent: 'fp-3', from: 'u3', to: '0' }));
    await vi.advanceTimersByTimeAsync(0);
    await new Promise((r) => setImmediate(r));
    expect(outcomes).toEqual(['delivered']);
    expect(store.count('u3')).toBe(0);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(link.ofType(2)).toHaveLength(1);
  });
});

describe('hooks that never settle', () => {
  const never = () => new Promise<never>(() => undefined);
  const c2c = (from: string, to: string, fp: string) =>
    JSON.stringify({ type: 2, dataContent: 'hi', from, to, fp, QoS: true });

  it('answers error 318 once a before hook has not settled within hookTimeoutMs, and keeps serving the connection', async () => {
    const { core, connect } = makeCore({ senseMode: SenseMode.MODE_120S, hookTimeoutMs: 10_000, hooks: { beforeC2C: never } });
    const link = connect();
    core.receive(link.session, loginText('a'));
    await vi.advanceTimersByTimeAsync(0);
    core.receive(link.session, c2c('a', 'b', 'fp-stuck'));
    core.receive(link.session, JSON.stringify({ type: 1, dataContent: '{}', from: 'a', to: '0' }));
    await vi.advanceTimersByTimeAsync(9_999);
    expect(link.ofType(52)).toEqual([]);
    expect(link.ofType(51)).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(JSON.parse(link.ofType(52)[0].dataContent as string).errorCode).toBe(318);
    expect(link.ofType(4)).toEqual([]);
    expect(link.ofType(51)).toHaveLength(1);
    expect(link.closed).toBe(false);
  });

  it('treats an onOffline hook that has not settled within hookTimeoutMs as a refusal', async () => {
    const { core } = makeCore({ hookTimeoutMs: 10_000, hooks: { onOffline: never } });
    const results: string[] = [];
    void deliver(core.ctx, createFrame({ type: 2, dataContent: 'hi', from: '0', to: 'away', fp: 'fp-off', QoS: true })).then((r) => void results.push(r));
    await vi.advanceTimersByTimeAsync(9_999);
    expect(results).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(results).toEqual(['dropped']);
  });
});

describe('C2S dedup window', () => {
  it('remembers a key for exactly ttlMs', () => {
    const d = new DedupWindow(600_000, 100);
    expect(d.checkAndAdd('a', 0)).toBe(false);
    expect(d.checkAndAdd('a', 599_999)).toBe(true);
    expect(d.checkAndAdd('a', 600_000)).toBe(false);
    expect(d.checkAndAdd('a', 1_199_999)).toBe(true);
  });

  it('holds at most max keys, dropping the oldest', () => {
    const d = new DedupWindow(600_000, 3);
    for (const k of ['a', 'b', 'c', 'd']) d.checkAndAdd(k, 1);
    expect(d.size).toBe(3);
    expect(d.checkAndAdd('a', 2)).toBe(false);
    expect(d.checkAndAdd('d', 2)).toBe(true);
  });
});

describe('rate limit token bucket', () => {
  it('allows the burst, then one frame per refill interval', () => {
    const b = new TokenBucket({ burst: 2, perSecond: 1 }, 0);
    expect(b.take(0)).toBe(true);
    expect(b.take(0)).toBe(true);
    expect(b.take(0)).toBe(false);
    expect(b.take(999)).toBe(false);
    expect(b.take(1_000 + 1)).toBe(true);
  });
});
