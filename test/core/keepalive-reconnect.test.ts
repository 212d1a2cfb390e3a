import { describe, expect, it, vi } from 'vitest';
import { backoffDelay } from '../../src/backoff';
import { MsgType } from '../../src/protocol';
import { SenseMode, senseModeTimings } from '../../src/sense-mode';
import { loginOnline, makeClient, seededRandom, useFakeTimersPerTest } from '../helpers/setup';

useFakeTimersPerTest();

describe('keep-alive', () => {
  it.each(Object.entries(SenseMode))('%s: beats every interval and declares the link dead at the timeout', async (_name, mode) => {
    const { intervalMs, timeoutMs } = senseModeTimings(mode);
    const ctx = makeClient({ senseMode: mode });
    const sock = await loginOnline(ctx);
    await vi.advanceTimersByTimeAsync(intervalMs - 1);
    expect(sock.sentOfType(MsgType.KEEP_ALIVE)).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(sock.sentOfType(MsgType.KEEP_ALIVE)).toEqual([
      { bridge: false, type: 1, dataContent: '{}', from: 'u1', to: '0', fp: null, QoS: false, typeu: -1, sm: -1 },
    ]);
    // No reply: dead exactly timeoutMs after the last frame heard (the login response).
    await vi.advanceTimersByTimeAsync(timeoutMs - intervalMs - 1);
    expect(ctx.client.state).toBe('online');
    await vi.advanceTimersByTimeAsync(1);
    expect(ctx.of('state').at(-1)).toEqual({ from: 'online', to: 'reconnecting', reason: 'keepalive-timeout' });
    expect(sock.closedByClient).not.toBeNull();
    ctx.client.destroy();
  });

  it('stays online while replies come, and counts any frame from the server as a sign of life', async () => {
    const ctx = makeClient({ senseMode: SenseMode.MODE_3S });
    const sock = await loginOnline(ctx);
    for (let i = 0; i < 10; i++) {
      await vi.advanceTimersByTimeAsync(3000);
      if (i % 2) sock.deliver({ type: 51, dataContent: '{}', to: 'u1' });
      else sock.deliver({ type: 2, dataContent: 'x', to: 'u1', from: 'v' });
    }
    expect(ctx.client.state).toBe('online');
    expect(sock.sentOfType(MsgType.KEEP_ALIVE)).toHaveLength(10);
    ctx.client.destroy();
  });

  it('judges by the clock: a timer that fires late finds the link dead at once', async () => {
    const ctx = makeClient({ senseMode: SenseMode.MODE_5S });
    await loginOnline(ctx);
    // Simulate a suspended page: the wall clock jumps, the timer fires once, late.
    vi.setSystemTime(Date.now() + 60_000);
    await vi.advanceTimersByTimeAsync(5000);
    expect(ctx.of('state').some((s: { reason: string }) => s.reason === 'keepalive-timeout')).toBe(true);
    ctx.client.destroy();
  });

  it('honours explicit keepAlive timings', async () => {
    const ctx = makeClient({ keepAlive: { intervalMs: 1000, timeoutMs: 2500 }, reconnect: { maxAttempts: 0 } });
    const sock = await loginOnline(ctx);
    await vi.advanceTimersByTimeAsync(2000);
    expect(sock.sentOfType(MsgType.KEEP_ALIVE)).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(499);
    expect(ctx.client.state).toBe('online');
    await vi.advanceTimersByTimeAsync(1);
    expect(ctx.client.state).toBe('closed');
    expect(ctx.of('error')[0]).toMatchObject({ code: 'RECONNECT_FAILED' });
  });
});

describe('backoffDelay', () => {
  it('is full jitter under an exponential ceiling capped at maxDelayMs', () => {
    expect(backoffDelay(0, 1000, 30000, () => 0.999)).toBe(999);
    expect(backoffDelay(3, 1000, 30000, () => 0.5)).toBe(4000);
    expect(backoffDelay(10, 1000, 30000, () => 0.5)).toBe(15000);
    expect(backoffDelay(5000, 1000, 30000, () => 0.999)).toBe(29970);
    expect(backoffDelay(2, 1000, 30000, () => 0)).toBe(0);
  });
});

describe('auto re-login', () => {
  it('waits the jittered delay, then logs in again with the saved firstLoginTime', async () => {
    const random = seededRandom(7);
    const expected = backoffDelay(0, 1000, 30000, seededRandom(7));
    // The lower boundary is checked only if the seeded draw leaves room below it.
    expect(expected).toBeGreaterThan(0);
    const ctx = makeClient({ random });
    const first = await loginOnline(ctx, 'u1', 123456);
    first.serverClose(1006, '');
    expect(ctx.client.state).toBe('reconnecting');
    expect(ctx.of('reconnect')).toEqual([{ attempt: 1, delayMs: expected }]);
    await vi.advanceTimersByTimeAsync(expected - 1);
    expect(ctx.fake.sockets).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(ctx.fake.sockets).toHaveLength(2);
    ctx.fake.last.open();
    const login = ctx.fake.last.sentOfType(MsgType.LOGIN)[0];
    expect(JSON.parse(login.dataContent as string)).toEqual({ loginUserId: 'u1', loginToken: 'tok', firstLoginTime: 123456, caps: 3 });
    ctx.fake.last.loginResponse(0, 123456);
    expect(ctx.client.state).toBe('online');
    expect(ctx.client.stats().reconnectAttempts).toBe(0);
    ctx.client.destroy();
  });

  it('backs off further after each failed attempt and gives up after maxAttempts', async () => {
    const ctx = makeClient({ reconnect: { minDelayMs: 100, maxDelayMs: 1000, maxAttempts: 3 }, random: () => 0.999 });
    const sock = await loginOnline(ctx);
    sock.serverClose();
    for (let i = 0; i < 3; i++) {
      await vi.advanceTimersByTimeAsync(ctx.of('reconnect').at(-1).delayMs);
      ctx.fake.last.serverClose(1006, '');
    }
    expect(ctx.of('reconnect').map((r: { delayMs: number }) => r.delayMs)).toEqual([99, 199, 399]);
    expect(ctx.client.state).toBe('closed');
    expect(ctx.of('state').at(-1)).toMatchObject({ to: 'closed', reason: 'reconnect-failed' });
    expect(ctx.of('error').at(-1)).toMatchObject({ code: 'RECONNECT_FAILED' });
    expect(ctx.fake.sockets).toHaveLength(4);
  });

  it('re-logs in after error 301 and retries a login that times out', async () => {
    const ctx = makeClient({ random: () => 0, loginTimeoutMs: 2000 });
    const sock = await loginOnline(ctx);
    sock.deliver({ type: 52, dataContent: JSON.stringify({ errorCode: 301, errorMsg: 'x' }), to: '-1' });
    expect(ctx.of('error')[0]).toMatchObject({ code: 'SERVER_ERROR', serverCode: 301 });
    expect(ctx.of('state').at(-1)).toMatchObject({ to: 'reconnecting', reason: 'server-unlogin' });
    await vi.advanceTimersByTimeAsync(1);
    ctx.fake.last.open();
    await vi.advanceTimersByTimeAsync(2000);
    expect(ctx.of('state').filter((s: { reason: string }) => s.reason === 'login-timeout')).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    ctx.fake.last.open();
    ctx.fake.last.loginResponse();
    expect(ctx.client.state).toBe('online');
    ctx.client.destroy();
  });

  it('stops for good when a re-login is rejected', async () => {
    const ctx = makeClient({ random: () => 0 });
    (await loginOnline(ctx)).serverClose();
    await vi.advanceTimersByTimeAsync(1);
    ctx.fake.last.open();
    ctx.fake.last.loginResponse(1025);
    expect(ctx.client.state).toBe('closed');
    expect(ctx.of('error').at(-1)).toMatchObject({ code: 'LOGIN_REJECTED', serverCode: 1025 });
    await vi.advanceTimersByTimeAsync(600_000);
    expect(ctx.fake.sockets).toHaveLength(2);
  });

  it('reconnectNow() skips the wait and resets the backoff', async () => {
    const ctx = makeClient({ reconnect: { minDelayMs: 10_000, maxDelayMs: 60_000 }, random: () => 0.9 });
    (await loginOnline(ctx)).serverClose();
    expect(ctx.fake.sockets).toHaveLength(1);
    ctx.client.reconnectNow();
    expect(ctx.fake.sockets).toHaveLength(2);
    ctx.fake.last.open();
    ctx.fake.last.loginResponse();
    ctx.client.reconnectNow();
    expect(ctx.fake.sockets).toHaveLength(2);
    ctx.client.destroy();
  });

  it('calls getToken() before each re-login, and retries when it fails', async () => {
    const getToken = vi.fn().mockRejectedValueOnce(new Error('auth down')).mockResolvedValue('fresh');
    const ctx = makeClient({ getToken, random: () => 0 });
    const sock = await loginOnline(ctx);
    expect(getToken).not.toHaveBeenCalled();
    sock.serverClose();
    await vi.advanceTimersByTimeAsync(10);
    expect(getToken).toHaveBeenCalledTimes(2);
    expect(ctx.of('error')).toHaveLength(1);
    expect(ctx.of('error')[0]).toMatchObject({ code: 'TOKEN_ERROR' });
    expect(ctx.fake.sockets).toHaveLength(2);
    ctx.fake.last.open();
    expect(JSON.parse(ctx.fake.last.sentOfType(MsgType.LOGIN)[0].dataContent as string).loginToken).toBe('fresh');
    ctx.client.destroy();
  });

  it('drops a token that arrives after logout', async () => {
    let release: (t: string) => void = () => undefined;
    const ctx = makeClient({ getToken: () => new Promise<string>((r) => (release = r)), random: () => 0 });
    (await loginOnline(ctx)).serverClose();
    await vi.advanceTimersByTimeAsync(1);
    await ctx.client.logout();
    release('late');
    await vi.advanceTimersByTimeAsync(0);
    expect(ctx.fake.sockets).toHaveLength(1);
    expect(ctx.client.state).toBe('closed');
  });

  it('never reconnects after logout or a kickout', async () => {
    const ctx = makeClient({ random: () => 0 });
    const sock = await loginOnline(ctx);
    await ctx.client.logout();
    expect(sock.sentOfType(MsgType.LOGOUT)).toEqual([
      { bridge: false, type: 3, dataContent: null, from: 'u1', to: '0', fp: null, QoS: false, typeu: -1, sm: -1 },
    ]);
    expect(sock.closedByClient).not.toBeNull();
    sock.serverClose();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(ctx.fake.sockets).toHaveLength(1);
    await ctx.client.logout();

    const sock2 = await loginOnline(ctx);
    sock2.deliver({ type: 54, dataContent: '{"code":1}', to: 'u1' });
    expect(ctx.of('kicked')).toEqual([{ code: 1, reason: '' }]);
    expect(ctx.client.state).toBe('closed');
    sock2.serverClose();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(ctx.fake.sockets).toHaveLength(2);
  });
});
