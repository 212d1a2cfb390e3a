/**
 * `options.url` as a list (mini-program domains, a cluster without a balancer): each client walks the list
 * in its own order, drawn once from its seeded `random()`, whose first draw picks the entry it starts at; a
 * connect or login that fails, or a server going away, moves to the next entry of that walk (wrapping
 * around); a session that was online tries its URL again first; a refused login, a kickout and a logout
 * stay. One URL behaves as before and draws nothing from `random()`.
 */
import { describe, expect, it, vi } from 'vitest';
import { IMClient } from '../../src/client';
import type { FakeSocket } from '../helpers/fake-adapter';
import { createFakeAdapter } from '../helpers/fake-adapter';
import { loginOnline, makeClient, seededRandom, useFakeTimersPerTest } from '../helpers/setup';

useFakeTimersPerTest();

const URLS = ['ws://a/websocket', 'ws://b/websocket', 'ws://c/websocket'];

/** The entry a client given `seed` starts at: the first draw of that seed, scaled to the list. */
const startOf = (seed: number, n = URLS.length): number => Math.floor(seededRandom(seed)() * n);

/** A seed whose first draw starts a list of URLS.length entries at `index`. */
function seedStartingAt(index: number): number {
  for (let seed = 1; seed < 1000; seed++) if (startOf(seed) === index) return seed;
  throw new Error(`no seed starts at ${index}`);
}

/** Fails the connect under way: the socket closes before it opened (1006, as a refused connection). */
const refuse = (s: FakeSocket): void => s.serverClose(1006, '');

/**
 * The URLs a client given `seed` tries over `attempts` first logins that cannot connect, in order: its
 * walk of the list (a client with the same seed walks it the same way).
 */
async function walkOf(seed: number, urls: readonly string[] = URLS, attempts = urls.length): Promise<string[]> {
  const ctx = makeClient({ url: urls, random: seededRandom(seed) });
  const tried: string[] = [];
  for (let i = 0; i < attempts; i++) {
    const p = ctx.client.login({ userId: 'u1' });
    tried.push(ctx.fake.last.url);
    refuse(ctx.fake.last);
    await expect(p).rejects.toMatchObject({ code: 'CONNECT_FAILED' });
  }
  ctx.client.destroy();
  return tried;
}

describe('url as a list', () => {
  it('starts at the entry the seeded random() picks, and connects there', async () => {
    const starts = new Set<number>();
    for (const index of [0, 1, 2]) {
      const seed = seedStartingAt(index);
      const ctx = makeClient({ url: URLS, random: seededRandom(seed) });
      expect(ctx.client.url).toBe(URLS[index]);
      const sock = await loginOnline(ctx);
      expect(sock.url).toBe(URLS[index]);
      expect(ctx.client.url).toBe(URLS[index]);
      starts.add(index);
      ctx.client.destroy();
    }
    expect(starts.size).toBe(3);
  });

  it('moves to the next entry of its walk after each failed connect, wrapping around, while it reconnects', async () => {
    const seed = seedStartingAt(1);
    const walk = await walkOf(seed);
    expect(walk[0]).toBe(URLS[1]);
    const ctx = makeClient({ url: URLS, random: seededRandom(seed) });
    const first = await loginOnline(ctx);
    expect(first.url).toBe(URLS[1]);
    // The online session is lost: the first attempt goes back to the URL it was on.
    first.serverClose(1006, '');
    ctx.client.reconnectNow();
    expect(ctx.fake.last.url).toBe(URLS[1]);
    // Each failed connect moves one on along the walk, then wraps around to its start.
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      refuse(ctx.fake.last);
      expect(ctx.client.state).toBe('reconnecting');
      ctx.client.reconnectNow();
      seen.push(ctx.fake.last.url);
    }
    expect(seen).toEqual([walk[1], walk[2], walk[0]]);
    // A connect that throws counts as failed too.
    ctx.fake.last.open();
    ctx.fake.last.loginResponse(0);
    expect(ctx.client.state).toBe('online');
    ctx.fake.last.serverClose(1006, '');
    ctx.fake.failNextConnect(new Error('bad url'));
    ctx.client.reconnectNow();
    expect(ctx.client.url).toBe(walk[1]);
    ctx.client.reconnectNow();
    expect(ctx.fake.last.url).toBe(walk[1]);
    ctx.client.destroy();
  });

  it('a first login that cannot connect names the URL it tried, and the next login() tries the next', async () => {
    const seed = seedStartingAt(2);
    const walk = await walkOf(seed);
    const ctx = makeClient({ url: URLS, random: seededRandom(seed) });
    const p = ctx.client.login({ userId: 'u1', token: 't' });
    expect(ctx.fake.last.url).toBe(URLS[2]);
    refuse(ctx.fake.last);
    await expect(p).rejects.toMatchObject({ code: 'CONNECT_FAILED', message: `could not reach ${URLS[2]}: connection refused or lost` });
    expect(ctx.client.url).toBe(walk[1]);
    const sock = await loginOnline(ctx);
    expect(sock.url).toBe(walk[1]);
    ctx.client.destroy();
  });

  it('a login that times out moves on; one answered in time stays', async () => {
    const seed = seedStartingAt(0);
    const walk = await walkOf(seed);
    const ctx = makeClient({ url: URLS, random: seededRandom(seed), loginTimeoutMs: 4000 });
    const online = await loginOnline(ctx);
    online.serverClose(1006, '');
    ctx.client.reconnectNow();
    const silent = ctx.fake.last;
    expect(silent.url).toBe(URLS[0]);
    silent.open();
    await vi.advanceTimersByTimeAsync(3999);
    expect(ctx.client.state).toBe('authenticating');
    expect(ctx.client.url).toBe(URLS[0]);
    await vi.advanceTimersByTimeAsync(1);
    expect(ctx.of('state').at(-1)).toEqual({ from: 'authenticating', to: 'reconnecting', reason: 'login-timeout' });
    expect(ctx.client.url).toBe(walk[1]);
    ctx.client.reconnectNow();
    expect(ctx.fake.last.url).toBe(walk[1]);
    ctx.client.destroy();
  });

  it('a session that was online stays on its URL when the keep-alive gives up', async () => {
    const ctx = makeClient({ url: URLS, random: seededRandom(seedStartingAt(2)), keepAlive: { intervalMs: 1000, timeoutMs: 3000 } });
    await loginOnline(ctx);
    await vi.advanceTimersByTimeAsync(3000);
    expect(ctx.of('state').at(-1)).toMatchObject({ to: 'reconnecting', reason: 'keepalive-timeout' });
    expect(ctx.client.url).toBe(URLS[2]);
    ctx.client.reconnectNow();
    expect(ctx.fake.last.url).toBe(URLS[2]);
    ctx.client.destroy();
  });

  it.each([
    ['error 336', (s: FakeSocket) => s.deliver({ type: 52, to: '-1', dataContent: '{"errorCode":336,"errorMsg":"server shutting down; reconnect"}' })],
    ['close 1001', (s: FakeSocket) => s.serverClose(1001, 'going away')],
  ])('a server going away (%s) sends the next attempt to the next URL', async (_name, goAway) => {
    const seed = seedStartingAt(1);
    const walk = await walkOf(seed);
    const ctx = makeClient({ url: URLS, random: seededRandom(seed) });
    const sock = await loginOnline(ctx);
    goAway(sock);
    expect(ctx.of('state').at(-1)).toEqual({ from: 'online', to: 'reconnecting', reason: 'server-going-away' });
    expect(ctx.client.url).toBe(walk[1]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(ctx.fake.last.url).toBe(walk[1]);
    expect(ctx.fake.sockets).toHaveLength(2);
    ctx.client.destroy();
  });

  it('a refused login, a kickout and a logout stay on the URL', async () => {
    const ctx = makeClient({ url: URLS, random: seededRandom(seedStartingAt(1)) });
    // Refused: the server answered, so the address works; the next login() goes to it again.
    const p = ctx.client.login({ userId: 'u1', token: 'bad' });
    ctx.fake.last.open();
    ctx.fake.last.loginResponse(1025);
    await expect(p).rejects.toMatchObject({ code: 'LOGIN_REJECTED' });
    expect(ctx.client.url).toBe(URLS[1]);
    // Kicked.
    let sock = await loginOnline(ctx);
    expect(sock.url).toBe(URLS[1]);
    sock.deliver({ type: 54, to: 'u1', dataContent: '{"code":1}' });
    expect(ctx.client.state).toBe('closed');
    expect(ctx.client.url).toBe(URLS[1]);
    // Logged out.
    sock = await loginOnline(ctx);
    expect(sock.url).toBe(URLS[1]);
    await ctx.client.logout();
    expect(ctx.client.url).toBe(URLS[1]);
    sock = await loginOnline(ctx);
    expect(sock.url).toBe(URLS[1]);
    ctx.client.destroy();
  });

  it('keeps its own copy of the list', async () => {
    const seed = seedStartingAt(0);
    const walk = await walkOf(seed);
    const urls = [...URLS];
    const ctx = makeClient({ url: urls, random: seededRandom(seed) });
    // The caller's list keeps its order: the client draws its walk over its copy.
    expect(urls).toEqual(URLS);
    urls[0] = 'ws://changed/websocket';
    urls.length = 1;
    const sock = await loginOnline(ctx);
    expect(sock.url).toBe(URLS[0]);
    sock.serverClose(1006, '');
    ctx.client.reconnectNow();
    refuse(ctx.fake.last);
    ctx.client.reconnectNow();
    expect(ctx.fake.last.url).toBe(walk[1]);
    ctx.client.destroy();
  });
});

describe('each client walks the list in its own random order', () => {
  const MORE_NODES = ['ws://n0/websocket', 'ws://n1/websocket', 'ws://n2/websocket', 'ws://n3/websocket', 'ws://n4/websocket', 'ws://n5/websocket'];
  const NODES = MORE_NODES.slice(0, 4);

  it("a dead node's clients spread evenly over the other nodes, not all onto the one after it", async () => {
    const CLIENTS = 3000;
    // next[d][k]: how many of the clients online at node d went on to node k once d died.
    const next = NODES.map(() => NODES.map(() => 0));
    for (let i = 0; i < CLIENTS; i++) {
      const ctx = makeClient({ url: NODES, random: seededRandom(10_000 + i) });
      const sock = await loginOnline(ctx);
      const dead = NODES.indexOf(sock.url);
      // The node dies: the link drops, the retry at the same URL is refused, the client moves on.
      sock.serverClose(1006, '');
      ctx.client.reconnectNow();
      expect(ctx.fake.last.url).toBe(sock.url);
      refuse(ctx.fake.last);
      ctx.client.reconnectNow();
      const to = ctx.fake.last.url;
      expect(to).toBe(ctx.client.url);
      next[dead][NODES.indexOf(to)]++;
      ctx.client.destroy();
    }
    for (const [dead, counts] of next.entries()) {
      const failed = counts.reduce((a, b) => a + b, 0);
      // Each node starts about a quarter of the clients.
      expect(failed / CLIENTS).toBeGreaterThan(0.2);
      expect(failed / CLIENTS).toBeLessThan(0.3);
      expect(counts[dead]).toBe(0);
      for (const [k, count] of counts.entries()) {
        if (k === dead) continue;
        expect(count / failed, `node ${dead} dead: share of node ${k}`).toBeGreaterThan(0.25);
        expect(count / failed, `node ${dead} dead: share of node ${k}`).toBeLessThan(0.42);
      }
    }
  });

  it.each([2, 3, 4, 5, 6])('a client visits all %i entries in its first attempts, then goes round the same walk again', async (n) => {
    const urls = MORE_NODES.slice(0, n);
    const walks = new Set<string>();
    for (let seed = 1; seed <= 50; seed++) {
      const tried = await walkOf(seed, urls, 2 * n);
      const walk = tried.slice(0, n);
      expect([...walk].sort()).toEqual([...urls].sort());
      expect(tried.slice(n)).toEqual(walk);
      // The first entry is the one the first draw picks, as before walks were drawn.
      expect(walk[0]).toBe(urls[Math.floor(seededRandom(seed)() * n)]);
      walks.add(walk.join());
    }
    // One fixed cyclic order would give only its n rotations; the clients draw different orders.
    if (n <= 3) expect(walks.size).toBe(n === 2 ? 2 : 6);
    else expect(walks.size).toBeGreaterThan(2 * n);
  });

  it.each([1, 2, 3, 6])('a list of %i entries draws one number fewer from random(), all at construction', (n) => {
    const random = vi.fn(seededRandom(5));
    const ctx = makeClient({ url: MORE_NODES.slice(0, n), random });
    expect(random).toHaveBeenCalledTimes(n - 1);
    // Nothing else was drawn: the next number is the n-th of the sequence (for one URL, its first).
    const rest = seededRandom(5);
    for (let i = 0; i < n - 1; i++) rest();
    expect(random()).toBe(rest());
    ctx.client.destroy();
  });
});

describe('one URL', () => {
  it('as a string or a list of one: the same address every time, and no draw from random()', async () => {
    for (const url of ['ws://only/websocket', ['ws://only/websocket']]) {
      const random = vi.fn(seededRandom(3));
      const ctx = makeClient({ url, random, reconnect: { minDelayMs: 0, maxDelayMs: 0 } });
      expect(random).not.toHaveBeenCalled();
      expect(ctx.client.url).toBe('ws://only/websocket');
      const first = ctx.client.login({ userId: 'u1' });
      refuse(ctx.fake.last);
      await expect(first).rejects.toMatchObject({ code: 'CONNECT_FAILED' });
      const sock = await loginOnline(ctx);
      sock.serverClose(1001, '');
      await vi.advanceTimersByTimeAsync(1000);
      refuse(ctx.fake.last);
      await vi.advanceTimersByTimeAsync(0);
      expect(ctx.fake.sockets.map((s) => s.url)).toEqual(Array(ctx.fake.sockets.length).fill('ws://only/websocket'));
      expect(ctx.fake.sockets.length).toBeGreaterThanOrEqual(4);
      ctx.client.destroy();
    }
  });
});

describe('validation of options.url', () => {
  const adapter = createFakeAdapter().adapter;
  // A hole past the first entry: Array#some and #every would skip it.
  const sparse = [...URLS];
  delete sparse[1];
  it.each([
    ['an empty list', []],
    ['an empty string', ''],
    ['an empty string in a list', ['ws://a/websocket', '']],
    ['a number in a list', ['ws://a/websocket', 5]],
    ['a nested list', [['ws://a/websocket']]],
    ['a list with a hole', sparse],
    ['a number', 5],
    ['null', null],
    ['nothing', undefined],
    ['an object', { 0: 'ws://a/websocket', length: 1 }],
  ])('refuses %s with a TypeError naming options.url', (_name, url) => {
    expect(() => new IMClient({ url: url as never, adapter })).toThrow(TypeError);
    expect(() => new IMClient({ url: url as never, adapter })).toThrow(/options\.url/);
  });

  it('accepts a string and a non-empty list of non-empty strings', () => {
    for (const url of ['ws://a/websocket', ['ws://a/websocket'], URLS]) expect(new IMClient({ url, adapter }).url).toMatch(/^ws:\/\//);
  });
});
