import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ServerErrorCode, type IMServer, type ServerOptions } from '../../server/src/index';
import { ROUTE_LUA } from '../../server/src/presence-redis-lua';
import { batchLua } from '../../server/src/redis-scripts';
import { LIST_LUA } from '../../server/src/store-redis-lua';
import { startRedisServer, type RedisServer } from '../helpers/redis-server';
import { ackFrame, admin, closeAll, dataFrame, errorOf, login, loginFrame, loginWithCaps, startServer, TcpClient, WsClient, type RawClient } from './helpers';

/**
 * Three cluster nodes (three servers in this process, each with its own Redis connections, node id and
 * ports) on one private redis-server: every path of a message, a login and an admin call that crosses
 * from one node to another, with raw MobileIMSDK frames.
 */

let redis: RedisServer | null = null;
let cases = 0;
const clients: RawClient[] = [];
const servers: IMServer[] = [];

afterEach(async () => {
  await closeAll(clients.splice(0), servers.splice(0));
});
afterAll(async () => {
  await redis?.stop();
});

/** Three nodes on a fresh key prefix; `extra` is applied to each. */
async function cluster(extra: ServerOptions = {}): Promise<IMServer[]> {
  redis ??= await startRedisServer();
  const keyPrefix = `c${++cases}:`;
  const nodes: IMServer[] = [];
  for (const n of ['n1', 'n2', 'n3']) {
    const s = await startServer({ nodeId: n, udp: false, cluster: { redisUrl: redis.url, keyPrefix, recheckMs: 200 }, ...extra });
    servers.push(s);
    nodes.push(s);
  }
  return nodes;
}

async function ws(node: IMServer): Promise<WsClient> {
  const c = await WsClient.open(node.ports.ws!);
  clients.push(c);
  return c;
}

async function tcp(node: IMServer): Promise<TcpClient> {
  const c = await TcpClient.open(node.ports.tcp!);
  clients.push(c);
  return c;
}

/**
 * alice (TCP, node 1; asking for device receipts with `receipts`) and bob (WS, node 3) logged in, and
 * `scripts()`: how many scripts Redis has run so far (every step of the seams is one; the other nodes'
 * timers run none within a test's few hundred ms).
 */
async function pairAcross(extra: ServerOptions = {}, receipts = false) {
  const [n1, n2, n3] = await cluster(extra);
  const alice = await tcp(n1);
  const bob = await ws(n3);
  if (receipts) expect(await loginWithCaps(alice, 'alice')).toMatchObject({ code: 0, caps: 1 });
  else await login(alice, 'alice');
  await login(bob, 'bob');
  const probe = new Redis(redis!.url);
  const scripts = async () => [...(await probe.info('commandstats')).matchAll(/cmdstat_eval(?:sha)?:calls=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  return { n1, n2, n3, alice, bob, scripts, probe };
}

/** alice logs in at `node` asking for receipts, and gets bob's receipt for her message `fp` there. */
async function expectReceiptAtLogin(node: IMServer, fp: string): Promise<void> {
  const back = await ws(node);
  expect(await loginWithCaps(back, 'alice')).toMatchObject({ code: 0, caps: 1 });
  const r = await back.nextOfType(60);
  expect([r.from, r.to, JSON.parse(r.dataContent as string).fp]).toEqual(['bob', 'alice', fp]);
}

describe('cluster: three nodes on one Redis', () => {
  it('relays C2C with QoS across nodes: stored before the ACK, delivered once, settled by the receiver\'s ACK on its own node', async () => {
    const [n1, , n3] = await cluster();
    const alice = await ws(n1);
    const bob = await tcp(n3);
    await login(alice, 'alice');
    await login(bob, 'bob');
    alice.send(dataFrame('alice', 'bob', 'hi bob', 'fp-x1'));
    const ack = await alice.nextOfType(4);
    expect(ack.dataContent).toBe('fp-x1');
    const got = await bob.nextOfType(2);
    expect([got.from, got.dataContent, got.fp]).toEqual(['alice', 'hi bob', 'fp-x1']);
    bob.send(ackFrame('bob', 'alice', 'fp-x1'));
    await expect.poll(() => n3.metrics().delivered).toBe(1);
    // The retransmission of an ACKed message, reaching another node, is recognised: ACKed, not relayed.
    const alice2 = await ws(n3);
    alice.close();
    await login(alice2, 'alice', Date.now());
    alice2.send(dataFrame('alice', 'bob', 'hi bob', 'fp-x1'));
    expect((await alice2.nextOfType(4)).dataContent).toBe('fp-x1');
    expect((await bob.quiet(400)).filter((f) => f.type === 2)).toEqual([]);
  });

  it('handles a connection\'s consecutive QoS messages across nodes together (a few Redis commands for forty, no route script) and delivers and ACKs them in order', async () => {
    const { alice, bob, scripts, probe } = await pairAcross();
    // A route script (single or batched) is an EVAL of its body the first time (MONITOR shows it escaped:
    // found by its PUBLISH line), an EVALSHA of its SHA after.
    const routeShas = [ROUTE_LUA, batchLua(ROUTE_LUA)].map((lua) => createHash('sha1').update(lua).digest('hex'));
    const routePublish = "redis.call('PUBLISH', prefix .. 'node:' .. e[1], ARGV[3])";
    expect(ROUTE_LUA).toContain(routePublish);
    const watcher = new Redis(redis!.url);
    const monitor = await watcher.monitor();
    let routes = 0;
    monitor.on('monitor', (_time: string, args: string[]) => {
      const command = args[0]?.toLowerCase();
      if ((command === 'evalsha' && routeShas.includes(args[1])) || (command === 'eval' && args[1]?.includes(routePublish))) routes++;
    });
    try {
      const fps = Array.from({ length: 40 }, (_, i) => `fp-o${i}`);
      const before = await scripts();
      alice.sendMany(fps.map((fp, i) => dataFrame('alice', 'bob', `m${i}`, fp)));
      const acks: string[] = [];
      for (const _ of fps) acks.push((await alice.nextOfType(4)).dataContent as string);
      // One after the other, each message would take three (the window's check, the put, the route): 120.
      expect((await scripts()) - before).toBeLessThan(40);
      // Each put publishes its frame itself, overlapping ones too: none waits for a route script of its own.
      expect(routes).toBe(0);
      expect(acks).toEqual(fps);
      const got: string[] = [];
      for (const _ of fps) got.push((await bob.nextOfType(2)).fp as string);
      expect(got).toEqual(fps);
    } finally {
      probe.disconnect();
      watcher.disconnect();
    }
  });

  it("under steady traffic across nodes the receiver's node lists the store once per recheck, not at every ACK, and delivers each message once, in order", async () => {
    const { alice, bob, probe } = await pairAcross({ rateLimit: false });
    // Every store listing is one EVALSHA of the list script (MONITOR shows its SHA).
    const listSha = createHash('sha1').update(LIST_LUA).digest('hex');
    const monitor = await probe.monitor();
    let listings = 0;
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args[0]?.toLowerCase() === 'evalsha' && args[1] === listSha) listings++;
    });
    // bob ACKs whatever arrives, as a device does.
    let seen = 0;
    const got: string[] = [];
    const acker = setInterval(() => {
      for (; seen < bob.frames.length; seen++) {
        const f = bob.frames[seen];
        if (f.type === 2 && f.QoS) {
          got.push(f.fp as string);
          bob.send(ackFrame('bob', 'alice', f.fp as string));
        }
      }
    }, 2);
    try {
      // 20 messages in flight all the time, for 1.5 s: several rechecks (every 200 ms) while messages are stored and routed.
      const fps: string[] = [];
      const send = (): void => {
        const fp = `fp-st${fps.length}`;
        fps.push(fp);
        alice.send(dataFrame('alice', 'bob', fp, fp));
      };
      for (let i = 0; i < 20; i++) send();
      const until = Date.now() + 1500;
      for (let acked = 0; acked < fps.length; acked++) {
        await alice.nextOfType(4);
        if (Date.now() < until) send();
      }
      await expect.poll(() => new Set(got).size).toBe(fps.length);
      await new Promise((r) => setTimeout(r, 300));
      // Each once, in order. A copy may come twice when a replay hands over a message stored but not yet
      // routed, the receiver ACKs it, and the replay ends before the routed copy arrives (the SDK drops
      // it by fp); a listing answered after the receiver's ACKs handed over a whole window again.
      expect([...new Set(got)]).toEqual(fps);
      expect(got.length - fps.length).toBeLessThanOrEqual(3);
      // A replay begun by a recheck ends at the messages stored when it began; one that went on taking
      // each newly stored message would list at (almost) every ACK: hundreds here.
      expect(listings).toBeLessThanOrEqual(30);
    } finally {
      clearInterval(acker);
      monitor.disconnect();
      probe.disconnect();
    }
  });

  it('hands a sender the device receipts that waited for it at whatever node it logs in', async () => {
    const [n1, n2, n3] = await cluster();
    const alice = await ws(n1);
    expect(await loginWithCaps(alice, 'alice')).toMatchObject({ code: 0, caps: 1 });
    alice.send(dataFrame('alice', 'bob', 'while you were out', 'fp-rc1'));
    expect((await alice.nextOfType(4)).dataContent).toBe('fp-rc1');
    alice.close();
    await expect.poll(() => n2.allOnlineUsers()).toEqual([]);
    // bob's device ACKs at node 2 while alice is offline: the receipt waits for her.
    const bob = await ws(n2);
    await login(bob, 'bob');
    expect((await bob.nextOfType(2)).fp).toBe('fp-rc1');
    bob.send(ackFrame('bob', 'alice', 'fp-rc1'));
    await expect.poll(() => n2.metrics().delivered).toBe(1);
    await expectReceiptAtLogin(n3, 'fp-rc1');
  });

  it('stores, de-duplicates and routes a message across nodes in one Redis script before its ACK, and still ACKs its retransmission without relaying it', async () => {
    const { alice, bob, scripts, probe } = await pairAcross();
    try {
      const before = await scripts();
      for (let i = 0; i < 10; i++) {
        alice.send(dataFrame('alice', 'bob', `m${i}`, `fp-s${i}`));
        expect((await alice.nextOfType(4)).dataContent).toBe(`fp-s${i}`);
      }
      // The put checks the window and publishes the frame to bob's node itself: 10. A route script of its
      // own made it 20, and checking the window first 30.
      expect((await scripts()) - before).toBeLessThanOrEqual(12);
      for (let i = 0; i < 10; i++) expect((await bob.nextOfType(2)).fp).toBe(`fp-s${i}`);
      alice.send(dataFrame('alice', 'bob', 'm3', 'fp-s3'));
      expect((await alice.nextOfType(4)).dataContent).toBe('fp-s3');
      expect((await bob.quiet(300)).filter((f) => f.type === 2)).toEqual([]);
    } finally {
      probe.disconnect();
    }
  });

  it("routes the receipt of a message across nodes with the removal of its stored copy: one Redis script per ACK, and the sender gets every receipt", async () => {
    const { n3, alice, bob, scripts, probe } = await pairAcross({}, true);
    try {
      const fps = Array.from({ length: 10 }, (_, i) => `fp-r${i}`);
      for (const fp of fps) alice.send(dataFrame('alice', 'bob', fp, fp));
      for (const fp of fps) expect((await bob.nextOfType(2)).fp).toBe(fp);
      const before = await scripts();
      // One ACK at a time (calls made in one turn share a command): each receipt arrives before the next ACK.
      for (const fp of fps) {
        bob.send(ackFrame('bob', 'alice', fp));
        const r = await alice.nextOfType(60);
        expect([r.from, r.to, (JSON.parse(r.dataContent as string) as { fp: string }).fp]).toEqual(['bob', 'alice', fp]);
      }
      await expect.poll(() => n3.metrics().delivered).toBe(10);
      // One removal each, which publishes the receipt to alice's node: 10; a route script per receipt made it 20.
      expect((await scripts()) - before).toBeLessThanOrEqual(12);
      expect(await probe.zcard(`c${cases}:m:bob`)).toBe(0);
    } finally {
      probe.disconnect();
    }
  });

  it("keeps a receipt for the sender's next login on any node when the sender is offline at the ACK (the removal finds no node to hand it to)", async () => {
    const { n2, n3, alice, bob, probe } = await pairAcross({}, true);
    try {
      alice.send(dataFrame('alice', 'bob', 'hi', 'fp-gone'));
      expect((await bob.nextOfType(2)).fp).toBe('fp-gone');
      alice.close();
      // alice is offline for the whole cluster once her node released her presence entry.
      await expect.poll(() => probe.exists(`c${cases}:p:alice`)).toBe(0);
      bob.send(ackFrame('bob', 'alice', 'fp-gone'));
      await expect.poll(() => n3.metrics().delivered).toBe(1);
      await expectReceiptAtLogin(n2, 'fp-gone');
    } finally {
      probe.disconnect();
    }
  });

  it('delivers C2S to the hooks of the node it arrived at, and S2C pushes from any node to a user on another', async () => {
    const seen: string[] = [];
    const [n1, n2] = await cluster({ hooks: { onC2S: (m) => void seen.push(`${m.from}:${m.dataContent}`) } });
    const carol = await ws(n1);
    await login(carol, 'carol');
    carol.send(dataFrame('carol', '0', 'to server', 'fp-s1'));
    expect((await carol.nextOfType(4)).dataContent).toBe('fp-s1');
    await expect.poll(() => seen).toEqual(['carol:to server']);
    // Pushed through node 2's library API and its admin API: each waits for carol's ACK on node 1.
    const push = n2.sendToUser('carol', 'from n2', { fp: 'p-1' });
    const frame = await carol.nextOfType(2);
    expect([frame.from, frame.dataContent, frame.fp]).toEqual(['0', 'from n2', 'p-1']);
    carol.send(ackFrame('carol', '0', 'p-1'));
    expect(await push).toEqual({ fp: 'p-1', status: 'delivered' });
    const viaAdmin = admin(n2.ports.http!, 'POST', '/api/send', { to: 'carol', content: 'admin push', fp: 'p-2' });
    expect((await carol.nextOfType(2)).dataContent).toBe('admin push');
    carol.send(ackFrame('carol', '0', 'p-2'));
    expect((await viaAdmin).json).toEqual({ fp: 'p-2', status: 'delivered' });
  });

  it('stores a message sent via node 1 while the receiver is offline and delivers it when the receiver logs in at node 3', async () => {
    const [n1, , n3] = await cluster();
    const alice = await ws(n1);
    await login(alice, 'alice');
    alice.send(dataFrame('alice', 'dave', 'while you were out', 'fp-off'));
    expect((await alice.nextOfType(4)).dataContent).toBe('fp-off');
    const dave = await ws(n3);
    await login(dave, 'dave');
    const got = await dave.nextOfType(2);
    expect([got.from, got.dataContent, got.fp]).toEqual(['alice', 'while you were out', 'fp-off']);
  });

  it('arbitrates duplicate logins across nodes by firstLoginTime: a newer login kicks (code 1), the same one replaces silently, an older one is refused', async () => {
    const [n1, n2, n3] = await cluster();
    const first = await ws(n1);
    const r1 = await login(first, 'eve');
    expect(r1.code).toBe(0);
    // A first login (firstLoginTime 0) elsewhere is newer: the session on node 1 gets kickout code 1.
    const second = await ws(n2);
    const r2 = await login(second, 'eve');
    expect(r2.code).toBe(0);
    expect(JSON.parse((await first.nextOfType(54)).dataContent as string)).toMatchObject({ code: 1 });
    await first.closed;
    // The same device reconnecting at node 3 with the firstLoginTime node 2 handed out: node 2's session closes without a kickout.
    const third = await ws(n3);
    expect((await login(third, 'eve', r2.firstLoginTime)).code).toBe(0);
    await second.closed;
    expect(second.frames.filter((f) => f.type === 54)).toEqual([]);
    // An older device (an earlier firstLoginTime) is refused: it is kicked, and the session on node 3 stays.
    const stale = await ws(n1);
    stale.send(loginFrame('eve', r2.firstLoginTime - 1000));
    expect(JSON.parse((await stale.nextOfType(54)).dataContent as string)).toMatchObject({ code: 1 });
    expect((await third.quiet(200)).filter((f) => f.type === 54)).toEqual([]);
    expect(await n1.allOnlineUsers()).toEqual(['eve']);
    // Messages for eve reach the one live session only.
    const sender = await ws(n2);
    await login(sender, 'frank');
    sender.send(dataFrame('frank', 'eve', 'only once', 'fp-e'));
    expect((await third.nextOfType(2)).dataContent).toBe('only once');
  });

  it('lists, kicks and counts users of the whole cluster through any node\'s admin API', async () => {
    const [n1, n2, n3] = await cluster();
    const gina = await ws(n1);
    const hank = await ws(n3);
    await login(gina, 'gina');
    await login(hank, 'hank');
    const online = await admin(n2.ports.http!, 'GET', '/api/online');
    expect(online.json.users.sort()).toEqual(['gina', 'hank']);
    expect(n2.onlineUsers()).toEqual([]);
    const kicked = await admin(n2.ports.http!, 'POST', '/api/kick', { userId: 'gina', code: 2, reason: 'admin' });
    expect(kicked).toEqual({ status: 200, json: { kicked: true } });
    expect(JSON.parse((await gina.nextOfType(54)).dataContent as string)).toEqual({ code: 2, reason: 'admin' });
    await gina.closed;
    expect((await admin(n2.ports.http!, 'POST', '/api/kick', { userId: 'gina' })).status).toBe(404);
    await expect.poll(async () => (await admin(n2.ports.http!, 'GET', '/api/online')).json.users).toEqual(['hank']);
    const metrics = await fetch(`http://127.0.0.1:${n2.ports.http}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/mobileimsdk_cluster_online_users\{node="n2"\} 1/);
    expect(metrics).toMatch(/mobileimsdk_online_users\{node="n2"\} 0/);
    const health = await admin(n1.ports.http!, 'GET', '/ready');
    expect(health.status).toBe(200);
  });

  it('refuses logins with error 337 and messages with 325 (never an ACK) while Redis is down, reports not ready, and resumes when it returns', async () => {
    // 'always': jon's login just before the SIGKILL must be in the AOF (everysec may postpone it).
    const own = await startRedisServer({ appendfsync: 'always' });
    try {
      const nodes: IMServer[] = [];
      for (const n of ['r1', 'r2']) {
        const s = await startServer({ nodeId: n, udp: false, cluster: { redisUrl: own.url, recheckMs: 200 } });
        servers.push(s);
        nodes.push(s);
      }
      const [r1, r2] = nodes;
      const ivy = await ws(r1);
      const jon = await ws(r2);
      await login(ivy, 'ivy');
      await login(jon, 'jon');
      await own.kill();
      // Once the node has seen its connection go: a put sent on a connection dying under it would get no
      // answer at all (Redis may hold it), by design, rather than this refusal.
      await expect.poll(async () => (await admin(r1.ports.http!, 'GET', '/ready')).status).toBe(503);
      ivy.send(dataFrame('ivy', 'jon', 'during the outage', 'fp-out'));
      const refused = await ivy.nextOfType(52);
      expect(errorOf(refused).errorCode).toBe(ServerErrorCode.STORE_UNAVAILABLE);
      expect(ivy.frames.filter((f) => f.type === 4)).toEqual([]);
      const late = await ws(r1);
      late.send(loginFrame('kim'));
      expect(errorOf(await late.nextOfType(52)).errorCode).toBe(ServerErrorCode.CLUSTER_UNAVAILABLE);
      await late.closed;
      expect(late.frames.filter((f) => f.type === 50)).toEqual([]);
      // Liveness stays: restarting the node (what a failed liveness probe does) would not bring Redis back.
      const health = await admin(r1.ports.http!, 'GET', '/health');
      expect(health.status).toBe(200);
      expect(health.json.cluster.ok).toBe(false);
      await own.restart();
      await expect.poll(async () => (await admin(r1.ports.http!, 'GET', '/ready')).status, { timeout: 10000 }).toBe(200);
      ivy.send(dataFrame('ivy', 'jon', 'after the outage', 'fp-out'));
      expect((await ivy.nextOfType(4)).dataContent).toBe('fp-out');
      expect((await jon.nextOfType(2, 5000)).dataContent).toBe('after the outage');
    } finally {
      await own.stop();
    }
  });
});
