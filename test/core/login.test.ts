import { describe, expect, it, vi } from 'vitest';
import { IMClient } from '../../src/client';
import { IMError } from '../../src/errors';
import { MsgType } from '../../src/protocol';
import { loginOnline, makeClient, useFakeTimersPerTest } from '../helpers/setup';
import { createFakeAdapter } from '../helpers/fake-adapter';

useFakeTimersPerTest();

describe('login', () => {
  it('sends the type-0 frame with every envelope key and resolves on code 0', async () => {
    const ctx = makeClient({ receipts: false });
    const p = ctx.client.login({ userId: 'tcp1', token: 'tok' });
    expect(ctx.states()).toEqual(['connecting']);
    expect(ctx.fake.last.url).toBe('ws://test/websocket');
    ctx.fake.last.open();
    expect(ctx.states()).toEqual(['connecting', 'authenticating']);
    expect(ctx.fake.last.sentText).toEqual([
      '{"bridge":false,"type":0,"dataContent":"{\\"loginUserId\\":\\"tcp1\\",\\"loginToken\\":\\"tok\\",\\"firstLoginTime\\":0}","from":"tcp1","to":"0","QoS":false,"typeu":-1,"sm":-1}',
    ]);
    ctx.fake.last.loginResponse(0, 1795301271172);
    await expect(p).resolves.toEqual({ userId: 'tcp1', firstLoginTime: 1795301271172 });
    expect(ctx.client.state).toBe('online');
    expect(ctx.client.firstLoginTime).toBe(1795301271172);
    expect(ctx.of('state').at(-1)).toEqual({ from: 'authenticating', to: 'online', reason: 'logged-in' });
    ctx.client.destroy();
  });

  it('carries extra when given', async () => {
    const ctx = makeClient({ receipts: false });
    ctx.client.login({ userId: 'a', token: 't', extra: 'x' }).catch(() => undefined);
    ctx.fake.last.open();
    expect(JSON.parse(ctx.fake.last.sent[0].dataContent as string)).toEqual({ loginUserId: 'a', loginToken: 't', extra: 'x', firstLoginTime: 0 });
    ctx.client.destroy();
  });

  it('sends a known firstLoginTime, so the server replaces that session instead of kicking it', async () => {
    const ctx = makeClient();
    const p = ctx.client.login({ userId: 'a', token: 't', firstLoginTime: 1700000000123 });
    ctx.fake.last.open();
    expect(JSON.parse(ctx.fake.last.sent[0].dataContent as string).firstLoginTime).toBe(1700000000123);
    ctx.fake.last.loginResponse(0, 1700000000123);
    await expect(p).resolves.toEqual({ userId: 'a', firstLoginTime: 1700000000123 });
    ctx.client.destroy();
  });

  it('rejects with the server code on a refused login, closes, and never retries', async () => {
    const ctx = makeClient();
    const p = ctx.client.login({ userId: 'a', token: 'bad' });
    ctx.fake.last.open();
    ctx.fake.last.loginResponse(1025);
    const err = await p.catch((e: IMError) => e);
    expect(err).toBeInstanceOf(IMError);
    expect(err).toMatchObject({ code: 'LOGIN_REJECTED', serverCode: 1025 });
    expect(ctx.client.state).toBe('closed');
    expect(ctx.fake.last.closedByClient).not.toBeNull();
    await vi.advanceTimersByTimeAsync(600_000);
    expect(ctx.fake.sockets).toHaveLength(1);
  });

  it('times out a missing login response at exactly loginTimeoutMs', async () => {
    const ctx = makeClient({ loginTimeoutMs: 4000 });
    const p = ctx.client.login({ userId: 'a' });
    const settled = vi.fn();
    p.then(settled, settled);
    ctx.fake.last.open();
    await vi.advanceTimersByTimeAsync(3999);
    expect(settled).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    await expect(p).rejects.toMatchObject({ code: 'LOGIN_TIMEOUT' });
    expect(ctx.client.state).toBe('closed');
    expect(ctx.fake.last.closedByClient).not.toBeNull();
  });

  it('rejects with CONNECT_FAILED when the socket closes before the answer, or connect throws', async () => {
    const ctx = makeClient();
    const p = ctx.client.login({ userId: 'a' });
    ctx.fake.last.serverClose(1006, '');
    await expect(p).rejects.toMatchObject({ code: 'CONNECT_FAILED' });
    ctx.fake.failNextConnect(new Error('bad url'));
    await expect(ctx.client.login({ userId: 'a' })).rejects.toMatchObject({ code: 'CONNECT_FAILED' });
    expect(ctx.logger.warn).toHaveBeenCalled();
  });

  it('refuses a second login while active, bad arguments at once, and anything after destroy', async () => {
    const ctx = makeClient();
    const p = ctx.client.login({ userId: 'a' });
    await expect(ctx.client.login({ userId: 'a' })).rejects.toMatchObject({ code: 'ALREADY_ACTIVE' });
    expect(() => ctx.client.login({ userId: '' })).toThrow(TypeError);
    expect(() => ctx.client.login({ userId: 'a', token: 5 as unknown as string })).toThrow(/token/);
    expect(() => ctx.client.login({ userId: 'a', extra: 5 as unknown as string })).toThrow(/extra/);
    ctx.client.destroy();
    await expect(p).rejects.toMatchObject({ code: 'DESTROYED' });
    await expect(ctx.client.login({ userId: 'a' })).rejects.toMatchObject({ code: 'DESTROYED' });
    await expect(ctx.client.send('b', 'x')).rejects.toMatchObject({ code: 'DESTROYED' });
  });

  it('ignores a stray login response while online and after a login was answered', async () => {
    const ctx = makeClient();
    const sock = await loginOnline(ctx);
    sock.loginResponse(1025);
    expect(ctx.client.state).toBe('online');
    ctx.client.destroy();
  });

  it('treats a malformed login response as a broken link', async () => {
    const ctx = makeClient();
    const p = ctx.client.login({ userId: 'a' });
    ctx.fake.last.open();
    ctx.fake.last.deliver({ type: 50, dataContent: 'not json' });
    await expect(p).rejects.toMatchObject({ code: 'CONNECT_FAILED' });
    expect(ctx.of('error')[0]).toMatchObject({ code: 'PROTOCOL_ERROR' });
  });

  it('can log in again after logout, with a fresh firstLoginTime of 0', async () => {
    const ctx = makeClient();
    await loginOnline(ctx, 'u1', 111);
    await ctx.client.logout();
    expect(ctx.client.state).toBe('closed');
    ctx.client.login({ userId: 'u1' }).catch(() => undefined);
    ctx.fake.last.open();
    expect(JSON.parse(ctx.fake.last.sentOfType(MsgType.LOGIN)[0].dataContent as string).firstLoginTime).toBe(0);
    ctx.client.destroy();
  });
});

describe('options', () => {
  const adapter = createFakeAdapter().adapter;
  it.each([
    [{}, /url/],
    [{ url: 'ws://x' }, /adapter/],
    [{ url: 'ws://x', adapter, senseMode: 9 }, RangeError],
    [{ url: 'ws://x', adapter, keepAlive: { intervalMs: 0, timeoutMs: 1 } }, /keepAlive.intervalMs/],
    [{ url: 'ws://x', adapter, reconnect: { minDelayMs: 10, maxDelayMs: 5 } }, /maxDelayMs/],
    [{ url: 'ws://x', adapter, qos: { maxRetries: -1 } }, /qos.maxRetries/],
    [{ url: 'ws://x', adapter, getToken: 'x' }, /getToken/],
  ])('refuses %o at construction', (opts, error) => {
    expect(() => new IMClient(opts as never)).toThrow(error as never);
  });

  it('refuses a missing options object', () => {
    expect(() => new IMClient(undefined as never)).toThrow(TypeError);
  });
});
