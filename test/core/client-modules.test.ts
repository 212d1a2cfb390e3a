/**
 * The modules split out of the client (reconnect.ts, lifecycle.ts, echo.ts), driven through IMClient's
 * public API only: what a user can observe of token refresh, pausing and echo bookkeeping.
 */
import { describe, expect, it, vi } from 'vitest';
import { MsgType } from '../../src/protocol';
import { loginOnline, makeClient, useFakeTimersPerTest } from '../helpers/setup';

useFakeTimersPerTest();

describe('reconnect (token refresh and attempts)', () => {
  it('a getToken() that resolves with a non-string is a TOKEN_ERROR, and the next attempt follows the backoff', async () => {
    const getToken = vi.fn().mockResolvedValueOnce(42).mockResolvedValue('fresh');
    const ctx = makeClient({ getToken, random: () => 0.5, reconnect: { minDelayMs: 1000, maxDelayMs: 8000 } });
    const sock = await loginOnline(ctx);
    sock.serverClose(1006, '');
    await vi.advanceTimersByTimeAsync(500);
    expect(ctx.of('error')).toEqual([expect.objectContaining({ code: 'TOKEN_ERROR', cause: 42 })]);
    expect(ctx.fake.sockets).toHaveLength(1);
    // Attempt 2 waits half of 2 s (random 0.5): not one millisecond less.
    expect(ctx.of('reconnect').map((r: { delayMs: number }) => r.delayMs)).toEqual([500, 1000]);
    await vi.advanceTimersByTimeAsync(999);
    expect(ctx.fake.sockets).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(ctx.fake.sockets).toHaveLength(2);
    ctx.fake.last.open();
    expect(JSON.parse(ctx.fake.last.sentOfType(MsgType.LOGIN)[0].dataContent as string)).toMatchObject({ loginToken: 'fresh' });
    ctx.client.destroy();
  });

  it('a token that arrives while the network is down opens no link; its return fetches a fresh one', async () => {
    const releases: Array<(t: string) => void> = [];
    const ctx = makeClient({ getToken: () => new Promise<string>((r) => releases.push(r)), random: () => 0 });
    const sock = await loginOnline(ctx);
    sock.serverClose(1006, '');
    await vi.advanceTimersByTimeAsync(0);
    ctx.fake.fire('offline');
    releases[0]('late-token');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(ctx.fake.sockets).toHaveLength(1);
    expect(ctx.client.state).toBe('reconnecting');
    ctx.fake.fire('online');
    await vi.advanceTimersByTimeAsync(0);
    expect(releases).toHaveLength(2);
    releases[1]('after-online');
    await vi.advanceTimersByTimeAsync(0);
    expect(ctx.fake.sockets).toHaveLength(2);
    ctx.fake.last.open();
    expect(JSON.parse(ctx.fake.last.sentOfType(MsgType.LOGIN)[0].dataContent as string)).toMatchObject({ loginToken: 'after-online' });
    ctx.client.destroy();
  });

  it('reconnectNow() during a token fetch drops the stale fetch: one link, with the newer token', async () => {
    const releases: Array<(t: string) => void> = [];
    const ctx = makeClient({ getToken: () => new Promise<string>((r) => releases.push(r)), random: () => 0 });
    const sock = await loginOnline(ctx);
    sock.serverClose(1006, '');
    await vi.advanceTimersByTimeAsync(0);
    expect(releases).toHaveLength(1);
    ctx.client.reconnectNow();
    await vi.advanceTimersByTimeAsync(0);
    expect(releases).toHaveLength(2);
    releases[0]('stale');
    await vi.advanceTimersByTimeAsync(0);
    expect(ctx.fake.sockets).toHaveLength(1);
    releases[1]('current');
    await vi.advanceTimersByTimeAsync(0);
    expect(ctx.fake.sockets).toHaveLength(2);
    ctx.fake.last.open();
    expect(JSON.parse(ctx.fake.last.sentOfType(MsgType.LOGIN)[0].dataContent as string)).toMatchObject({ loginToken: 'current' });
    expect(ctx.client.stats().reconnectAttempts).toBe(1);
    ctx.client.destroy();
  });
});

describe('lifecycle (network and foreground together)', () => {
  it('resumes only when both the network and the foreground are back', async () => {
    const ctx = makeClient({ random: () => 0 });
    await loginOnline(ctx);
    ctx.fake.fire('background');
    ctx.fake.fire('offline');
    expect(ctx.client.state).toBe('reconnecting');
    ctx.fake.fire('online');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(ctx.fake.sockets).toHaveLength(1);
    ctx.fake.fire('foreground');
    expect(ctx.fake.sockets).toHaveLength(2);
    ctx.client.destroy();
  });

  it('forgets the paused state at logout: the next login retries normally', async () => {
    const ctx = makeClient({ random: () => 0 });
    await loginOnline(ctx);
    ctx.fake.fire('background');
    await ctx.client.logout();
    const sock = await loginOnline(ctx);
    sock.serverClose(1006, '');
    await vi.advanceTimersByTimeAsync(0);
    expect(ctx.fake.sockets).toHaveLength(3);
    ctx.client.destroy();
  });
});

describe('echo', () => {
  it('answers concurrent echoes each by its own token, and ignores a reply nobody waits for', async () => {
    const ctx = makeClient();
    const sock = await loginOnline(ctx);
    const first = ctx.client.echo();
    await vi.advanceTimersByTimeAsync(100);
    const second = ctx.client.echo();
    const [a, b] = sock.sentOfType(MsgType.ECHO).map((f) => f.dataContent as string);
    expect(a).not.toBe(b);
    await vi.advanceTimersByTimeAsync(50);
    sock.deliver({ type: 53, dataContent: b, to: 'u1' });
    sock.deliver({ type: 53, dataContent: b, to: 'u1' });
    await vi.advanceTimersByTimeAsync(25);
    sock.deliver({ type: 53, dataContent: a, to: 'u1' });
    await expect(second).resolves.toEqual({ rttMs: 50 });
    await expect(first).resolves.toEqual({ rttMs: 175 });
    ctx.client.destroy();
  });
});
