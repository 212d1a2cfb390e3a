import { afterEach, describe, expect, it, vi } from 'vitest';
import { IMClient } from '../../src/client';
import { IMError } from '../../src/errors';
import { MsgType } from '../../src/protocol';
import { canMove } from '../../src/state';
import { createTabSharedClient, TabSharedClient, type TabSharedOptions } from '../../src/tab-shared';
import { decodeError, decodeEvent, encodeError, encodeEvent } from '../../src/tab-shared-wire';
import { createFakeAdapter, type FakeSocket } from '../helpers/fake-adapter';
import { createFakeOrigin, type FakeTab } from '../helpers/fake-tabs';
import { seededRandom } from '../helpers/random';
import { useFakeTimersPerTest } from '../helpers/setup';

useFakeTimersPerTest();

const FLT = 1700000000123;
const LOCK = 'mobileimsdk|ws://test/websocket|alice';
const flush = () => vi.advanceTimersByTimeAsync(0);
let all: TabSharedClient[] = [];

afterEach(async () => {
  for (const c of all) c.destroy();
  all = [];
  await flush();
});

/** Tabs of one fake origin, each with its own fake adapter, client and event log. */
function makeTabs(n: number, options: Partial<TabSharedOptions> = {}) {
  const origin = createFakeOrigin();
  const tabs = Array.from({ length: n }, (_, i) => makeTab(origin, i, options));
  return { origin, tabs };
}

function makeTab(origin: ReturnType<typeof createFakeOrigin>, i: number, options: Partial<TabSharedOptions> = {}) {
  const tab: FakeTab = origin.tab();
  const fake = createFakeAdapter();
  const logger = { debug: vi.fn(), warn: vi.fn(), error: vi.fn() };
  const client = createTabSharedClient({
    url: 'ws://test/websocket',
    adapter: fake.adapter,
    random: seededRandom(1000 + i * 7),
    logger,
    locks: tab.locks,
    BroadcastChannel: tab.BroadcastChannel,
    ...options,
  }) as TabSharedClient;
  all.push(client);
  const events: Array<[string, any]> = [];
  const illegal: string[] = [];
  for (const type of ['state', 'message', 'delivered', 'lost', 'kicked', 'reconnect', 'error'] as const) {
    client.on(type, (e: unknown) => events.push([type, e]));
  }
  client.on('state', ({ from, to, reason }) => {
    if (!canMove(from, to)) illegal.push(`${from} -> ${to} (${reason})`);
  });
  const of = (type: string) => events.filter((e) => e[0] === type).map((e) => e[1]);
  return { tab, fake, logger, client, events, of, illegal, states: () => of('state').map((s) => s.to) };
}

type Tab = ReturnType<typeof makeTab>;

/** Logs every tab in, the first as the leader answering with FLT; returns the leader's socket. */
async function loginAll(tabs: Tab[]): Promise<FakeSocket> {
  const first = tabs[0].client.login({ userId: 'alice', token: 't' });
  await flush();
  const socket = tabs[0].fake.last;
  socket.open();
  socket.loginResponse(0, FLT);
  await first;
  for (const t of tabs.slice(1)) {
    const p = t.client.login({ userId: 'alice', token: 't' });
    await flush();
    await expect(p).resolves.toEqual({ userId: 'alice', firstLoginTime: FLT });
  }
  return socket;
}

/** A promise's settlements, counted. */
function track<T>(p: Promise<T>) {
  const r = { resolved: 0, rejected: 0, value: undefined as T | undefined, error: undefined as unknown };
  p.then(
    (v) => {
      r.resolved++;
      r.value = v;
    },
    (e: unknown) => {
      r.rejected++;
      r.error = e;
    },
  );
  return r;
}

describe('createTabSharedClient', () => {
  it('falls back to a plain IMClient, one connection per tab, without Web Locks or BroadcastChannel, and logs why', () => {
    const origin = createFakeOrigin();
    const t = origin.tab();
    for (const missing of [{ locks: null }, { BroadcastChannel: null }] as const) {
      const logger = { debug: vi.fn(), warn: vi.fn(), error: vi.fn() };
      const base = { url: 'ws://test/websocket', adapter: createFakeAdapter().adapter, logger, locks: t.locks, BroadcastChannel: t.BroadcastChannel };
      const client = createTabSharedClient({ ...base, ...missing });
      expect(client).toBeInstanceOf(IMClient);
      expect(logger.warn).toHaveBeenCalledWith(expect.stringMatching(/falling back to one connection per tab/));
      client.destroy();
    }
    // Node has no navigator.locks: the defaults fall back too.
    const logger = { debug: vi.fn(), warn: vi.fn(), error: vi.fn() };
    const client = createTabSharedClient({ url: 'ws://test/websocket', adapter: createFakeAdapter().adapter, logger });
    expect(client).toBeInstanceOf(IMClient);
    expect(logger.warn).toHaveBeenCalledWith('tab-shared: no Web Locks here; falling back to one connection per tab');
    client.destroy();
  });

  it('rejects login() with CONNECT_FAILED when the Web Lock request is refused (a sandboxed frame)', async () => {
    const t = createFakeOrigin().tab();
    const logger = { debug: vi.fn(), warn: vi.fn(), error: vi.fn() };
    const locks = { request: () => Promise.reject(new Error('SecurityError')) };
    const c = createTabSharedClient({ url: 'ws://test/websocket', adapter: createFakeAdapter().adapter, logger, locks, BroadcastChannel: t.BroadcastChannel }) as TabSharedClient;
    all.push(c);
    await expect(c.login({ userId: 'alice' })).rejects.toMatchObject({ code: 'CONNECT_FAILED' });
    expect(c.state).toBe('closed');
    expect(logger.warn).toHaveBeenCalledWith('tab-shared: the lock request failed', expect.any(Error));
  });

  it('checks its options like IMClient does', () => {
    const t = createFakeOrigin().tab();
    const base = { url: 'ws://test/websocket', adapter: createFakeAdapter().adapter, locks: t.locks, BroadcastChannel: t.BroadcastChannel };
    expect(() => createTabSharedClient({ ...base, url: '' })).toThrow(TypeError);
    expect(() => createTabSharedClient({ ...base, endHoldMs: -1 })).toThrow(/endHoldMs/);
    const c = createTabSharedClient(base) as TabSharedClient;
    expect(() => c.login({ userId: 'a', firstLoginTime: -5 })).toThrow(/firstLoginTime/);
    c.destroy();
  });
});

describe('one connection for all tabs', () => {
  it('elects one leader: only it connects, and every tab goes online with its firstLoginTime', async () => {
    const { tabs, origin } = makeTabs(3);
    await loginAll(tabs);
    expect(tabs.map((t) => t.fake.sockets.length)).toEqual([1, 0, 0]);
    expect(tabs.map((t) => t.client.isLeader)).toEqual([true, false, false]);
    expect(origin.holder(LOCK)).toBe(tabs[0].tab);
    for (const t of tabs) {
      expect(t.client.state).toBe('online');
      expect(t.client.firstLoginTime).toBe(FLT);
      expect(t.states()).toEqual(['connecting', 'authenticating', 'online']);
      expect(t.of('state').at(-1)).toMatchObject({ from: 'authenticating', to: 'online', reason: 'logged-in' });
      expect(t.illegal).toEqual([]);
    }
  });

  it('gives every tab each message once, a retransmission included', async () => {
    const { tabs } = makeTabs(3);
    const socket = await loginAll(tabs);
    const frame = { type: MsgType.DATA, from: 'bob', to: 'alice', dataContent: 'hi', fp: 'fp-1', QoS: true };
    socket.deliver(frame);
    socket.deliver(frame);
    await flush();
    for (const t of tabs) expect(t.of('message')).toEqual([expect.objectContaining({ fp: 'fp-1', from: 'bob', content: 'hi' })]);
    expect(socket.sentOfType(MsgType.ACK).map((f) => f.dataContent)).toEqual(['fp-1', 'fp-1']);
  });

  it('sends from a follower with the fingerprint made in that tab; the promise settles there once, every tab sees delivered', async () => {
    const { tabs } = makeTabs(3);
    const socket = await loginAll(tabs);
    const r = track(tabs[1].client.send('bob', 'from B', { typeu: 7 }));
    await flush();
    const [data] = socket.sentOfType(MsgType.DATA);
    expect(data).toMatchObject({ from: 'alice', to: 'bob', dataContent: 'from B', typeu: 7, QoS: true });
    expect(data.fp).toMatch(/^[0-9a-f-]{36}$/);
    expect(tabs[1].client.stats().pending).toBe(1);
    socket.deliver({ type: MsgType.ACK, dataContent: data.fp });
    await flush();
    expect(r).toMatchObject({ resolved: 1, rejected: 0, value: { fp: data.fp, to: 'bob', acked: true } });
    for (const t of tabs) expect(t.of('delivered').map((d) => d.fp)).toEqual([data.fp]);
    expect(tabs[1].client.stats().pending).toBe(0);
  });

  it('passes errors back with their code: a frame too large for the transport', async () => {
    const { tabs } = makeTabs(2);
    await loginAll(tabs);
    const err = await tabs[1].client.send('bob', 'x'.repeat(70000)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IMError);
    expect(err).toMatchObject({ code: 'MESSAGE_TOO_LARGE' });
  });

  it('answers echo() from a follower with the leader\'s round trip', async () => {
    const { tabs } = makeTabs(2);
    const socket = await loginAll(tabs);
    const p = tabs[1].client.echo();
    await flush();
    const [echo] = socket.sentOfType(MsgType.ECHO);
    await vi.advanceTimersByTimeAsync(30);
    socket.deliver({ type: MsgType.ECHO_RESPONSE, dataContent: echo.dataContent });
    await expect(p).resolves.toEqual({ rttMs: 30 });
  });
});

describe('takeover', () => {
  it('the leader crashes mid-flight: the next tab logs in with the same firstLoginTime and re-sends with the same fps; each promise settles once, nobody is kicked', async () => {
    const { tabs, origin } = makeTabs(3);
    const socket = await loginAll(tabs);
    const [a, b, c] = tabs;
    const sends = [track(b.client.send('bob', 'b1')), track(b.client.send('bob', 'b2')), track(c.client.send('bob', 'c1')), track(c.client.send('bob', 'c2'))];
    await flush();
    const fps = socket.sentOfType(MsgType.DATA).map((f) => f.fp);
    expect(fps).toHaveLength(4);
    socket.deliver({ type: MsgType.ACK, dataContent: fps[0] }); // b1 made it before the crash
    await flush();
    a.tab.crash();
    a.client.destroy();
    await flush();
    // B asked for the lock before C: it leads, and is the only new socket.
    expect(origin.holder(LOCK)).toBe(b.tab);
    expect([b.fake.sockets.length, c.fake.sockets.length]).toEqual([1, 0]);
    const s2 = b.fake.last;
    s2.open();
    const login = s2.sentOfType(MsgType.LOGIN)[0];
    expect(JSON.parse(login.dataContent as string)).toMatchObject({ loginUserId: 'alice', firstLoginTime: FLT });
    s2.loginResponse(0, FLT);
    await flush();
    // What was unacknowledged goes again, with the same fps, in the order it was sent.
    expect(s2.sentOfType(MsgType.DATA).map((f) => f.fp)).toEqual(fps.slice(1));
    for (const fp of fps.slice(1)) s2.deliver({ type: MsgType.ACK, dataContent: fp });
    await flush();
    expect(sends.map((s) => [s.resolved, s.rejected])).toEqual([[1, 0], [1, 0], [1, 0], [1, 0]]);
    expect(sends.map((s) => (s.value as { fp: string }).fp)).toEqual(fps);
    for (const t of [b, c]) {
      expect(t.client.state).toBe('online');
      expect(t.of('kicked')).toEqual([]);
      expect(t.of('delivered').map((d) => d.fp)).toEqual(fps);
      expect(t.illegal).toEqual([]);
    }
    expect(c.states()).toEqual(['connecting', 'authenticating', 'online', 'reconnecting', 'connecting', 'authenticating', 'online']);
    expect(c.of('state')[3]).toMatchObject({ from: 'online', to: 'reconnecting' });
    expect(c.of('state')[4]).toMatchObject({ to: 'connecting', reason: 'retry' });
  });

  it('a takeover login that cannot connect retries after the backoff delay instead of ending the session', async () => {
    const { tabs } = makeTabs(2, { reconnect: { minDelayMs: 1000, maxDelayMs: 1000 } });
    await loginAll(tabs);
    const [a, b] = tabs;
    const r = track(b.client.send('bob', 'waits'));
    await flush();
    a.tab.crash();
    a.client.destroy();
    await flush();
    b.fake.last.serverClose(1006, '');
    await flush();
    expect(b.client.state).toBe('reconnecting');
    const [{ attempt, delayMs }] = b.of('reconnect');
    expect(attempt).toBe(1);
    await vi.advanceTimersByTimeAsync(delayMs - 1);
    expect(b.fake.sockets).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(b.fake.sockets).toHaveLength(2);
    b.fake.last.open();
    b.fake.last.loginResponse(0, FLT);
    await flush();
    const [data] = b.fake.last.sentOfType(MsgType.DATA);
    b.fake.last.deliver({ type: MsgType.ACK, dataContent: data.fp });
    await flush();
    expect([r.resolved, r.rejected]).toEqual([1, 0]);
    expect(b.illegal).toEqual([]);
  });

  it('destroy() of the leader hands the connection to another tab', async () => {
    const { tabs, origin } = makeTabs(2);
    const socket = await loginAll(tabs);
    tabs[0].client.destroy();
    expect(socket.closedByClient).not.toBeNull();
    await flush();
    expect(origin.holder(LOCK)).toBe(tabs[1].tab);
    tabs[1].fake.last.open();
    tabs[1].fake.last.loginResponse(0, FLT);
    await flush();
    expect(tabs[1].client.state).toBe('online');
    expect(tabs[1].client.isLeader).toBe(true);
  });

  it('a reloaded page joins as a follower without a second connection', async () => {
    const { tabs, origin } = makeTabs(2);
    const socket = await loginAll(tabs);
    tabs[1].tab.crash();
    tabs[1].client.destroy();
    const again = makeTab(origin, 9);
    await expect(again.client.login({ userId: 'alice', token: 't' })).resolves.toEqual({ userId: 'alice', firstLoginTime: FLT });
    expect(again.fake.sockets).toHaveLength(0);
    socket.deliver({ type: MsgType.DATA, from: 'bob', to: 'alice', dataContent: 'after reload', fp: 'fp-r', QoS: true });
    await flush();
    expect(again.of('message').map((m) => m.content)).toEqual(['after reload']);
  });
});

describe('takeover retries', () => {
  /** Logs three tabs in, crashes the leader, and returns the tab that takes over (B) and the follower (C). */
  async function crashLeader(options: Partial<TabSharedOptions>) {
    const { tabs } = makeTabs(3, options);
    await loginAll(tabs);
    tabs[0].tab.crash();
    tabs[0].client.destroy();
    await flush();
    return { b: tabs[1], c: tabs[2] };
  }

  it('asks getToken() for a fresh token before the takeover login', async () => {
    const getToken = vi.fn(() => Promise.resolve('fresh'));
    const { b } = await crashLeader({ getToken });
    b.fake.last.open();
    expect(getToken).toHaveBeenCalledTimes(1);
    expect(JSON.parse(b.fake.last.sentOfType(MsgType.LOGIN)[0].dataContent as string)).toMatchObject({ loginToken: 'fresh', firstLoginTime: FLT });
  });

  it('reconnectNow() in a follower skips the leader\'s backoff wait', async () => {
    const { b, c } = await crashLeader({ reconnect: { minDelayMs: 60000, maxDelayMs: 60000 } });
    b.fake.last.serverClose(1006, '');
    await flush();
    expect(c.client.state).toBe('reconnecting');
    c.client.reconnectNow();
    await flush();
    expect(b.fake.sockets).toHaveLength(2);
  });

  it('gives up after reconnect.maxAttempts: every tab closes with reconnect-failed and an error event', async () => {
    const { b, c } = await crashLeader({ reconnect: { minDelayMs: 10, maxDelayMs: 10, maxAttempts: 1 } });
    b.fake.last.serverClose(1006, '');
    await vi.advanceTimersByTimeAsync(10);
    b.fake.last.serverClose(1006, '');
    await flush();
    for (const t of [b, c]) {
      expect(t.client.state).toBe('closed');
      expect(t.of('state').at(-1)).toMatchObject({ reason: 'reconnect-failed' });
      expect(t.of('error').map((e) => e.code)).toEqual(['RECONNECT_FAILED']);
      expect(t.illegal).toEqual([]);
    }
    expect(b.fake.sockets).toHaveLength(2);
  });
});

describe('ending the session', () => {
  it('a first login that cannot connect rejects in every tab waiting for it', async () => {
    const { tabs } = makeTabs(2);
    const first = tabs[0].client.login({ userId: 'alice' });
    await flush();
    const second = tabs[1].client.login({ userId: 'alice' });
    await flush();
    expect(tabs[1].client.state).toBe('connecting');
    tabs[0].fake.last.serverClose(1006, '');
    await expect(first).rejects.toMatchObject({ code: 'CONNECT_FAILED' });
    await expect(second).rejects.toMatchObject({ code: 'CONNECT_FAILED' });
    await flush();
    expect(tabs.map((t) => t.client.state)).toEqual(['closed', 'closed']);
    expect(tabs[1].fake.sockets).toHaveLength(0);
  });

  it('logout() in the leader reports its waiting messages lost in every tab', async () => {
    const { tabs } = makeTabs(2);
    const socket = await loginAll(tabs);
    const r = track(tabs[0].client.send('bob', 'pending'));
    await flush();
    await tabs[0].client.logout();
    await flush();
    expect(socket.sentOfType(MsgType.LOGOUT)).toHaveLength(1);
    expect(r).toMatchObject({ rejected: 1, error: expect.objectContaining({ code: 'LOGGED_OUT' }) });
    for (const t of tabs) expect(t.of('lost').map((l) => [l.message.content, l.error.code])).toEqual([['pending', 'LOGGED_OUT']]);
    for (const t of tabs) expect(t.of('lost')[0].error).toBeInstanceOf(IMError);
  });

  it('logout() in a follower logs every tab out; the leader sends the logout; waiting sends are lost', async () => {
    const { tabs, origin } = makeTabs(3);
    const socket = await loginAll(tabs);
    const r = track(tabs[1].client.send('bob', 'never acked'));
    await flush();
    await tabs[2].client.logout();
    expect(tabs[2].client.state).toBe('closed');
    await flush();
    expect(socket.sentOfType(MsgType.LOGOUT)).toHaveLength(1);
    for (const t of tabs) {
      expect(t.client.state).toBe('closed');
      expect(t.of('state').at(-1)).toMatchObject({ to: 'closed', reason: 'logout' });
    }
    expect(r).toMatchObject({ resolved: 0, rejected: 1, error: expect.objectContaining({ code: 'LOGGED_OUT' }) });
    // Every tab acknowledged the end: the lock is free at once, and nobody took over.
    expect(origin.holder(LOCK)).toBeUndefined();
    expect(tabs.map((t) => t.fake.sockets.length)).toEqual([1, 0, 0]);
    await expect(tabs[1].client.send('bob', 'x')).rejects.toMatchObject({ code: 'NOT_ONLINE' });
  });

  it('a kickout reaches every tab', async () => {
    const { tabs } = makeTabs(3);
    const socket = await loginAll(tabs);
    socket.deliver({ type: MsgType.KICKOUT, dataContent: JSON.stringify({ code: 1, reason: 'elsewhere' }) });
    await flush();
    for (const t of tabs) {
      expect(t.of('kicked')).toEqual([{ code: 1, reason: 'elsewhere' }]);
      expect(t.client.state).toBe('closed');
    }
    expect(tabs.map((t) => t.fake.sockets.length)).toEqual([1, 0, 0]);
  });

  it('an ended leader keeps the lock until every tab it knew acknowledged, at most endHoldMs', async () => {
    const { tabs, origin } = makeTabs(3, { endHoldMs: 500 });
    await loginAll(tabs);
    tabs[2].tab.crash(); // C disappears without a word: it will never acknowledge
    await tabs[0].client.logout();
    await flush();
    expect(tabs[1].client.state).toBe('closed');
    expect(origin.holder(LOCK)).toBe(tabs[0].tab);
    await vi.advanceTimersByTimeAsync(499);
    expect(origin.holder(LOCK)).toBe(tabs[0].tab);
    await vi.advanceTimersByTimeAsync(1);
    expect(origin.holder(LOCK)).toBeUndefined();
    expect(tabs[1].fake.sockets).toHaveLength(0);
  });

  it('a login rejected at takeover ends the session for every tab', async () => {
    const { tabs } = makeTabs(3);
    await loginAll(tabs);
    tabs[0].tab.crash();
    tabs[0].client.destroy();
    await flush();
    tabs[1].fake.last.open();
    tabs[1].fake.last.loginResponse(1025);
    await flush();
    for (const t of tabs.slice(1)) {
      expect(t.client.state).toBe('closed');
      expect(t.of('state').at(-1)).toMatchObject({ reason: 'login-rejected' });
      expect(t.of('error')).toEqual([expect.objectContaining({ code: 'LOGIN_REJECTED', serverCode: 1025 })]);
    }
    expect(tabs[2].fake.sockets).toHaveLength(0);
  });
});

describe('the channel encoding', () => {
  it('keeps an IMError\'s class, code, server code and extra fields, and the class of a TypeError', () => {
    const e = Object.assign(new IMError('SERVER_ERROR', 'too big', 311), { limit: 6144 });
    const back = decodeError(structuredClone(encodeError(e))) as IMError & { limit: number };
    expect(back).toBeInstanceOf(IMError);
    expect([back.code, back.message, back.serverCode, back.limit]).toEqual(['SERVER_ERROR', 'too big', 311, 6144]);
    expect(decodeError(structuredClone(encodeError(new TypeError('bad fp'))))).toBeInstanceOf(TypeError);
    const lost = decodeEvent(structuredClone(encodeEvent({ message: { fp: 'x' }, error: e }))) as { error: IMError; message: unknown };
    expect(lost.error).toBeInstanceOf(IMError);
    expect(lost).toEqual({ message: { fp: 'x' }, error: expect.any(IMError) });
    expect(decodeEvent(structuredClone(encodeEvent(e)))).toBeInstanceOf(IMError);
  });
});
