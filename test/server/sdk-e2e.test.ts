import { createServer as createNetServer } from 'node:net';
import { WebSocket } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { createBrowserAdapter } from '../../adapters/browser';
import { IMClient, type IncomingMessage } from '../../src/index';
import type { IMServer } from '../../server/src/index';
import { seededRandom } from '../helpers/random';
import { admin, closeAll, dataFrame, errorOf, login, startServer, WsClient, type RawClient } from './helpers';

/** End to end: our SDK (browser adapter over `ws`) against the real server code on ephemeral ports. */
const clients: IMClient[] = [];
const raws: RawClient[] = [];
const servers: IMServer[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await closeAll(raws.splice(0), servers.splice(0));
});

function sdk(port: number): IMClient {
  const c = new IMClient({
    url: `ws://127.0.0.1:${port}/websocket`,
    adapter: createBrowserAdapter({ WebSocket: WebSocket as never, window: null, document: null }),
  });
  clients.push(c);
  return c;
}

function inbox(c: IMClient): IncomingMessage[] {
  const got: IncomingMessage[] = [];
  c.on('message', (m) => void got.push(m));
  return got;
}

async function setup(opts: Parameters<typeof startServer>[0] = {}) {
  const server = await startServer(opts);
  servers.push(server);
  return { server, port: server.ports.ws! };
}

describe('SDK end to end', () => {
  it('logs in, echoes, and sends C2C with a delivered receipt', async () => {
    const { server, port } = await setup();
    const alice = sdk(port);
    const bob = sdk(port);
    const bobInbox = inbox(bob);
    const delivered: string[] = [];
    alice.on('delivered', ({ fp }) => void delivered.push(fp));
    const r = await alice.login({ userId: 'alice', token: 't' });
    expect(r.userId).toBe('alice');
    expect(r.firstLoginTime).toBeGreaterThan(0);
    await bob.login({ userId: 'bob', token: 't' });
    expect(server.onlineUsers().sort()).toEqual(['alice', 'bob']);
    expect((await alice.echo()).rttMs).toBeGreaterThanOrEqual(0);
    const receipt = await alice.send('bob', 'hello bob', { typeu: 9 });
    expect(receipt.acked).toBe(true);
    expect(delivered).toEqual([receipt.fp]);
    await expect.poll(() => bobInbox.map((m) => [m.from, m.content, m.typeu, m.fp])).toEqual([['alice', 'hello bob', 9, receipt.fp]]);
    await expect.poll(() => server.metrics().delivered).toBe(1);
  });

  it('sends C2S to the server hook once', async () => {
    const seen: string[] = [];
    const { port } = await setup({ hooks: { onC2S: (m) => void seen.push(`${m.from}:${m.dataContent}`) } });
    const alice = sdk(port);
    await alice.login({ userId: 'alice' });
    const receipt = await alice.send('0', 'to the server');
    expect(receipt.acked).toBe(true);
    expect(seen).toEqual(['alice:to the server']);
  });

  it('receives an S2C push from the admin API, which answers "delivered"', async () => {
    const { server, port } = await setup();
    const alice = sdk(port);
    const got = inbox(alice);
    await alice.login({ userId: 'alice' });
    const res = await admin(server.ports.http!, 'POST', '/api/send', { to: 'alice', content: 'server says hi', typeu: 2 });
    expect(res.json.status).toBe('delivered');
    expect(got.map((m) => [m.from, m.content, m.typeu, m.fp])).toEqual([['0', 'server says hi', 2, res.json.fp]]);
  });

  it('kicks the first client with code 1 when the same user logs in elsewhere', async () => {
    const { server, port } = await setup();
    const first = sdk(port);
    const kicked: number[] = [];
    first.on('kicked', ({ code }) => void kicked.push(code));
    await first.login({ userId: 'dup' });
    const second = sdk(port);
    await second.login({ userId: 'dup' });
    await expect.poll(() => kicked).toEqual([1]);
    expect(server.onlineUsers()).toEqual(['dup']);
    expect((await second.send('0', 'still here')).acked).toBe(true);
  });

  it('stores messages for an offline user and delivers them in order after login, then clears the store', async () => {
    const { server, port } = await setup();
    const alice = sdk(port);
    await alice.login({ userId: 'alice' });
    const receipts = [];
    for (let i = 0; i < 5; i++) receipts.push(await alice.send('bob', `while away ${i}`));
    expect(receipts.every((r) => r.acked)).toBe(true);
    expect(server.metrics().offlinePending).toBe(5);
    const bob = sdk(port);
    const got = inbox(bob);
    await bob.login({ userId: 'bob' });
    await expect.poll(() => got.map((m) => m.fp)).toEqual(receipts.map((r) => r.fp));
    expect(got.map((m) => m.content)).toEqual([0, 1, 2, 3, 4].map((i) => `while away ${i}`));
    await expect.poll(() => server.metrics().offlinePending).toBe(0);
    expect(server.metrics().offlineDelivered).toBe(5);
  });

  it('never shows a spoofed message to the SDK user', async () => {
    const { port } = await setup();
    const bob = sdk(port);
    const got = inbox(bob);
    await bob.login({ userId: 'bob' });
    const mallory = await WsClient.open(port);
    raws.push(mallory);
    await login(mallory, 'mallory');
    mallory.send(dataFrame('alice', 'bob', 'I am alice', 'fp-fake'));
    expect(errorOf(await mallory.nextOfType(52)).errorCode).toBe(313);
    mallory.send(dataFrame('mallory', 'bob', 'I am mallory', 'fp-real'));
    await expect.poll(() => got.map((m) => [m.from, m.content])).toEqual([['mallory', 'I am mallory']]);
  });

  it('fires onLogout when the SDK logs out', async () => {
    const logouts: Array<[string, number]> = [];
    const { server, port } = await setup({ hooks: { onLogout: (u, c) => void logouts.push([u, c]) } });
    const alice = sdk(port);
    await alice.login({ userId: 'alice' });
    await alice.logout();
    await expect.poll(() => logouts).toEqual([['alice', -1]]);
    expect(server.onlineUsers()).toEqual([]);
  });

});

describe('SDK end to end: url as a list', () => {
  const wsUrl = (port: number): string => `ws://127.0.0.1:${port}/websocket`;

  function sdkOn(url: string | string[], random?: () => number): IMClient {
    const c = new IMClient({ url, random, adapter: createBrowserAdapter({ WebSocket: WebSocket as never, window: null, document: null }) });
    clients.push(c);
    return c;
  }

  /** A seed whose first draw starts a list of `n` URLs at entry 0. */
  function seedStartingAtFirst(n: number): number {
    for (let seed = 1; ; seed++) if (Math.floor(seededRandom(seed)() * n) === 0) return seed;
  }

  /** A loopback port nothing listens on (bound, then released). */
  async function deadPort(): Promise<number> {
    const srv = createNetServer();
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const { port } = srv.address() as { port: number };
    await new Promise((resolve) => srv.close(resolve));
    return port;
  }

  it('given [dead, live] and a seed that starts at the dead one: the login names it, and the next goes to the live one', async () => {
    const { server, port } = await setup();
    const urls = [wsUrl(await deadPort()), wsUrl(port)];
    const alice = sdkOn(urls, seededRandom(seedStartingAtFirst(2)));
    expect(alice.url).toBe(urls[0]);
    await expect(alice.login({ userId: 'alice' })).rejects.toMatchObject({ code: 'CONNECT_FAILED', message: expect.stringContaining(urls[0]) });
    expect(alice.url).toBe(urls[1]);
    await alice.login({ userId: 'alice' });
    expect(alice.state).toBe('online');
    expect(server.onlineUsers()).toEqual(['alice']);
  });

  it('moves from A to B when A shuts down; messages sent in the gap reach a receiver on B once', async () => {
    const a = await setup();
    const b = await setup();
    const urls = [wsUrl(a.port), wsUrl(b.port)];
    const alice = sdkOn(urls, seededRandom(seedStartingAtFirst(2)));
    const bob = sdkOn(urls[1]);
    const got = inbox(bob);
    await alice.login({ userId: 'alice' });
    expect(alice.url).toBe(urls[0]);
    expect(a.server.onlineUsers()).toEqual(['alice']);
    await bob.login({ userId: 'bob' });

    const away = new Promise((resolve) => alice.on('state', (s) => s.to === 'reconnecting' && resolve(s)));
    const down = a.server.shutdown(1000);
    expect(await away).toMatchObject({ from: 'online', reason: 'server-going-away' });
    // In the gap: nothing to send them on yet, so they wait in the outbox.
    const sends = [0, 1, 2].map((i) => alice.send('bob', `gap ${i}`));
    expect(alice.state).toBe('reconnecting');
    await down;

    // Back within the going-away delay (under a second), on B.
    const receipts = await Promise.all(sends);
    expect(receipts.map((r) => r.acked)).toEqual([true, true, true]);
    expect(alice.state).toBe('online');
    expect(alice.url).toBe(urls[1]);
    expect(b.server.onlineUsers().sort()).toEqual(['alice', 'bob']);
    await expect.poll(() => got.map((m) => [m.from, m.content])).toEqual([0, 1, 2].map((i) => ['alice', `gap ${i}`]));
    await expect.poll(() => b.server.metrics().delivered).toBe(3);
    expect(got).toHaveLength(3);
    expect(new Set(got.map((m) => m.fp)).size).toBe(3);
  });
});
