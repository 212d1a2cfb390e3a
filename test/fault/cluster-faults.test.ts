import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { SenseMode } from '../../src/sense-mode';
import { seededRandom } from '../helpers/random';
import { startRedisServer, type RedisServer } from '../helpers/redis-server';
import { killAllClusterNodes, startClusterNode, type ClusterNodeProcess } from './cluster-nodes';
import { CLUSTER_SEED, describeRun, expectQosPromiseKept, receiverOf, runClusterScenario, spread } from './cluster-scenario';
import { FaultProxy } from './fault-proxy';

/**
 * Issue 11's cluster faults, end to end: three nodes as child processes of the built server on one
 * private redis-server, nine SDK clients (WebSocket, QoS, the URL list of all three nodes) spread over
 * them and sending C2C to each other while one fault strikes. Through the ledger, every message must end
 * delivered once to the application or reported lost to its sender: no silent loss, no duplicate.
 */

const USERS = 9;
const RECHECK_MS = 300;
const PRESENCE_TTL_MS = 3000;

let redis: RedisServer | null = null;
let cases = 0;
const cleanups: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  await killAllClusterNodes();
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  await redis?.stop();
});

/** Starts nodes n1..n3 on `redisUrl` under a fresh key prefix; `urlOf(i)` can route one through a proxy. */
async function startNodes(redisUrl: string, extra: { durability?: 'everysec' | 'always'; urlOf?: (i: number) => string } = {}): Promise<ClusterNodeProcess[]> {
  const keyPrefix = `cf${++cases}:`;
  const nodes: ClusterNodeProcess[] = [];
  for (let i = 0; i < 3; i++) {
    nodes.push(
      await startClusterNode({
        nodeId: `n${i + 1}`,
        senseMode: SenseMode.MODE_3S,
        qos: { checkIntervalMs: 250, resendAfterMs: 400, maxRetries: 3 },
        cluster: {
          redisUrl: extra.urlOf?.(i) ?? redisUrl,
          keyPrefix,
          recheckMs: RECHECK_MS,
          presenceTtlMs: PRESENCE_TTL_MS,
          ...(extra.durability && { durability: extra.durability }),
        },
      }),
    );
  }
  return nodes;
}

describe('cluster faults: three node processes on one Redis, SDK clients over the URL list', () => {
  it('a node SIGKILLed mid-run: its clients log in again at the others, messages stored for them meanwhile arrive, nothing lost silently or twice', async () => {
    redis ??= await startRedisServer();
    const nodes = await startNodes(redis.url);
    const victim = nodes[1];
    let killedAtMs = -1;
    const messages = 1200;
    const r = await runClusterScenario({
      urls: nodes.map((n) => n.wsUrl),
      users: USERS,
      messages,
      sendMs: 6000,
      seed: 1,
      fault: {
        atMs: 2000,
        run: async ({ send }) => {
          await victim.kill();
          killedAtMs = Date.now();
          // Two messages from each survivor to each of the victim's users now, before they can be back.
          for (let i = 0; i < USERS; i++) if (i % 3 !== 1) for (let k = 1; k < USERS; k += 3) for (let j = 0; j < 2; j++) send(`u${i}`, `u${k}`);
        },
      },
    });
    console.log(describeRun('node SIGKILL', r));
    const moved = [...r.home].filter(([, url]) => url === victim.wsUrl).map(([u]) => u);
    expect(moved.length).toBe(USERS / 3);
    // Messages for the victim's users not yet shown to them at the kill (in flight, or sent while they were
    // away): stored, then delivered after their login elsewhere.
    const pendingAtKill = [...r.sentAtMs.keys()].filter((id) => {
      const at = r.deliveredAtMs.get(id);
      return moved.includes(receiverOf(id)) && (r.sentAtMs.get(id) as number) < r.faultAtMs + 100 && (at === undefined || at >= r.faultAtMs);
    });
    // The victim's users (home n2) each logged in again at another node, through the URL list.
    const back = new Map<string, number>();
    for (const u of moved) {
      const again = r.relogins.get(u) ?? [];
      expect(again.length).toBeGreaterThan(0);
      expect(again.every((x) => x.url !== victim.wsUrl)).toBe(true);
      back.set(u, again[0].atMs);
    }
    // Clients of the surviving nodes never lost their session.
    for (const [u, url] of r.home) if (url !== victim.wsUrl) expect(r.relogins.get(u)).toEqual([]);
    const reconnectMs = [...back.values()].map((t) => t - r.faultAtMs);
    console.log(`  victim's users back online ${reconnectMs.join(', ')} ms after the kill`);
    // Messages for the victim's users sent between the kill and their login elsewhere: stored, then delivered.
    const away = [...r.sentAtMs].filter(([id, t]) => back.has(receiverOf(id)) && t >= r.faultAtMs && t < (back.get(receiverOf(id)) as number));
    const pending = new Set([...pendingAtKill, ...away.map(([id]) => id)]);
    console.log(`  ${away.length} messages sent to them while they were away, ${pending.size} not yet shown to them at the kill (in flight included)`);
    expect(away.length).toBeGreaterThan(0);
    expect(r.ledger.counts((id) => pending.has(id))).toMatchObject({ sent: pending.size, delivered: pending.size });
    for (const id of pending) expect(r.deliveredAtMs.get(id)).toBeGreaterThanOrEqual(back.get(receiverOf(id)) as number);
    expect(killedAtMs).toBeGreaterThan(0);
    expectQosPromiseKept(r, messages);
    // No node refused anything and every client reconnected within its 60 s deadline: nothing is lost at all.
    expect(r.all.lost).toBe(0);
  }, 60_000);

  // Down for less than the presence TTL, and for longer: then every node's registration lapses, and a
  // message stored between Redis's return and a node's next refresh finds its receiver offline.
  it.each([
    { downMs: 1500, what: 'shorter' },
    { downMs: 4000, what: 'longer' },
  ])('Redis SIGKILLed and restarted mid-run, down $downMs ms ($what than the presence TTL; appendfsync always): what was ACKed arrives once, what was sent meanwhile is reported lost (error 325)', async ({ downMs }) => {
    // With appendfsync everysec Redis may answer before the AOF write when a background fsync is slow
    // (it postpones the write up to 2 s), so a crash of its process can lose ACKed messages; with
    // `always` (and --redis-durability always to check it) the promise is exact: no ACKed message lost.
    const own = await startRedisServer({ appendfsync: 'always' });
    cleanups.push(() => own.stop());
    const nodes = await startNodes(own.url, { durability: 'always' });
    let restartedAtMs = -1;
    const messages = 1800;
    let t0 = 0;
    const r = await runClusterScenario({
      urls: nodes.map((n) => n.wsUrl),
      users: USERS,
      messages,
      sendMs: 9000,
      seed: 2 + downMs,
      fault: {
        atMs: 2000,
        run: async () => {
          t0 = Date.now();
          await own.kill();
          await new Promise((res) => setTimeout(res, downMs));
          await own.restart();
          restartedAtMs = Date.now() - t0;
        },
      },
    });
    console.log(describeRun(`Redis SIGKILL + restart after ${downMs} ms`, r));
    const lostSent = [...r.sentAtMs].filter(([id]) => r.ledger.counts((x) => x === id).lost === 1).map(([, t]) => t - r.faultAtMs);
    console.log(`  Redis back ${restartedAtMs} ms after the kill; lost messages were sent at ${spread(lostSent)} after the kill`);
    expectQosPromiseKept(r, messages);
    // Sends during the outage were refused at once with error 325 (MESSAGE_REFUSED), never ACKed.
    expect(r.all.lost).toBeGreaterThan(0);
    expect(Object.keys(r.lostCodes)).toEqual(['MESSAGE_REFUSED/325']);
    // Once the nodes had their connections back (each retries at least every second), nothing more was refused.
    const later = [...r.sentAtMs].filter(([, t]) => t > r.faultAtMs + restartedAtMs + 1500).map(([id]) => id);
    expect(later.length).toBeGreaterThan(0);
    expect(r.ledger.counts((id) => later.includes(id))).toMatchObject({ sent: later.length, delivered: later.length });
    // The sessions lived through the outage: nobody was kicked or had to log in again.
    for (const [u] of r.home) expect(r.drops.get(u)?.filter((d) => d.reason !== 'destroyed')).toEqual([]);
  }, 60_000);

  it('a node\'s Redis subscriber connection silently black-holed: messages for its users still arrive (the dirty-set recheck), the node replaces the deaf subscriber, none lost', async () => {
    redis ??= await startRedisServer();
    const proxy = new FaultProxy(redis.port, seededRandom(CLUSTER_SEED + 3));
    cleanups.push(() => proxy.close());
    const proxyPort = await proxy.listen();
    const direct = redis.url;
    const nodes = await startNodes(direct, { urlOf: (i) => (i === 2 ? `redis://127.0.0.1:${proxyPort}` : direct) });
    const admin = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    cleanups.push(async () => admin.disconnect());
    await admin.connect();
    const channel = `cf${cases}:node:n3`;
    const messages = 1000;
    let cutAtMs = -1;
    let replacedAtMs = -1;
    const r = await runClusterScenario({
      urls: nodes.map((n) => n.wsUrl),
      users: USERS,
      messages,
      sendMs: 5000,
      seed: 3,
      fault: {
        atMs: 1000,
        run: async () => {
          // Redis names the subscriber (CLIENT SETNAME routing-sub-n3) and its address: the proxy's upstream port.
          const list = (await admin.client('LIST')) as string;
          const line = list.split('\n').find((l) => / name=routing-sub-n3 /.test(l));
          const port = Number(/ addr=127\.0\.0\.1:(\d+) /.exec(line ?? '')?.[1]);
          expect(proxy.stallWhere((up) => up.localPort === port)).toBe(1);
          const t = Date.now();
          cutAtMs = 0;
          // n3 finds its subscriber deaf (its own ping unheard) and opens a new one through the proxy.
          while (proxy.counts.connections < 3 && Date.now() - t < 15_000) await new Promise((res) => setTimeout(res, 20));
          if (proxy.counts.connections >= 3) replacedAtMs = Date.now() - t;
        },
      },
    });
    console.log(describeRun('subscriber black-holed', r));
    console.log(`  n3 replaced its deaf subscriber ${replacedAtMs} ms after the cut (subscriber check every ${Math.max(1000, RECHECK_MS * 5)} ms)`);
    expect(cutAtMs).toBe(0);
    expect(replacedAtMs).toBeGreaterThan(0);
    // The old connection stays black-holed and Redis still counts it: what is published to n3 reaches the new one too.
    expect(proxy.counts).toMatchObject({ connections: 3, stalls: 1 });
    expect(await admin.pubsub('NUMSUB', channel)).toEqual([channel, 2]);
    // Sent to n3's users while only the recheck could bring them: delivered all the same.
    const n3Users = [...r.home].filter(([, url]) => url === nodes[2].wsUrl).map(([u]) => u);
    const deaf = [...r.sentAtMs.keys()].filter((id) => {
      const t = r.sentAtMs.get(id) as number;
      return n3Users.includes(receiverOf(id)) && t > r.faultAtMs + 50 && t < r.faultAtMs + replacedAtMs;
    });
    const latency = deaf.map((id) => (r.deliveredAtMs.get(id) ?? NaN) - (r.sentAtMs.get(id) as number));
    console.log(`  to n3's users while it was deaf: delivered after ${spread(latency)} (recheck every ${RECHECK_MS} ms)`);
    expect(deaf.length).toBeGreaterThan(0);
    expect(r.ledger.counts((id) => deaf.includes(id))).toMatchObject({ sent: deaf.length, delivered: deaf.length });
    expectQosPromiseKept(r, messages);
    expect(r.all.lost).toBe(0);
    for (const [u] of r.home) expect(r.relogins.get(u)).toEqual([]);
  }, 60_000);
});
