import { describe, expect, it } from 'vitest';
import { loginOnline, makeClient, useFakeTimersPerTest } from '../helpers/setup';

useFakeTimersPerTest();

const keepAliveOff = { keepAlive: { intervalMs: 10_000_000, timeoutMs: 20_000_000 } };

describe('each QoS message reaches the application once', () => {
  it('holds across a logout and a login of the same user (a replayed message is ACKed, not shown again)', async () => {
    const ctx = makeClient(keepAliveOff);
    let sock = await loginOnline(ctx, 'bob');
    sock.deliver({ type: 2, dataContent: 'hi', from: 'alice', to: 'bob', fp: 'fp-1', QoS: true });
    expect(ctx.of('message')).toHaveLength(1);
    await ctx.client.logout();
    sock = await loginOnline(ctx, 'bob');
    sock.deliver({ type: 2, dataContent: 'hi', from: 'alice', to: 'bob', fp: 'fp-1', QoS: true });
    expect(ctx.of('message')).toHaveLength(1);
    expect(sock.sentOfType(4).map((f) => f.dataContent)).toEqual(['fp-1']);
    ctx.client.destroy();
  });

  it('starts afresh for another user, and tells two senders with the same fp apart', async () => {
    const ctx = makeClient(keepAliveOff);
    let sock = await loginOnline(ctx, 'bob');
    sock.deliver({ type: 2, dataContent: 'from mallory', from: 'mallory', to: 'bob', fp: 'fp-x', QoS: true });
    sock.deliver({ type: 2, dataContent: 'from alice', from: 'alice', to: 'bob', fp: 'fp-x', QoS: true });
    expect(ctx.of('message').map((m: { content: string }) => m.content)).toEqual(['from mallory', 'from alice']);
    await ctx.client.logout();
    sock = await loginOnline(ctx, 'carol');
    sock.deliver({ type: 2, dataContent: 'for carol', from: 'alice', to: 'carol', fp: 'fp-x', QoS: true });
    expect(ctx.of('message')).toHaveLength(3);
    ctx.client.destroy();
  });
});
