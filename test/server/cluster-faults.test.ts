import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ServerErrorCode, type IMServer, type ServerOptions } from '../../server/src/index';
import { startRedisServer, type RedisServer } from '../helpers/redis-server';
import { ackFrame, admin, closeAll, dataFrame, errorOf, login, loginFrame, loginWithCaps, startServer, WsClient, type RawClient } from './helpers';

/**
 * Faults of a cluster's Redis and races between its nodes, with raw MobileIMSDK frames: Redis killed,
 * refusing a command, holding a broken value, or shared by two processes with one node id.
 */

let shared: RedisServer | null = null;
let cases = 0;
const clients: RawClient[] = [];
const servers: IMServer[] = [];
const owned: RedisServer[] = [];
const conns: Redis[] = [];

afterEach(async () => {
  await closeAll(clients.splice(0), servers.splice(0));
  for (const c of conns.splice(0)) c.disconnect();
  for (const r of owned.splice(0)) await r.stop();
});
afterAll(async () => {
  await shared?.stop();
});

/** Nodes on `redis` (a shared server unless given), on a fresh key prefix. */
async function nodes(
  ids: string[],
  extra: ServerOptions = {},
  redis?: RedisServer,
  clusterExtra: Partial<NonNullable<ServerOptions['cluster']>> = {},
): Promise<{ nodes: IMServer[]; keyPrefix: string; url: string }> {
  const r = redis ?? (shared ??= await startRedisServer());
  const keyPrefix = `f${++cases}:`;
  const out: IMServer[] = [];
  for (const n of ids) {
    const s = await startServer({ nodeId: n, udp: false, tcp: false, cluster: { redisUrl: r.url, keyPrefix, recheckMs: 200, ...clusterExtra }, ...extra });
    servers.push(s);
    out.push(s);
  }
  return { nodes: out, keyPrefix, url: r.url };
}

/** A private Redis for a test that kills it (`always`: what it ACKed before a SIGKILL is there after a restart). */
async function ownRedis(): Promise<RedisServer> {
  const r = await startRedisServer({ appendfsync: 'always' });
  owned.push(r);
  return r;
}

/** A plain connection for the test to inspect or disturb Redis with. */
function rawRedis(url: string): Redis {
  const c = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1 });
  c.on('error', () => undefined);
  conns.push(c);
  return c;
}

async function ws(node: IMServer): Promise<WsClient> {
  const c = await WsClient.open(node.ports.ws!);
  clients.push(c);
  return c;
}

describe('cluster faults', () => {
  it('an ACK while Redis is down settles the message and keeps the session: no error 318, no close', async () => {
    const redis = await ownRedis();
    const { nodes: [n1, n2] } = await nodes(['a1', 'a2'], {}, redis);
    const alice = await ws(n1);
    const bob = await ws(n2);
    await login(alice, 'alice');
    await login(bob, 'bob');
    alice.send(dataFrame('alice', 'bob', 'hi', 'fp-ack1'));
    expect((await alice.nextOfType(4)).dataContent).toBe('fp-ack1');
    expect((await bob.nextOfType(2)).fp).toBe('fp-ack1');
    await redis.kill();
    bob.send(ackFrame('bob', 'alice', 'fp-ack1'));
    await expect.poll(() => n2.metrics().delivered).toBe(1);
    const after = await bob.quiet(300);
    expect(after.filter((f) => f.type === 52).map((f) => errorOf(f).errorCode)).toEqual([]);
    expect(bob.closeInfo).toBeNull();
    // The session still answers.
    bob.send({ type: 1, dataContent: '{}', from: 'bob', to: '0', fp: null, QoS: false, bridge: false, typeu: -1, sm: -1 });
    expect((await bob.nextOfType(51)).type).toBe(51);
  });

  it('a message stored for a user online on another node reaches them within seconds when its notification is lost (the PUBLISH refused)', async () => {
    const redis = await ownRedis();
    const { nodes: [n1, n2], url } = await nodes(['b1', 'b2'], {}, redis);
    const alice = await ws(n1);
    const bob = await ws(n2);
    await login(alice, 'alice');
    await login(bob, 'bob');
    // Every notification between nodes is refused from now on; commands that store and read still work.
    await rawRedis(url).call('ACL', 'SETUSER', 'default', '-publish');
    alice.send(dataFrame('alice', 'bob', 'stored, never announced', 'fp-lost1'));
    expect((await alice.nextOfType(4)).dataContent).toBe('fp-lost1');
    const got = await bob.nextOfType(2, 5000);
    expect([got.from, got.dataContent, got.fp]).toEqual(['alice', 'stored, never announced', 'fp-lost1']);
  });

  it('a replay whose store read failed at login is carried on by the node within seconds, without a new login or message', async () => {
    const { nodes: [n1, n2], keyPrefix, url } = await nodes(['c1', 'c2']);
    const alice = await ws(n1);
    await login(alice, 'alice');
    alice.send(dataFrame('alice', 'bob', 'waiting for bob', 'fp-paused'));
    expect((await alice.nextOfType(4)).dataContent).toBe('fp-paused');
    // The stored copy's value is made unreadable for the list script: bob's replay at login fails.
    const raw = rawRedis(url);
    const box = `${keyPrefix}f:bob`;
    const [field, value] = (await raw.hgetall(box).then((h) => Object.entries(h)))[0];
    await raw.hset(box, field, 'unreadable');
    const bob = await ws(n2);
    await login(bob, 'bob');
    expect((await bob.quiet(500)).filter((f) => f.type === 2)).toEqual([]);
    await raw.hset(box, field, value);
    const got = await bob.nextOfType(2, 5000);
    expect([got.from, got.dataContent, got.fp]).toEqual(['alice', 'waiting for bob', 'fp-paused']);
  });

  it('a receiver\'s next frames after its ACK do not wait for the receipt routed to the sender\'s node, which arrives once Redis writes again', async () => {
    const { nodes: [n1, n2], url } = await nodes(['r1', 'r2']);
    const alice = await ws(n1);
    const bob = await ws(n2);
    expect(await loginWithCaps(alice, 'alice')).toMatchObject({ code: 0, caps: 1 }); // asks for device receipts (type 60)
    await login(bob, 'bob');
    alice.send(dataFrame('alice', 'bob', 'hi bob', 'fp-r1'));
    expect((await bob.nextOfType(2)).fp).toBe('fp-r1');
    // The receipt's route script is a write: Redis runs it only once the pause is over.
    await rawRedis(url).call('CLIENT', 'PAUSE', '1500', 'WRITE');
    const pausedAt = Date.now();
    bob.send(ackFrame('bob', 'alice', 'fp-r1'));
    bob.send({ bridge: false, type: 1, dataContent: '{}', from: 'bob', to: '0', QoS: false, typeu: -1, sm: -1 });
    await bob.nextOfType(51);
    // Waiting for the route, the keep-alive would be answered after the pause (1500 ms), not at once.
    expect(Date.now() - pausedAt).toBeLessThan(1000);
    const receipt = await alice.nextOfType(60, 5000);
    expect([receipt.from, JSON.parse(receipt.dataContent as string).fp]).toEqual(['bob', 'fp-r1']);
    expect(Date.now() - pausedAt).toBeGreaterThanOrEqual(1400);
  });

  it('a user who leaves while Redis is down is offline for the whole cluster once Redis is back (the release is retried)', async () => {
    const redis = await ownRedis();
    const { nodes: [n1, n2] } = await nodes(['d1', 'd2'], {}, redis);
    const bob = await ws(n2);
    await login(bob, 'bob');
    expect(await n1.allOnlineUsers()).toEqual(['bob']);
    await redis.kill();
    bob.close();
    await expect.poll(() => n2.onlineUsers()).toEqual([]);
    await redis.restart();
    await expect.poll(async () => (await admin(n1.ports.http!, 'GET', '/ready')).status, { timeout: 10000 }).toBe(200);
    await expect.poll(() => n1.allOnlineUsers(), { timeout: 8000 }).toEqual([]);
    expect((await admin(n1.ports.http!, 'POST', '/api/kick', { userId: 'bob' })).status).toBe(404);
  });

  it('a login refused because its claim timed out (Redis paused) leaves no entry behind once Redis catches up', async () => {
    const { nodes: [n1, n2], url } = await nodes(['e1', 'e2']);
    await rawRedis(url).call('CLIENT', 'PAUSE', '3000', 'WRITE');
    const kim = await ws(n1);
    kim.send(loginFrame('kim'));
    expect(errorOf(await kim.nextOfType(52, 5000)).errorCode).toBe(ServerErrorCode.CLUSTER_UNAVAILABLE);
    await kim.closed;
    expect(kim.frames.filter((f) => f.type === 50)).toEqual([]);
    // The claim Redis ran once the pause ended named a session that is gone.
    await expect.poll(() => n2.allOnlineUsers(), { timeout: 10000, interval: 200 }).toEqual([]);
    expect((await admin(n2.ports.http!, 'POST', '/api/kick', { userId: 'kim' })).status).toBe(404);
  });

  it('a second process given a node id that a live node uses is refused at start, and the live node keeps serving its users', async () => {
    const quick = { presenceTtlMs: 3000 };
    const r = (shared ??= await startRedisServer());
    const keyPrefix = `f${++cases}:`;
    const start = (nodeId: string) => startServer({ nodeId, udp: false, tcp: false, cluster: { redisUrl: r.url, keyPrefix, recheckMs: 200, ...quick } });
    const g1 = await start('g1');
    servers.push(g1);
    const g2 = await start('g2');
    servers.push(g2);
    const alice = await ws(g1);
    await login(alice, 'alice');
    await expect(start('g1').then((s) => (servers.push(s), s))).rejects.toThrow(/node id "g1" is in use/);
    expect(await g2.allOnlineUsers()).toEqual(['alice']);
    const bob = await ws(g2);
    await login(bob, 'bob');
    bob.send(dataFrame('bob', 'alice', 'still here?', 'fp-dup-id'));
    expect((await alice.nextOfType(2)).fp).toBe('fp-dup-id');
    // A new login on the live node is still arbitrated and answered.
    const carol = await ws(g1);
    expect((await login(carol, 'carol')).code).toBe(0);
  });

  it('reports not ready while Redis is connected but does not answer (CLIENT PAUSE), and ready again after', async () => {
    const redis = await ownRedis();
    const { nodes: [n1], url } = await nodes(['h1'], {}, redis);
    expect((await admin(n1.ports.http!, 'GET', '/ready')).status).toBe(200);
    await rawRedis(url).call('CLIENT', 'PAUSE', '4000', 'ALL');
    const statuses: number[] = [];
    const until = Date.now() + 3800;
    while (Date.now() < until) {
      statuses.push((await admin(n1.ports.http!, 'GET', '/ready')).status);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(statuses).toContain(503);
    await expect.poll(async () => (await admin(n1.ports.http!, 'GET', '/ready')).status, { timeout: 5000 }).toBe(200);
  });

  it("a message stored while its receiver's node had lapsed (its users offline for the others) reaches the receiver after the node's next refresh", async () => {
    const { nodes: [k1, k2], keyPrefix, url } = await nodes(['k1', 'k2'], {}, undefined, { presenceTtlMs: 3000 });
    const alice = await ws(k1);
    const bob = await ws(k2);
    await login(alice, 'alice');
    await login(bob, 'bob');
    // As if k2 had stalled past its TTL: its registration is gone, bob is offline for k1.
    await rawRedis(url).del(`${keyPrefix}alive:k2`);
    alice.send(dataFrame('alice', 'bob', 'sent while k2 looked dead', 'fp-lapse'));
    expect((await alice.nextOfType(4)).dataContent).toBe('fp-lapse');
    const got = await bob.nextOfType(2, 6000);
    expect([got.from, got.dataContent, got.fp]).toEqual(['alice', 'sent while k2 looked dead', 'fp-lapse']);
    expect(bob.frames.filter((f) => f.type === 54)).toEqual([]);
  });

  it('a newer login whose claim timed out (Redis paused) gives the user back to the live session it displaced: at once reachable, not kicked', async () => {
    const { nodes: [m1, m2], keyPrefix, url } = await nodes(['m1', 'm2']);
    const bob = await ws(m2);
    await login(bob, 'bob');
    const raw = rawRedis(url);
    const pausedAt = Date.now();
    await raw.call('CLIENT', 'PAUSE', '2500', 'WRITE');
    const other = await ws(m1);
    other.send(loginFrame('bob'));
    expect(errorOf(await other.nextOfType(52, 5000)).errorCode).toBe(ServerErrorCode.CLUSTER_UNAVAILABLE);
    // Once the pause is over, Redis runs the claim (it takes bob from m2) and then its undoing.
    await new Promise((r) => setTimeout(r, Math.max(0, pausedAt + 2500 + 300 - Date.now())));
    expect(await raw.hget(`${keyPrefix}p:bob`, 'node')).toBe('m2');
    const alice = await ws(m1);
    await login(alice, 'alice');
    alice.send(dataFrame('alice', 'bob', 'are you there?', 'fp-orphan'));
    expect((await alice.nextOfType(4)).dataContent).toBe('fp-orphan');
    const got = await bob.nextOfType(2, 2000);
    expect([got.from, got.dataContent, got.fp]).toEqual(['alice', 'are you there?', 'fp-orphan']);
    expect(bob.frames.filter((f) => f.type === 54)).toEqual([]);
    expect(await m1.allOnlineUsers().then((u) => u.sort())).toEqual(['alice', 'bob']);
  });

  it('a session superseded on another node whose kick was never published is kicked (code 1) by its own node within one audit, and a same-device one is closed silently', async () => {
    const redis = await ownRedis();
    const { nodes: [a1, a2, a3], url } = await nodes(['a1', 'a2', 'a3'], {}, redis);
    const old = await ws(a2);
    await login(old, 'bob');
    const twin = await ws(a2);
    const first = await login(twin, 'carol');
    const raw = rawRedis(url);
    // The logins below supersede the sessions on a2, but their kicks (PUBLISH) are refused.
    await raw.call('ACL', 'SETUSER', 'default', '-publish');
    const newer = await ws(a1);
    await login(newer, 'bob');
    const same = await ws(a3);
    await login(same, 'carol', first.firstLoginTime);
    await raw.call('ACL', 'SETUSER', 'default', '+publish');
    const startedMs = Date.now();
    expect(JSON.parse((await old.nextOfType(54, 7000)).dataContent as string)).toEqual({ code: 1 });
    await twin.closed;
    expect(Date.now() - startedMs).toBeLessThan(7000);
    expect(twin.frames.filter((f) => f.type === 54)).toEqual([]);
    expect(newer.closeInfo).toBeNull();
    expect(same.closeInfo).toBeNull();
  });

  it('lists at most 10000 users through the admin API however many are online, saying the list is cut, without one blocking script', async () => {
    const { nodes: [o1], keyPrefix, url } = await nodes(['o1']);
    // A live node "big" holding 12000 users, written straight into the presence's layout.
    const raw = rawRedis(url);
    await raw.set(`${keyPrefix}alive:big`, 'inc-big', 'PX', 60000);
    await raw.sadd(`${keyPrefix}nodes`, 'big');
    for (let i = 0; i < 12; i++) {
      await raw.sadd(`${keyPrefix}nu:big`, Array.from({ length: 1000 }, (_, j) => `user-${i * 1000 + j}`));
    }
    const online = await admin(o1.ports.http!, 'GET', '/api/online');
    expect(online.status).toBe(200);
    expect(online.json.users).toHaveLength(10000);
    expect(new Set(online.json.users).size).toBe(10000);
    expect(online.json.truncated).toBe(true);
    const scrape = await fetch(`http://127.0.0.1:${o1.ports.http}/metrics`).then((r) => r.text());
    expect(scrape).toMatch(/mobileimsdk_cluster_online_users\{node="o1"\} 12000/);
  });

  it('a subscriber whose resubscription was refused is not ready (and the process does not crash), and subscribes again once it can: routed kicks reach the node again', async () => {
    const redis = await ownRedis();
    const { nodes: [s1, s2], keyPrefix, url } = await nodes(['s1', 's2'], {}, redis);
    const bob = await ws(s2);
    await login(bob, 'bob');
    const raw = rawRedis(url);
    const listening = async () => ((await raw.pubsub('NUMSUB', `${keyPrefix}node:s2`)) as [string, number])[1];
    expect(await listening()).toBe(1);
    const rejections: unknown[] = [];
    const onRejection = (err: unknown) => void rejections.push(err);
    process.on('unhandledRejection', onRejection);
    try {
      await raw.call('ACL', 'SETUSER', 'default', '-subscribe');
      await raw.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      await new Promise((r) => setTimeout(r, 1000));
      expect(await listening()).toBe(0);
      expect((await admin(s2.ports.http!, 'GET', '/ready')).status).toBe(503);
      await raw.call('ACL', 'SETUSER', 'default', '+subscribe');
      await expect.poll(listening, { timeout: 8000 }).toBe(1);
      await expect.poll(async () => (await admin(s2.ports.http!, 'GET', '/ready')).status, { timeout: 8000 }).toBe(200);
    } finally {
      process.off('unhandledRejection', onRejection);
    }
    expect(rejections).toEqual([]);
    const kicked = await admin(s1.ports.http!, 'POST', '/api/kick', { userId: 'bob', code: 2, reason: 'admin' });
    expect(kicked).toEqual({ status: 200, json: { kicked: true } });
    expect(JSON.parse((await bob.nextOfType(54)).dataContent as string)).toEqual({ code: 2, reason: 'admin' });
  }, 20000);

  it('while Redis is stalled, a message is refused (325) and the keep-alive behind it answered without waiting out each command\'s 2 s timeout', async () => {
    const redis = await ownRedis();
    const { nodes: [t1], url } = await nodes(['t1'], {}, redis);
    const alice = await ws(t1);
    await login(alice, 'alice');
    await rawRedis(url).call('CLIENT', 'PAUSE', '6000', 'ALL');
    // Past the 1 s after which an unanswered PING marks Redis stalled.
    await expect.poll(async () => (await admin(t1.ports.http!, 'GET', '/ready')).status, { timeout: 3000 }).toBe(503);
    const sentMs = Date.now();
    alice.send(dataFrame('alice', 'bob', 'during the stall', 'fp-stall'));
    alice.send({ type: 1, dataContent: '{}', from: 'alice', to: '0', QoS: false, bridge: false, typeu: -1, sm: -1 });
    expect(errorOf(await alice.nextOfType(52, 6000)).errorCode).toBe(ServerErrorCode.STORE_UNAVAILABLE);
    await alice.nextOfType(51, 6000);
    // Before: the dedup read, the locate and the put each waited 2 s (and the put then went through).
    expect(Date.now() - sentMs).toBeLessThan(1500);
    expect(alice.frames.filter((f) => f.type === 4)).toEqual([]);
  });

  it('the admin API answers 503 (not 500) for the cluster-wide list and kick while Redis is down', async () => {
    const redis = await ownRedis();
    const { nodes: [v1] } = await nodes(['v1'], {}, redis);
    await redis.kill();
    const online = await admin(v1.ports.http!, 'GET', '/api/online');
    expect(online.status).toBe(503);
    expect(online.json.error).toMatch(/cluster/);
    expect((await admin(v1.ports.http!, 'POST', '/api/kick', { userId: 'bob' })).status).toBe(503);
    // Bad arguments are still the caller's mistake.
    expect((await admin(v1.ports.http!, 'POST', '/api/kick', { userId: 'bob', reason: 'x'.repeat(300) })).status).toBe(413);
  });

  it('a stalled replay is not retried (nor logged) every second while Redis itself is stalled, and is carried on after', async () => {
    const lines: string[] = [];
    const logger = { debug() {}, info() {}, warn: (m: string) => void lines.push(m), error: (m: string) => void lines.push(m) };
    const { nodes: [w1, w2], keyPrefix, url } = await nodes(['w1', 'w2'], { logger });
    const alice = await ws(w1);
    await login(alice, 'alice');
    alice.send(dataFrame('alice', 'bob', 'held back', 'fp-held'));
    expect((await alice.nextOfType(4)).dataContent).toBe('fp-held');
    const raw = rawRedis(url);
    const box = `${keyPrefix}f:bob`;
    const [field, value] = (await raw.hgetall(box).then((h) => Object.entries(h)))[0];
    await raw.hset(box, field, 'unreadable');
    const bob = await ws(w2);
    await login(bob, 'bob');
    await raw.hset(box, field, value);
    await raw.call('CLIENT', 'PAUSE', '3500', 'ALL');
    await new Promise((r) => setTimeout(r, 1600));
    const before = lines.filter((l) => l.includes('paused')).length;
    await new Promise((r) => setTimeout(r, 1500));
    // At most the one read sent just before the stall was seen, timing out (before: one a second).
    expect(lines.filter((l) => l.includes('paused')).length - before).toBeLessThanOrEqual(1);
    const got = await bob.nextOfType(2, 5000);
    expect(got.fp).toBe('fp-held');
  });
});
