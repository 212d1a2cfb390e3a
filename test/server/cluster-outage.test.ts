import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { OfflineStoreError, ServerErrorCode, silentLogger, type IMServer } from '../../server/src/index';
import { RedisMessageStore } from '../../server/src/store-redis';
import { startRedisServer, type RedisServer } from '../helpers/redis-server';
import { ackFrame, admin, closeAll, dataFrame, errorOf, login, startServer, WsClient, type RawClient } from './helpers';

/**
 * What the cluster fault tests (test/fault/cluster-faults.test.ts) found when Redis is killed, reduced to
 * two in-process nodes and raw frames.
 */

let redis: RedisServer | null = null;
const clients: RawClient[] = [];
const servers: IMServer[] = [];

afterEach(async () => {
  await closeAll(clients.splice(0), servers.splice(0));
});
afterAll(async () => {
  await redis?.stop();
});

/** Two nodes (`ids`) on `redisUrl` under `keyPrefix`, alice logged in at the first and bob at the second. */
async function aliceAndBob(redisUrl: string, keyPrefix: string, ids: [string, string], extra: { presenceTtlMs?: number } = {}) {
  const nodes: IMServer[] = [];
  for (const nodeId of ids) {
    const s = await startServer({ nodeId, udp: false, tcp: false, cluster: { redisUrl, keyPrefix, recheckMs: 200, ...extra } });
    servers.push(s);
    nodes.push(s);
  }
  const alice = await WsClient.open(nodes[0].ports.ws!);
  const bob = await WsClient.open(nodes[1].ports.ws!);
  clients.push(alice, bob);
  await login(alice, 'alice');
  await login(bob, 'bob');
  return { nodes, alice, bob };
}

describe('cluster: Redis down, and back', () => {
  it('keeps a receiver\'s connection when it ACKs while Redis is down (the receipt cannot be routed), and delivers the copy again once Redis is back', async () => {
    // 'always': the copy stored just before the SIGKILL must be in the AOF (everysec may postpone it).
    const own = await startRedisServer({ appendfsync: 'always' });
    try {
      const { alice, bob } = await aliceAndBob(own.url, 'ack:', ['a1', 'a2']);
      alice.send(dataFrame('alice', 'bob', 'hello', 'fp-a'));
      expect((await bob.nextOfType(2)).fp).toBe('fp-a');
      await own.kill();
      // The ACK settles the node's QoS entry; removing the stored copy and routing the receipt both fail.
      bob.send(ackFrame('bob', 'alice', 'fp-a'));
      bob.send({ bridge: false, type: 1, dataContent: '{}', from: 'bob', to: '0', QoS: false, typeu: -1, sm: -1 });
      expect((await bob.nextOfType(51)).type).toBe(51);
      expect(bob.frames.filter((f) => f.type === 52)).toEqual([]);
      expect(bob.closeInfo).toBeNull();
      // The copy is still stored (its removal failed): at least once, never lost.
      await own.restart();
      const again = await bob.next((f) => f.type === 2, 8000);
      expect([again.from, again.fp]).toEqual(['alice', 'fp-a']);
    } finally {
      await own.stop();
    }
  });

  it('refuses (325) a message whose write a stalled Redis never got, and stores nothing of it', { timeout: 30_000 }, async () => {
    const own = await startRedisServer();
    try {
      const { nodes: [u1, u2], alice, bob } = await aliceAndBob(own.url, 'stall:', ['u1', 'u2']);
      // Redis stops answering. Once the node's PING probe has found the stall (not ready), a put is refused
      // before it goes out (NotSentError): a certain refusal. (One sent before that gets no answer at all.)
      process.kill(own.pid, 'SIGSTOP');
      let stopped = true;
      try {
        await expect.poll(async () => (await admin(u1.ports.http!, 'GET', '/ready')).status, { timeout: 5000 }).toBe(503);
        alice.send(dataFrame('alice', 'bob', 'not stored', 'fp-u'));
        const refusal = await alice.next((f) => f.type === 52 || f.type === 4, 6000);
        expect(refusal.type).toBe(52);
        expect(errorOf(refusal).errorCode).toBe(ServerErrorCode.STORE_UNAVAILABLE);
        process.kill(own.pid, 'SIGCONT');
        stopped = false;
      } finally {
        if (stopped) process.kill(own.pid, 'SIGCONT');
      }
      // Refused means not stored: bob gets nothing, now or at his next login.
      expect((await bob.quiet(1500)).filter((f) => f.type === 2)).toEqual([]);
      const bob2 = await WsClient.open(u2.ports.ws!);
      clients.push(bob2);
      await login(bob2, 'bob', Date.now());
      expect((await bob2.quiet(1000)).filter((f) => f.type === 2)).toEqual([]);
    } finally {
      await own.stop();
    }
  });

  it('a put whose script went out and got no answer says it may have been written, and so does every attempt of it until one is answered', { timeout: 30_000 }, async () => {
    const own = await startRedisServer();
    const store = await RedisMessageStore.open({ redis: own.url, keyPrefix: 'unsure:', logger: silentLogger });
    try {
      await store.put('bob', 'alice', 'fp-0', 'earlier');
      process.kill(own.pid, 'SIGSTOP');
      let stopped = true;
      try {
        const first = await store.put('bob', 'alice', 'fp-u', 'maybe').then(() => null, (e: OfflineStoreError) => e);
        expect(first?.reason).toBe('unavailable');
        expect(first?.mayHaveWritten).toBe(true);
        // A second attempt while Redis is still stopped: still "may have been written", never a plain refusal.
        const second = await store.put('bob', 'alice', 'fp-u', 'maybe').then(() => null, (e: OfflineStoreError) => e);
        expect(second?.mayHaveWritten).toBe(true);
        process.kill(own.pid, 'SIGCONT');
        stopped = false;
      } finally {
        if (stopped) process.kill(own.pid, 'SIGCONT');
      }
      // Redis applied the first attempt when it resumed: the retry answers "already stored".
      await expect.poll(() => store.put('bob', 'alice', 'fp-u', 'maybe').catch(() => 'refused'), { timeout: 5000 }).toBe(false);
      expect((await store.list('bob', 0, 10)).map((m) => m.fp)).toEqual(['fp-0', 'fp-u']);
    } finally {
      await store.close();
      await own.stop();
    }
  });

  it('delivers a message stored for one of its users during the lapse once its refresh finds the lapse, without a new login', async () => {
    redis = await startRedisServer();
    const keyPrefix = 'lapse:';
    // Refreshed every 2000 ms: the lapse below lasts until r2's next refresh.
    const { nodes: [r1], alice, bob } = await aliceAndBob(redis.url, keyPrefix, ['r1', 'r2'], { presenceTtlMs: 6000 });

    // r2's registration expires (as after a Redis outage longer than the TTL): bob is offline for r1.
    const admin = new Redis(redis.url);
    try {
      await admin.del(`${keyPrefix}alive:r2`);
    } finally {
      admin.disconnect();
    }
    expect(await r1.allOnlineUsers()).toEqual(['alice']);
    alice.send(dataFrame('alice', 'bob', 'during the lapse', 'fp-1'));
    expect((await alice.next((f) => f.type === 4 && f.dataContent === 'fp-1')).dataContent).toBe('fp-1');
    // Stored, ACKed, and no node was told: r2 must replay it after its refresh repairs the registration.
    const got = await bob.next((f) => f.type === 2, 8000);
    expect([got.from, got.dataContent, got.fp]).toEqual(['alice', 'during the lapse', 'fp-1']);
    await expect.poll(async () => (await r1.allOnlineUsers()).sort(), { timeout: 5000 }).toEqual(['alice', 'bob']);
  });
});
