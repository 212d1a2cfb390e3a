import { describe, expect, it, vi } from 'vitest';
import { createOutboxStore } from '../../adapters/storage';
import { MsgType } from '../../src/protocol';
import { loginOnline, makeClient, useFakeTimersPerTest, memoryStorage } from '../helpers/setup';

useFakeTimersPerTest();


describe('listeners that stop or restart the client', () => {
  it('logout() from an error listener after getToken() fails stays logged out', async () => {
    const getToken = vi.fn().mockRejectedValue(new Error('auth down'));
    const ctx = makeClient({ getToken, random: () => 0 });
    ctx.client.on('error', (e) => {
      if (e.code === 'TOKEN_ERROR') void ctx.client.logout();
    });
    (await loginOnline(ctx)).serverClose();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(ctx.client.state).toBe('closed');
    expect(getToken).toHaveBeenCalledTimes(1);
  });

  it('login() settles when a state listener logs out on the move to online', async () => {
    const ctx = makeClient();
    ctx.client.on('state', ({ to }) => {
      if (to === 'online') void ctx.client.logout();
    });
    const p = ctx.client.login({ userId: 'u1' });
    ctx.fake.last.open();
    ctx.fake.last.loginResponse();
    await expect(p).rejects.toMatchObject({ code: 'LOGGED_OUT' });
    expect(ctx.client.state).toBe('closed');
  });

  it('a login() from a listener during destroy() is refused, leaving nothing alive', async () => {
    const ctx = makeClient();
    const sock = await loginOnline(ctx);
    const relogin = vi.fn();
    ctx.client.on('state', ({ to }) => {
      if (to === 'closed') ctx.client.login({ userId: 'u1' }).then(relogin, relogin);
    });
    ctx.client.destroy();
    await vi.advanceTimersByTimeAsync(0);
    expect(relogin).toHaveBeenCalledWith(expect.objectContaining({ code: 'DESTROYED' }));
    expect(ctx.fake.sockets).toEqual([sock]);
    expect(sock.isOpen).toBe(false);
  });

  it('kicked and lost listeners may log in again, and the new session is not disturbed', async () => {
    const ctx = makeClient({ random: () => 0.3 });
    const sock = await loginOnline(ctx);
    ctx.client.send('u2', 'pending', { fp: 'p1' }).catch(() => undefined);
    let again: Promise<unknown> | null = null;
    ctx.client.on('kicked', () => {
      again = ctx.client.login({ userId: 'u1' });
    });
    sock.deliver({ type: 54, dataContent: '{"code":2}', to: 'u1' });
    expect(ctx.of('lost')).toHaveLength(1);
    expect(ctx.client.state).toBe('connecting');
    ctx.fake.last.open();
    ctx.fake.last.loginResponse();
    await expect(again).resolves.toMatchObject({ userId: 'u1' });
    expect(ctx.fake.last.sentOfType(MsgType.DATA)).toHaveLength(0);
    ctx.client.destroy();
  });
});

describe('getToken edge cases', () => {
  it('a getToken() that never answers fails at loginTimeoutMs and the client retries', async () => {
    let calledAt = 0;
    const getToken = vi.fn(() => {
      calledAt = Date.now();
      return new Promise<string>(() => undefined);
    });
    const ctx = makeClient({ getToken, loginTimeoutMs: 3000, reconnect: { minDelayMs: 100_000, maxDelayMs: 100_000 }, random: () => 0 });
    (await loginOnline(ctx)).serverClose();
    await vi.advanceTimersByTimeAsync(1);
    expect(getToken).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(calledAt + 2999 - Date.now());
    expect(ctx.of('error')).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(ctx.of('error')[0]).toMatchObject({ code: 'TOKEN_ERROR', message: expect.stringContaining('3000 ms') });
    await vi.advanceTimersByTimeAsync(1);
    expect(getToken).toHaveBeenCalledTimes(2);
    ctx.client.destroy();
  });

  it('a token that arrives while offline opens no socket; the network coming back does', async () => {
    let release: (t: string) => void = () => undefined;
    const ctx = makeClient({ getToken: () => new Promise<string>((r) => (release = r)), random: () => 0 });
    (await loginOnline(ctx)).serverClose();
    await vi.advanceTimersByTimeAsync(1);
    ctx.fake.fire('offline');
    release('t2');
    await vi.advanceTimersByTimeAsync(0);
    expect(ctx.fake.sockets).toHaveLength(1);
    ctx.fake.fire('online');
    await vi.advanceTimersByTimeAsync(0);
    release('t3');
    await vi.advanceTimersByTimeAsync(0);
    expect(ctx.fake.sockets).toHaveLength(2);
    ctx.client.destroy();
  });

  it('a getToken() that resolves with a non-string is reported and retried', async () => {
    const getToken = vi.fn().mockResolvedValueOnce(42).mockResolvedValue('ok');
    const ctx = makeClient({ getToken, random: () => 0 });
    (await loginOnline(ctx)).serverClose();
    await vi.advanceTimersByTimeAsync(10);
    expect(ctx.of('error')[0]).toMatchObject({ code: 'TOKEN_ERROR', message: expect.stringContaining('string') });
    expect(ctx.fake.sockets).toHaveLength(2);
    ctx.client.destroy();
  });
});

describe('durable outbox under stops', () => {
  it('send() then destroy() in the same task keeps the message', async () => {
    const storage = memoryStorage();
    const ctx = makeClient({ outboxStore: createOutboxStore(storage) });
    await loginOnline(ctx);
    await vi.advanceTimersByTimeAsync(0);
    ctx.client.send('u2', 'last words').catch(() => undefined);
    ctx.client.destroy();
    await vi.advanceTimersByTimeAsync(0);
    const stored = JSON.parse(storage.data.get('mobileimsdk.outbox.u1') as string);
    expect(stored).toHaveLength(1);
    expect(stored[0].frame).toContain('last words');
  });

  it('login() then destroy() before the store answered leaves the store untouched', async () => {
    const storage = memoryStorage();
    storage.data.set('mobileimsdk.outbox.u1', JSON.stringify([{ frame: '{"type":2,"from":"u1","to":"u2","fp":"f","QoS":true,"dataContent":"x"}', at: 1 }]));
    const before = storage.data.get('mobileimsdk.outbox.u1');
    const ctx = makeClient({ outboxStore: createOutboxStore(storage) });
    ctx.client.login({ userId: 'u1' }).catch(() => undefined);
    ctx.client.destroy();
    await vi.advanceTimersByTimeAsync(0);
    expect(storage.data.get('mobileimsdk.outbox.u1')).toBe(before);
  });

  it('a first login that cannot connect keeps the stored messages for the next login, reporting none lost', async () => {
    const storage = memoryStorage();
    storage.data.set('mobileimsdk.outbox.u1', JSON.stringify([{ frame: '{"type":2,"from":"u1","to":"u2","fp":"f","QoS":true,"dataContent":"x"}', at: Date.now() }]));
    const ctx = makeClient({ outboxStore: createOutboxStore(storage) });
    const p = ctx.client.login({ userId: 'u1' });
    await vi.advanceTimersByTimeAsync(0);
    ctx.fake.last.serverClose(1006, '');
    await expect(p).rejects.toMatchObject({ code: 'CONNECT_FAILED' });
    await vi.advanceTimersByTimeAsync(0);
    expect(ctx.of('lost')).toHaveLength(0);
    expect(JSON.parse(storage.data.get('mobileimsdk.outbox.u1') as string)).toHaveLength(1);
    const sock = await loginOnline(ctx);
    expect(sock.sentOfType(MsgType.DATA).map((f) => f.fp)).toEqual(['f']);
    ctx.client.destroy();
  });
});

describe('send edge cases', () => {
  it('retries a message whose first write failed while the link stayed up, keeping the order', async () => {
    const ctx = makeClient({ keepAlive: { intervalMs: 1e7, timeoutMs: 2e7 } });
    const sock = await loginOnline(ctx);
    const orig = sock.send.bind(sock);
    let fail = true;
    sock.send = (d) => {
      if (fail) throw new Error('busy');
      orig(d);
    };
    const p = ctx.client.send('u2', 'first');
    fail = false;
    await vi.advanceTimersByTimeAsync(5000);
    expect(sock.sentOfType(MsgType.DATA).map((f) => f.dataContent)).toEqual(['first']);
    sock.deliver({ type: 4, dataContent: sock.sentOfType(MsgType.DATA)[0].fp, from: 'u2', to: 'u1' });
    await expect(p).resolves.toMatchObject({ acked: true });
    ctx.client.destroy();
  });

  it('refuses a frame larger than the transport carries, before it reaches the wire', async () => {
    const ctx = makeClient();
    const sock = await loginOnline(ctx);
    await expect(ctx.client.send('u2', 'x'.repeat(70_000))).rejects.toMatchObject({ code: 'MESSAGE_TOO_LARGE' });
    await expect(ctx.client.send('u2', '你'.repeat(21_800))).rejects.toMatchObject({ code: 'MESSAGE_TOO_LARGE' });
    (ctx.fake.adapter as { maxFrameBytes?: number }).maxFrameBytes = 200;
    await expect(ctx.client.send('u2', '😀'.repeat(20))).rejects.toMatchObject({ code: 'MESSAGE_TOO_LARGE' });
    ctx.client.send('u2', 'small', { qos: false });
    expect(sock.sentOfType(MsgType.DATA).map((f) => f.dataContent)).toEqual(['small']);
    ctx.client.destroy();
  });

  it('refuses a pending fp reused for another message', async () => {
    const ctx = makeClient();
    await loginOnline(ctx);
    ctx.client.send('u2', 'a', { fp: 'same' }).catch(() => undefined);
    expect(() => ctx.client.send('u2', 'b', { fp: 'same' })).toThrow(/fresh fp/);
    ctx.client.destroy();
  });

  it('off() removes a listener added with once()', async () => {
    const ctx = makeClient();
    const sock = await loginOnline(ctx);
    const fn = vi.fn();
    ctx.client.once('message', fn);
    ctx.client.off('message', fn);
    sock.deliver({ type: 2, dataContent: 'a', from: 'x', to: 'u1' });
    expect(fn).not.toHaveBeenCalled();
    ctx.client.destroy();
  });
});
