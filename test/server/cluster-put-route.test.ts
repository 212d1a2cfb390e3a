import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { IMServer, ServerOptions } from '../../server/src/index';
import { startRedisServer, type RedisServer } from '../helpers/redis-server';
import { ackFrame, closeAll, dataFrame, login, loginWithCaps, startServer, TcpClient, type RawClient } from './helpers';

/**
 * The put that is also the route (store-redis.ts putAndRoute) against the route that follows a plain put
 * (routing-redis.ts): one sender's messages to one receiver must reach the receiver in the order sent,
 * whichever of the two carries each, with a node whose Redis answers late (a latency proxy).
 */

let redis: RedisServer | null = null;
let cases = 0;
const clients: RawClient[] = [];
const servers: IMServer[] = [];
const proxies: Server[] = [];

afterEach(async () => {
  await closeAll(clients.splice(0), servers.splice(0));
  for (const p of proxies.splice(0)) await new Promise((r) => p.close(r));
});
afterAll(async () => {
  await redis?.stop();
});

/**
 * A TCP proxy to `port` that passes what a client sends at once and what Redis answers (replies and
 * pub/sub messages alike) `delayMs` late, in order: a node far from its Redis. Returns its redis:// URL.
 */
async function latencyProxy(port: number, delayMs: number): Promise<string> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port });
    sockets.add(client).add(upstream);
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => setTimeout(() => client.destroyed || client.write(chunk), delayMs));
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  proxies.push(server);
  const close = server.close.bind(server);
  server.close = ((cb?: (err?: Error) => void) => {
    sockets.forEach((s) => s.destroy());
    return close(cb);
  }) as Server['close'];
  return `redis://127.0.0.1:${(server.address() as { port: number }).port}`;
}

async function node(id: string, redisUrl: string, keyPrefix: string, extra: ServerOptions = {}): Promise<IMServer> {
  // No recheck within the test: what arrives, arrives live.
  const s = await startServer({ nodeId: id, udp: false, ws: false, cluster: { redisUrl, keyPrefix, recheckMs: 60_000 }, ...extra });
  servers.push(s);
  return s;
}

async function tcp(n: IMServer): Promise<TcpClient> {
  const c = await TcpClient.open(n.ports.tcp!);
  clients.push(c);
  return c;
}

describe('cluster: a put that routes, and a put routed after it', () => {
  it("keeps one sender's messages in order when the receiver moves to another node while the first is being stored", async () => {
    redis ??= await startRedisServer();
    const keyPrefix = `pr${++cases}:`;
    const delayMs = 400;
    // Node 1 hears Redis 400 ms late (under the 1 s after which it counts Redis as stalled); node 2 at once.
    const n1 = await node('n1', await latencyProxy(redis.port, delayMs), keyPrefix);
    const n2 = await node('n2', redis.url, keyPrefix);
    const alice = await tcp(n1);
    const bobHere = await tcp(n1);
    await login(alice, 'alice');
    await login(bobHere, 'bob');
    // bob logs in on node 2 (a newer device): node 1 hears of it, and closes its session, 400 ms later.
    const bobThere = await tcp(n2);
    await login(bobThere, 'bob');
    // Node 2's replay at the login has listed the (empty) store well before m1 is put.
    await new Promise((r) => setTimeout(r, 150));
    // m1 reaches node 1 while bob's session there is still open: a plain put, routed once it answers
    // (150 ms after node 1 hears of the move).
    alice.send(dataFrame('alice', 'bob', 'm1', 'fp-m1'));
    await bobHere.nextOfType(54);
    // m2 reaches node 1 after bob's session there closed, while m1's put has not answered yet.
    alice.send(dataFrame('alice', 'bob', 'm2', 'fp-m2'));
    const got = [(await bobThere.nextOfType(2)).fp, (await bobThere.nextOfType(2)).fp];
    expect(got).toEqual(['fp-m1', 'fp-m2']);
    const acks = [(await alice.nextOfType(4)).dataContent, (await alice.nextOfType(4)).dataContent];
    expect(acks).toEqual(['fp-m1', 'fp-m2']);
    for (const fp of ['fp-m1', 'fp-m2']) bobThere.send(ackFrame('bob', 'alice', fp));
    await expect.poll(() => n2.metrics().delivered).toBe(2);
    // Each once: nothing more comes.
    expect((await bobThere.quiet(300)).filter((f) => f.type === 2)).toEqual([]);
  });

  it('sends one receipt for an ACK whose removal fails in Redis (a broken stored value): the failed removal published none', async () => {
    redis ??= await startRedisServer();
    const keyPrefix = `pr${++cases}:`;
    const n1 = await node('n1', redis.url, keyPrefix);
    const n2 = await node('n2', redis.url, keyPrefix);
    const alice = await tcp(n1);
    const bob = await tcp(n2);
    expect(await loginWithCaps(alice, 'alice')).toMatchObject({ code: 0, caps: 1 });
    await login(bob, 'bob');
    alice.send(dataFrame('alice', 'bob', 'hi', 'fp-b1'));
    expect((await bob.nextOfType(2)).fp).toBe('fp-b1');
    expect((await alice.nextOfType(4)).dataContent).toBe('fp-b1');
    const probe = new Redis(redis.url);
    try {
      // bob's stored messages become a value of the wrong type: the removal at his ACK fails (WRONGTYPE).
      await probe.del(`${keyPrefix}f:bob`);
      await probe.set(`${keyPrefix}f:bob`, 'broken');
      bob.send(ackFrame('bob', 'alice', 'fp-b1'));
      await expect.poll(() => n2.metrics().delivered).toBe(1);
      const r = await alice.nextOfType(60);
      expect(JSON.parse(r.dataContent as string)).toMatchObject({ fp: 'fp-b1' });
      expect((await alice.quiet(400)).filter((f) => f.type === 60)).toEqual([]);
    } finally {
      probe.disconnect();
    }
  });
});
