import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Protocal } from '../../src/protocol';
import { silentLogger } from '../../server/src/index';
import type { PresenceEntry } from '../../server/src/presence';
import { RedisPresence } from '../../server/src/presence-redis';
import type { QosWaiter, Routing } from '../../server/src/routing';
import { watchStall } from '../../server/src/redis-scripts';
import { RedisRouting, type RedisRoutingOptions } from '../../server/src/routing-redis';
import { startRedisServer, type RedisServer } from '../helpers/redis-server';

/**
 * RedisRouting between three nodes on a private redis-server: what is routed to a user reaches the local
 * routing of the node holding that user only, and the dirty-set recheck covers a lost notification.
 */

const T0 = 1_800_000_000_000;

/** A local Routing that records what reached it; `online` are the users it holds (as LocalRouting, nothing happens for others). */
class RecordingRouting implements Routing {
  readonly calls: Array<[string, ...unknown[]]> = [];
  /** Users whose QoS frames are taken but never settled (no outcome to report). */
  readonly silent = new Set<string>();
  constructor(readonly online: Set<string>) {}
  hasRoom(): boolean {
    return true;
  }
  sendData(to: string, frame: Protocal, waiter?: QosWaiter): boolean {
    if (!this.online.has(to)) return false;
    this.calls.push(['data', to, frame.fp]);
    if (!this.silent.has(to)) waiter?.('delivered');
    return true;
  }
  sendReceipt(sender: string, receiver: string, fp: string, atMs: number): boolean {
    if (!this.online.has(sender)) return false;
    this.calls.push(['receipt', sender, receiver, fp, atMs]);
    return true;
  }
  kickUser(userId: string, code: number, reason?: string): boolean {
    this.calls.push(['kick', userId, code, reason]);
    return this.online.has(userId);
  }
  endSession(at: PresenceEntry, userId: string, kickCode: number | null): void {
    this.calls.push(['end', at.node, at.session, userId, kickCode]);
  }
  close(): void {}
}

interface Node {
  id: string;
  presence: RedisPresence;
  routing: RedisRouting;
  local: RecordingRouting;
  rechecked: string[];
}

let redis: RedisServer;
let prefixes = 0;
let nodes: Node[] = [];
// 'always': a test below SIGKILLs Redis and counts on the users bound just before still being there.
beforeAll(async () => void (redis = await startRedisServer({ appendfsync: 'always' })));
afterAll(() => redis?.stop());
afterEach(async () => {
  for (const n of nodes.splice(0)) {
    await n.routing.close();
    await n.presence.close();
  }
});

async function cluster(ids: string[], extra: Partial<RedisRoutingOptions> = {}): Promise<Node[]> {
  const keyPrefix = `r${++prefixes}:`;
  for (const id of ids) {
    const presence = await RedisPresence.open({ redis: redis.url, nodeId: id, keyPrefix, logger: silentLogger });
    const local = new RecordingRouting(new Set());
    const rechecked: string[] = [];
    const routing = await RedisRouting.open({ redis: redis.url, nodeId: id, keyPrefix, local, recheckMs: 50, logger: silentLogger, onRecheck: (users) => rechecked.push(...users), ...extra });
    nodes.push({ id, presence, routing, local, rechecked });
  }
  return nodes;
}

async function online(n: Node, user: string, session: number): Promise<void> {
  await n.presence.claim(user, { node: n.id, session, firstLoginTime: T0 }, 0);
  n.local.online.add(user);
}

const frame = (to: string, fp: string, qos = true): Protocal => ({ type: 2, from: 'alice', to, fp, QoS: qos, dataContent: 'hi', bridge: false, typeu: -1 }) as Protocal;

/** Polls until `check` holds (at most `withinMs`). */
async function eventually(check: () => boolean, withinMs = 2000): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

describe('RedisRouting', () => {
  it("a frame, a receipt, a kick and a superseded session for a user on node B reach B's local routing only", async () => {
    const [a, b, c] = await cluster(['A', 'B', 'C']);
    await online(b, 'bob', 7);
    await online(a, 'alice', 1);
    let told: string | null = null;
    expect(await a.routing.sendData('bob', frame('bob', 'f1'), (o) => void (told = o))).toBe(true);
    // B reports how the message ended (its local routing's waiter said 'delivered') back to A.
    expect(told).toBe(null);
    expect(await eventually(() => told === 'delivered')).toBe(true);
    expect(await a.routing.sendReceipt('bob', 'carol', 'f9', 123)).toBe(true);
    expect(await a.routing.kickUser('bob', 2, 'admin')).toBe(true);
    await a.routing.endSession({ node: 'B', session: 7, firstLoginTime: T0 }, 'bob', 1);
    const expected = [['data', 'bob', 'f1'], ['receipt', 'bob', 'carol', 'f9', 123], ['kick', 'bob', 2, 'admin'], ['end', 'B', 7, 'bob', 1]];
    expect(await eventually(() => b.local.calls.length === expected.length)).toBe(true);
    expect(b.local.calls).toEqual(expected);
    expect(c.local.calls).toEqual([]);
    expect(a.local.calls).toEqual([]);
    // The QoS frame marked bob dirty on B only.
    expect(await eventually(() => b.rechecked.includes('bob'))).toBe(true);
    expect(c.rechecked).toEqual([]);
    expect(a.rechecked).toEqual([]);
  });

  it('a receipt routed to a node whose sender has left it meanwhile is kept for the sender (keepReceipt), not dropped', async () => {
    const kept: unknown[][] = [];
    const [a, b] = await cluster(['A', 'B'], { keepReceipt: (...args) => void kept.push(args) });
    await online(b, 'bob', 7);
    expect(await a.routing.sendReceipt('bob', 'carol', 'f1', 123)).toBe(true);
    expect(await eventually(() => b.local.calls.length === 1)).toBe(true);
    expect(kept).toEqual([]);
    // bob's session on B is gone, his presence entry not yet: A still routes to B, which keeps it.
    b.local.online.delete('bob');
    expect(await a.routing.sendReceipt('bob', 'carol', 'f2', 124)).toBe(true);
    expect(await eventually(() => kept.length === 1)).toBe(true);
    expect(kept).toEqual([['bob', 'carol', 'f2', 124]]);
    expect(b.local.calls).toEqual([['receipt', 'bob', 'carol', 'f1', 123]]);
  });

  it("reports the outcomes of one turn's frames back in one message per node, and still takes a node's one-report messages", async () => {
    const [a, b] = await cluster(['A', 'B']);
    await online(b, 'bob', 7);
    // A listener on A's channel counts what B publishes back to A.
    const spy = new Redis(redis.url);
    const heard: string[] = [];
    spy.on('message', (_channel: string, text: string) => void heard.push(text));
    await spy.subscribe(`r${prefixes}:node:A`);
    try {
      const told: string[] = [];
      const sends = Array.from({ length: 20 }, (_, i) => a.routing.sendData('bob', frame('bob', `b${i}`), (o) => void told.push(o)));
      expect(await Promise.all(sends)).toEqual(Array(20).fill(true));
      expect(await eventually(() => told.length === 20)).toBe(true);
      expect(told).toEqual(Array(20).fill('delivered'));
      // B took the 20 frames in one or a few turns: far fewer report messages than frames.
      const reports = heard.map((t) => JSON.parse(t) as { t: string; r?: unknown[] }).filter((m) => m.t === 'outcomes');
      expect(reports.reduce((n, m) => n + (m.r?.length ?? 0) / 2, 0)).toBe(20);
      expect(reports.length).toBeLessThanOrEqual(5);
      // A report in the one-message form (what a node of the version before sends) settles its waiter
      // too: B holds this one without an outcome; the report is published as such a node would.
      b.local.silent.add('bob');
      const toB: Array<{ reply?: { id: number } }> = [];
      const spyB = new Redis(redis.url);
      spyB.on('message', (_channel: string, text: string) => void toB.push(JSON.parse(text)));
      await spyB.subscribe(`r${prefixes}:node:B`);
      let single: string | null = null;
      expect(await a.routing.sendData('bob', frame('bob', 'old-form'), (o) => void (single = o))).toBe(true);
      expect(await eventually(() => toB.some((m) => m.reply))).toBe(true);
      const id = toB.find((m) => m.reply)?.reply?.id;
      await new Promise((r) => setTimeout(r, 50));
      expect(single).toBe(null);
      await spy.publish(`r${prefixes}:node:A`, JSON.stringify({ t: 'outcome', id, outcome: 'delivered' }));
      expect(await eventually(() => single !== null)).toBe(true);
      expect(single).toBe('delivered');
      spyB.disconnect();
    } finally {
      spy.disconnect();
    }
  });

  it("this node's own users go to its local routing directly, and a user no node holds is not routed", async () => {
    const [a, b] = await cluster(['A', 'B']);
    await online(a, 'alice', 1);
    expect(await a.routing.sendData('alice', frame('alice', 'f1'))).toBe(true);
    expect(await a.routing.kickUser('alice', 2)).toBe(true);
    expect(a.local.calls).toEqual([['data', 'alice', 'f1'], ['kick', 'alice', 2, undefined]]);
    expect(await a.routing.sendData('nobody', frame('nobody', 'f2'))).toBe(false);
    expect(await a.routing.kickUser('nobody', 2)).toBe(false);
    expect(await a.routing.sendReceipt('nobody', 'alice', 'f', 1)).toBe(false);
    await new Promise((r) => setTimeout(r, 100));
    expect(b.local.calls).toEqual([]);
    expect(a.rechecked).toEqual([]);
  });

  it('a user arriving here while a frame or receipt for them is still being routed gets the later ones after it, in the order sent', async () => {
    const [a, b] = await cluster(['A', 'B']);
    await online(b, 'bob', 7);
    // bob logs in on A: the claim is applied, A has not bound his session yet (login.ts binds after the claim's answer).
    await a.presence.claim('bob', { node: 'A', session: 2, firstLoginTime: T0 }, 0);
    const first = [a.routing.sendData('bob', frame('bob', 'f1')), a.routing.sendReceipt('bob', 'carol', 'r1', 1)];
    a.local.online.add('bob'); // bound: from now on A writes to bob itself
    const then = [a.routing.sendData('bob', frame('bob', 'f2')), a.routing.sendReceipt('bob', 'carol', 'r2', 2)];
    expect(await Promise.all([...first, ...then])).toEqual([true, true, true, true]);
    // The first ones' route script found bob on A: written here, and before the ones sent after them.
    expect(a.local.calls.map((c) => c[0] === 'data' ? c[2] : c[3])).toEqual(['f1', 'r1', 'f2', 'r2']);
    expect(b.local.calls).toEqual([]);
  });

  it('a user bound here while the route of a frame or receipt for them fails (Redis stalled) gets it here, in the order sent', async () => {
    const [, b] = await cluster(['A', 'B']);
    await online(b, 'bob', 7);
    const client = new Redis(redis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    const local = new RecordingRouting(new Set());
    const a = await RedisRouting.open({ redis: client, nodeId: 'A2', keyPrefix: `r${prefixes}:`, local, logger: silentLogger });
    try {
      const first = [a.sendData('bob', frame('bob', 'f1')), a.sendReceipt('bob', 'carol', 'r1', 1)];
      local.online.add('bob'); // bob logs in here: bound before the route scripts go out
      const then = [a.sendData('bob', frame('bob', 'f2')), a.sendReceipt('bob', 'carol', 'r2', 2)];
      watchStall(client, () => 'a test says so'); // the routes are refused, not sent
      expect(await Promise.all([...first, ...then])).toEqual([true, true, true, true]);
      expect(local.calls.map((c) => (c[0] === 'data' ? c[2] : c[3]))).toEqual(['f1', 'r1', 'f2', 'r2']);
      expect(b.local.calls).toEqual([]);
    } finally {
      await a.close();
      client.disconnect();
    }
  });

  it('a frame whose notification was lost (subscriber connection killed) is covered by the dirty-set recheck; the subscription comes back', async () => {
    const [a, b, c] = await cluster(['A', 'B', 'C']);
    await online(b, 'bob', 7);
    const admin = new Redis(redis.url);
    try {
      // Kills every subscriber connection; ioredis reconnects after its backoff (50 ms at first).
      await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      await a.routing.sendData('bob', frame('bob', 'lost-1'));
      expect(await eventually(() => b.rechecked.includes('bob'))).toBe(true);
      expect(b.local.calls).toEqual([]);
      expect(c.rechecked).toEqual([]);
      // Subscribed again: the next frame arrives by notification.
      let delivered = false;
      for (let i = 0; i < 100 && !delivered; i++) {
        await a.routing.sendData('bob', frame('bob', `again-${i}`, false));
        delivered = await eventually(() => b.local.calls.length > 0, 50);
      }
      expect(delivered).toBe(true);
      expect(c.local.calls).toEqual([]);
    } finally {
      admin.disconnect();
    }
  });

  it('after Redis is killed and restarted, the same objects route again (the subscriber subscribed again)', async () => {
    const [a, b] = await cluster(['A', 'B']);
    await online(b, 'bob', 7);
    await redis.kill();
    try {
      // While Redis is down: no throw, no routing (the stored copy would wait for a recheck or a login).
      expect(await a.routing.sendData('bob', frame('bob', 'down'))).toBe(false);
    } finally {
      await redis.restart();
    }
    // bob's entry came back with the AOF (a failure here is the data, not the routing).
    let bobAt: string | undefined;
    for (let i = 0; i < 100 && !bobAt; i++) {
      bobAt = (await a.presence.locate('bob').catch(() => null))?.node;
      if (!bobAt) await new Promise((r) => setTimeout(r, 50));
    }
    expect(bobAt).toBe('B');
    let delivered = false;
    for (let i = 0; i < 100 && !delivered; i++) {
      delivered = (await a.routing.sendData('bob', frame('bob', `up-${i}`, false)).catch(() => false)) && (await eventually(() => b.local.calls.length > 0, 50));
      if (!delivered) await new Promise((r) => setTimeout(r, 50));
    }
    expect(delivered).toBe(true);
    expect(b.local.calls[0][0]).toBe('data');
  });

  it("a recheck hands over each dirty user once per mark, and markDirty marks a user on a node's set", async () => {
    const [a, b] = await cluster(['A', 'B']);
    await a.routing.markDirty('B', 'bob');
    await a.routing.markDirty('B', 'bob');
    await a.routing.markDirty('B', 'carol');
    expect(await eventually(() => b.rechecked.length === 2)).toBe(true);
    expect([...b.rechecked].sort()).toEqual(['bob', 'carol']);
    await new Promise((r) => setTimeout(r, 150));
    expect(b.rechecked.length).toBe(2);
    expect(a.rechecked).toEqual([]);
  });
});
