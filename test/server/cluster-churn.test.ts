import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClusterOptions, IMServer } from '../../server/src/index';
import { silentLogger } from '../../server/src/logger';
import { RedisMessageStore } from '../../server/src/store-redis';
import { seededRandom } from '../helpers/random';
import { startRedisServer, type RedisServer } from '../helpers/redis-server';
import { ackFrame, closeAll, dataFrame, errorOf, login, loginFrame, startServer, WsClient, type Frame, type RawClient } from './helpers';

/**
 * Three nodes under traffic while their Redis is killed and restarted: every message the server ACKed
 * reaches its receiver, no session is failed by the server (error 318), and no promise is left rejected.
 */

const clients: RawClient[] = [];
const servers: IMServer[] = [];
let redis: RedisServer | null = null;

afterEach(async () => {
  await closeAll(clients.splice(0), servers.splice(0));
  await redis?.stop();
  redis = null;
});

/** A user's connection that ACKs every QoS message it gets and remembers their fps. */
class Peer {
  readonly got = new Set<string>();
  private seen = 0;
  private timer: ReturnType<typeof setInterval>;
  constructor(readonly uid: string, readonly c: WsClient) {
    this.timer = setInterval(() => this.pump(), 20);
  }
  pump(): void {
    for (; this.seen < this.c.frames.length; this.seen++) {
      const f = this.c.frames[this.seen];
      if (f.type === 2 && f.QoS) {
        this.got.add(`${f.from}:${f.fp}`);
        this.c.send(ackFrame(this.uid, f.from as string, f.fp as string));
      }
    }
  }
  stop(): void {
    clearInterval(this.timer);
  }
  /** Errors the server sent, by code. */
  errors(): number[] {
    return this.c.frames.filter((f: Frame) => f.type === 52).map((f) => errorOf(f).errorCode);
  }
  /**
   * Sends a QoS message until it is ACKed (true), or `stopped()` after a refusal (false). A put Redis may
   * hold without having answered gets neither ACK nor refusal (store-redis.ts): an unanswered message is
   * sent again after 3 s, as the SDK does after its QoS timeout; five unanswered attempts fail the test.
   */
  async sendUntilAcked(to: string, text: string, fp: string, stopped: () => boolean): Promise<boolean> {
    for (let unanswered = 0; ; ) {
      this.c.send(dataFrame(this.uid, to, text, fp));
      const answer = await this.c
        .next((f) => (f.type === 4 && f.dataContent === fp) || (f.type === 52 && JSON.parse(f.dataContent as string).fp === fp), 3000)
        .catch(() => null);
      if (!answer) {
        if (++unanswered > 4) throw new Error(`${this.uid} got no answer to ${fp} in 5 attempts: closed ${JSON.stringify(this.c.closeInfo)}, errors ${JSON.stringify(this.errors())}`);
        continue;
      }
      if (answer.type === 4) return true;
      await new Promise((r) => setTimeout(r, 100));
      if (stopped()) return false;
    }
  }
}

/** A private redis-server (kept in `redis` for afterAll) and in-process WebSocket nodes on it. */
async function startNodes(ids: string[], keyPrefix: string, cluster: Partial<ClusterOptions> = {}): Promise<{ nodes: IMServer[]; redis: RedisServer }> {
  // 'always': the test SIGKILLs it and counts every ACKed message (everysec may lose the last ones).
  const own = await startRedisServer({ appendfsync: 'always' });
  redis = own;
  const nodes: IMServer[] = [];
  for (const nodeId of ids) {
    const s = await startServer({ nodeId, udp: false, tcp: false, cluster: { redisUrl: own.url, keyPrefix, recheckMs: 200, ...cluster } });
    servers.push(s);
    nodes.push(s);
  }
  return { nodes, redis: own };
}

/** Collects unhandled rejections (a crash under Node 20 outside vitest) until the caller removes `onRejection`. */
function watchRejections(): { rejections: unknown[]; onRejection: (err: unknown) => void } {
  const rejections: unknown[] = [];
  const onRejection = (err: unknown) => void rejections.push(err);
  process.on('unhandledRejection', onRejection);
  return { rejections, onRejection };
}

describe('cluster under churn', () => {
  it('loses no ACKed message and fails no session while Redis is killed and restarted mid-traffic', async () => {
    const { nodes, redis } = await startNodes(['x1', 'x2', 'x3'], 'churn:');
    const { rejections, onRejection } = watchRejections();
    const peers: Peer[] = [];
    try {
      for (let i = 0; i < 6; i++) {
        const c = await WsClient.open(nodes[i % 3].ports.ws!);
        clients.push(c);
        await login(c, `u${i}`);
        peers.push(new Peer(`u${i}`, c));
      }
      const random = seededRandom(7);
      const acked = new Map<string, string>();
      let stop = false;
      const sender = async (p: Peer): Promise<void> => {
        // Paced well under the default rate limit, and bounded.
        for (let n = 0; !stop && n < 120; n++) {
          await new Promise((r) => setTimeout(r, 40));
          const to = peers[Math.floor(random() * peers.length)];
          if (to === p) continue;
          const fp = `${p.uid}-${n}`;
          if (!(await p.sendUntilAcked(to.uid, `m ${n}`, fp, () => stop))) return;
          acked.set(`${p.uid}:${fp}`, to.uid);
        }
      };
      const running = peers.map((p) => sender(p));
      await new Promise((r) => setTimeout(r, 800));
      await redis.kill();
      await new Promise((r) => setTimeout(r, 1000));
      await redis.restart();
      await new Promise((r) => setTimeout(r, 1500));
      stop = true;
      await Promise.all(running);
      expect(acked.size).toBeGreaterThan(20);
      const missing = () => [...acked].filter(([key, to]) => !peers.find((p) => p.uid === to)!.got.has(key)).map(([key]) => key);
      await expect.poll(missing, { timeout: 10000, interval: 200 }).toEqual([]);
      for (const p of peers) {
        expect(p.errors().filter((code) => code !== 325 && code !== 337)).toEqual([]);
        expect(p.c.closeInfo).toBeNull();
      }
    } finally {
      for (const p of peers) p.stop();
      process.off('unhandledRejection', onRejection);
    }
    expect(rejections).toEqual([]);
  }, 40000);
});

describe('cluster on a Redis that comes back empty', () => {
  it("hands an online receiver what was stored for it since, though the new seq counter is below where the receiver's last replay ended", async () => {
    // A short presence TTL: the node finds its registration gone (and registers its users again) within half a second.
    const { nodes, redis } = await startNodes(['e1', 'e3'], 'empty:', { presenceTtlMs: 1500 });
    const alice = await WsClient.open(nodes[0].ports.ws!);
    clients.push(alice);
    await login(alice, 'alice');
    for (let i = 0; i < 3; i++) {
      alice.send(dataFrame('alice', 'bob', `before ${i}`, `fp-b${i}`));
      expect((await alice.nextOfType(4)).dataContent).toBe(`fp-b${i}`);
    }
    const c = await WsClient.open(nodes[1].ports.ws!);
    clients.push(c);
    await login(c, 'bob');
    const bob = new Peer('bob', c);
    const probe = new Redis(redis.url);
    let other: RedisMessageStore | null = null;
    try {
      // bob's replay hands the three over (seq 1-3) and ends once they are ACKed.
      await expect.poll(() => bob.got.size).toBe(3);
      await expect.poll(async () => Number((await probe.hget('empty:stat', 'rows')) ?? 0)).toBe(0);
      await new Promise((r) => setTimeout(r, 300));
      // Redis replaced by an empty one: every key gone (the seq counter too), every command connection dropped.
      await probe.flushall();
      await probe.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      // Another node stores four messages for bob (seq 1-4) whose notifications are lost.
      other = await RedisMessageStore.open({ redis: redis.url, keyPrefix: 'empty:', markHolder: { nodeId: 'e2', dirtyTtlMs: 60_000 }, logger: silentLogger });
      for (let i = 0; i < 4; i++) await other.put('bob', 'alice', `fp-a${i}`, JSON.stringify(dataFrame('alice', 'bob', `after ${i}`, `fp-a${i}`)));
      await expect.poll(() => bob.got.size, { timeout: 8000, interval: 100 }).toBe(7);
    } finally {
      bob.stop();
      await other?.close();
      probe.disconnect();
    }
  }, 20000);
});

describe('cluster with receivers moving between nodes', () => {
  it('delivers every ACKed message while receivers reconnect to another node every 300 ms and Redis pauses for 2.5 s; each old connection is closed within seconds, not at its idle expiry', async () => {
    const { nodes, redis } = await startNodes(['y1', 'y2', 'y3'], 'move:');
    const { rejections, onRejection } = watchRejections();
    const senders: Peer[] = [];
    const receivers: Array<{ uid: string; peers: Peer[]; flt: number; got: () => Set<string> }> = [];
    const all: Peer[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const c = await WsClient.open(nodes[i].ports.ws!);
        clients.push(c);
        await login(c, `s${i}`);
        const p = new Peer(`s${i}`, c);
        senders.push(p);
        all.push(p);
      }
      for (let i = 0; i < 3; i++) {
        const c = await WsClient.open(nodes[(i + 1) % 3].ports.ws!);
        clients.push(c);
        const r = await login(c, `r${i}`);
        const p = new Peer(`r${i}`, c);
        all.push(p);
        const rec = { uid: `r${i}`, peers: [p], flt: r.firstLoginTime, got: (): Set<string> => new Set(rec.peers.flatMap((x) => [...x.got])) };
        receivers.push(rec);
      }
      const random = seededRandom(11);
      const acked = new Map<string, string>();
      let stop = false;
      const send = async (p: Peer): Promise<void> => {
        for (let n = 0; !stop && n < 120; n++) {
          await new Promise((r) => setTimeout(r, 40));
          const to = receivers[Math.floor(random() * receivers.length)];
          const fp = `${p.uid}-${n}`;
          if (!(await p.sendUntilAcked(to.uid, `m ${n}`, fp, () => stop))) return;
          acked.set(`${p.uid}:${fp}`, to.uid);
        }
      };
      let hops = 0;
      let slowestCloseMs = 0;
      const move = async (rec: (typeof receivers)[number], k: number): Promise<void> => {
        for (let hop = 1; !stop; hop++) {
          await new Promise((r) => setTimeout(r, 300));
          const c = await WsClient.open(nodes[(k + 1 + hop) % 3].ports.ws!);
          clients.push(c);
          const old = rec.peers[rec.peers.length - 1];
          // The SDK reconnecting: the firstLoginTime the server handed out, so the old session is replaced silently.
          c.send({ ...loginFrame(rec.uid, rec.flt) });
          const answer = await c.next((f) => f.type === 50 || f.type === 52, 8000);
          const p = new Peer(rec.uid, c);
          all.push(p);
          if (answer.type === 52) {
            // Refused while Redis is paused (337): the SDK retries.
            continue;
          }
          rec.peers.push(p);
          hops++;
          // Replaced: closed within one kick's crossing (never left open beside the new one until it idles out).
          const replacedMs = Date.now();
          await old.c.closed;
          slowestCloseMs = Math.max(slowestCloseMs, Date.now() - replacedMs);
        }
      };
      const running = [...senders.map(send), ...receivers.map(move)];
      await new Promise((r) => setTimeout(r, 1200));
      await rawPause(redis.url, 2500);
      await new Promise((r) => setTimeout(r, 3500));
      stop = true;
      await Promise.all(running);
      expect(hops).toBeGreaterThan(6);
      // The defect left old connections open 17–21 s (until they idled out); fixed they close in about 1 s.
      // The bound leaves room for a loaded CI machine without letting the defect through.
      expect(slowestCloseMs).toBeLessThan(8000);
      const missing = () => [...acked].filter(([key, to]) => !receivers.find((r) => r.uid === to)!.got().has(key)).map(([key]) => key);
      await expect.poll(missing, { timeout: 10000, interval: 200 }).toEqual([]);
      for (const p of senders) expect(p.errors().filter((code) => code !== 325 && code !== 337)).toEqual([]);
      for (const r of receivers) {
        const last = r.peers[r.peers.length - 1];
        expect(last.c.closeInfo).toBeNull();
        for (const p of r.peers.slice(0, -1)) expect(p.c.closeInfo).not.toBeNull();
      }
    } finally {
      for (const p of all) p.stop();
      process.off('unhandledRejection', onRejection);
    }
    expect(rejections).toEqual([]);
  }, 60000);
});

/** CLIENT PAUSE for `ms` from a connection of its own. */
async function rawPause(url: string, ms: number): Promise<void> {
  const c = new Redis(url);
  c.on('error', () => undefined);
  try {
    await c.call('CLIENT', 'PAUSE', String(ms), 'ALL');
  } finally {
    c.disconnect();
  }
}
