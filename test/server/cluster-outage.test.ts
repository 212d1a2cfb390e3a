import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { IMServer } from '../../server/src/index';
import { startRedisServer, type RedisServer } from '../helpers/redis-server';
import { ackFrame, closeAll, dataFrame, login, startServer, WsClient, type RawClient } from './helpers';

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

describe('cluster: Redis down, and back', () => {
  it('keeps a receiver\'s connection when it ACKs while Redis is down (the receipt cannot be routed), and delivers the copy again once Redis is back', async () => {
    const own = await startRedisServer();
    try {
      const cluster = { redisUrl: own.url, keyPrefix: 'ack:', recheckMs: 200 };
      for (const nodeId of ['a1', 'a2']) servers.push(await startServer({ nodeId, udp: false, tcp: false, cluster }));
      const alice = await WsClient.open(servers[0].ports.ws!);
      const bob = await WsClient.open(servers[1].ports.ws!);
      clients.push(alice, bob);
      await login(alice, 'alice');
      await login(bob, 'bob');
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

  it('neither ACKs nor refuses a message whose write went out to Redis without an answer (Redis may hold it), and ACKs its retransmission once Redis answers', { timeout: 30_000 }, async () => {
    const own = await startRedisServer();
    try {
      const cluster = { redisUrl: own.url, keyPrefix: 'unsure:', recheckMs: 200 };
      for (const nodeId of ['u1', 'u2']) servers.push(await startServer({ nodeId, udp: false, tcp: false, cluster }));
      const alice = await WsClient.open(servers[0].ports.ws!);
      const bob = await WsClient.open(servers[1].ports.ws!);
      clients.push(alice, bob);
      await login(alice, 'alice');
      await login(bob, 'bob');
      // Redis stops answering: the de-duplication check, the receiver's lookup and the put each time out
      // after 2 s (the put went out: Redis applies it when it resumes).
      process.kill(own.pid, 'SIGSTOP');
      let stopped = true;
      try {
        alice.send(dataFrame('alice', 'bob', 'maybe stored', 'fp-u'));
        const quiet = await alice.quiet(7000);
        // A refusal (error 325) would make the sender report a loss for a message Redis is about to hold.
        expect(quiet.filter((f) => f.type === 52 || f.type === 4)).toEqual([]);
        process.kill(own.pid, 'SIGCONT');
        stopped = false;
      } finally {
        if (stopped) process.kill(own.pid, 'SIGCONT');
      }
      // The SDK retransmits the same fp: the idempotent put answers, the sender gets its ACK, the receiver one copy.
      alice.send(dataFrame('alice', 'bob', 'maybe stored', 'fp-u'));
      expect((await alice.next((f) => f.type === 4 || f.type === 52, 5000)).type).toBe(4);
      const got = await bob.next((f) => f.type === 2, 5000);
      expect([got.from, got.dataContent, got.fp]).toEqual(['alice', 'maybe stored', 'fp-u']);
      bob.send(ackFrame('bob', 'alice', 'fp-u'));
      expect((await bob.quiet(500)).filter((f) => f.type === 2)).toEqual([]);
    } finally {
      await own.stop();
    }
  });

  it('delivers a message stored for one of its users during the lapse once its refresh finds the lapse, without a new login', async () => {
    redis = await startRedisServer();
    const keyPrefix = 'lapse:';
    // Refreshed every 2000 ms: the lapse below lasts until r2's next refresh.
    const cluster = { redisUrl: redis.url, keyPrefix, recheckMs: 200, presenceTtlMs: 6000 };
    for (const nodeId of ['r1', 'r2']) servers.push(await startServer({ nodeId, udp: false, tcp: false, cluster }));
    const [r1] = servers;
    const alice = await WsClient.open(r1.ports.ws!);
    const bob = await WsClient.open(servers[1].ports.ws!);
    clients.push(alice, bob);
    await login(alice, 'alice');
    await login(bob, 'bob');

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
