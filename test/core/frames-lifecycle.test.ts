import { describe, expect, it, vi } from 'vitest';
import { IMClient } from '../../src/client';
import { MsgType } from '../../src/protocol';
import { createFakeAdapter } from '../helpers/fake-adapter';
import { loginOnline, makeClient, useFakeTimersPerTest } from '../helpers/setup';

useFakeTimersPerTest();

describe('server frames', () => {
  it('kickout stops everything, emits kicked after the state change, and never reconnects', async () => {
    const ctx = makeClient();
    const sock = await loginOnline(ctx);
    sock.deliver({ type: 54, dataContent: '{"code":1}', to: 'u1' });
    expect(ctx.events.slice(-2).map((e) => e[0])).toEqual(['state', 'kicked']);
    expect(ctx.of('state').at(-1)).toEqual({ from: 'online', to: 'closed', reason: 'kicked' });
    expect(sock.closedByClient).not.toBeNull();
    expect(ctx.fake.lifecycleListeners).toBe(0);
  });

  it('a kickout with an unreadable payload still kicks, with code -1', async () => {
    const ctx = makeClient();
    (await loginOnline(ctx)).deliver({ type: 54, dataContent: 'x', to: 'u1' });
    expect(ctx.of('kicked')).toEqual([{ code: -1, reason: '' }]);
  });

  it('echo() resolves with the round-trip time, and times out at echoTimeoutMs', async () => {
    const ctx = makeClient({ echoTimeoutMs: 1000, keepAlive: { intervalMs: 100_000, timeoutMs: 200_000 } });
    const sock = await loginOnline(ctx);
    const p = ctx.client.echo();
    const [req] = sock.sentOfType(MsgType.ECHO);
    expect(req).toMatchObject({ type: 5, from: 'u1', to: '0', QoS: false });
    await vi.advanceTimersByTimeAsync(42);
    sock.deliver({ ...req, type: 53 });
    await expect(p).resolves.toEqual({ rttMs: 42 });
    const q = ctx.client.echo();
    const settled = vi.fn();
    q.then(settled, settled);
    await vi.advanceTimersByTimeAsync(999);
    expect(settled).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    await expect(q).rejects.toMatchObject({ code: 'ECHO_TIMEOUT' });
    sock.deliver({ type: 53, dataContent: 'unknown-token' });
    const r = ctx.client.echo();
    sock.serverClose();
    await expect(r).rejects.toMatchObject({ code: 'CONNECTION_LOST' });
    ctx.client.destroy();
    await expect(ctx.client.echo()).rejects.toMatchObject({ code: 'NOT_ONLINE' });
  });

  it('reports malformed frames and other server errors as error events, without throwing or closing', async () => {
    const ctx = makeClient();
    const sock = await loginOnline(ctx);
    sock.deliver('garbage');
    sock.deliver('{"type":2,"dataContent":{"a":1}}');
    // Still online and still reading: the next good frame is delivered.
    sock.deliver({ type: 2, dataContent: 'after', from: 'v', to: 'u1' });
    expect(ctx.client.state).toBe('online');
    expect(sock.isOpen).toBe(true);
    expect(ctx.of('message').map((m: { content: string }) => m.content)).toEqual(['after']);
    sock.deliver({ type: 52, dataContent: '{"errorCode":500,"errorMsg":"busy"}' });
    sock.deliver({ type: 52, dataContent: 'nope' });
    sock.deliver({ type: 99, dataContent: 'x' });
    expect(ctx.of('error').map((e: { code: string }) => e.code)).toEqual(['PROTOCOL_ERROR', 'PROTOCOL_ERROR', 'SERVER_ERROR', 'SERVER_ERROR']);
    expect(ctx.of('error')[2]).toMatchObject({ serverCode: 500 });
    expect(ctx.logger.debug).toHaveBeenCalledWith('ignored frame type 99');
    expect(ctx.client.state).toBe('online');
    ctx.client.destroy();
  });

  it('decodes frames that arrive as bytes', async () => {
    const ctx = makeClient();
    const sock = await loginOnline(ctx);
    const bytes = new TextEncoder().encode('{"type":2,"dataContent":"你好","from":"a","to":"u1"}');
    sock.deliverBytes(bytes);
    sock.deliverBytes(bytes.buffer.slice(0));
    expect(ctx.of('message').map((m: { content: string }) => m.content)).toEqual(['你好', '你好']);
    ctx.client.destroy();
  });

  it('survives listeners that throw: the others still run and the client carries on', async () => {
    const ctx = makeClient();
    const sock = await loginOnline(ctx);
    const seen: string[] = [];
    ctx.client.on('message', () => {
      throw new Error('app bug');
    });
    ctx.client.on('message', (m) => seen.push(m.content));
    sock.deliver({ type: 2, dataContent: 'one', from: 'a', to: 'u1', fp: 'f1', QoS: true });
    expect(seen).toEqual(['one']);
    expect(sock.sentOfType(MsgType.ACK)).toHaveLength(1);
    expect(ctx.logger.error).toHaveBeenCalledWith('a "message" listener threw', expect.any(Error));
    ctx.client.destroy();
  });

  it('once() and off() remove exactly one listener', async () => {
    const ctx = makeClient();
    const sock = await loginOnline(ctx);
    const once = vi.fn();
    const kept = vi.fn();
    const removed = vi.fn();
    ctx.client.once('message', once);
    ctx.client.on('message', kept);
    ctx.client.on('message', removed);
    ctx.client.off('message', removed);
    sock.deliver({ type: 2, dataContent: 'a', from: 'a', to: 'u1' });
    sock.deliver({ type: 2, dataContent: 'b', from: 'a', to: 'u1' });
    expect(once).toHaveBeenCalledTimes(1);
    expect(kept).toHaveBeenCalledTimes(2);
    expect(removed).not.toHaveBeenCalled();
    ctx.client.destroy();
  });

  it('ignores callbacks from a socket it already replaced', async () => {
    const ctx = makeClient({ random: () => 0 });
    const old = await loginOnline(ctx);
    old.serverClose();
    await vi.advanceTimersByTimeAsync(1);
    old.deliver({ type: 2, dataContent: 'ghost', from: 'a', to: 'u1' });
    old.serverClose();
    old.open();
    expect(ctx.of('message')).toHaveLength(0);
    expect(ctx.client.state).toBe('connecting');
    ctx.client.destroy();
  });

  it('catches an error thrown inside a socket callback instead of throwing it to the platform', async () => {
    const ctx = makeClient();
    const sock = await loginOnline(ctx);
    sock.send = () => {
      throw new Error('boom');
    };
    // A logger that throws makes the failed write escape the client's own handling: the guard around
    // every socket callback must still catch it.
    ctx.logger.warn.mockImplementation(() => {
      throw new Error('logger down');
    });
    sock.deliver({ type: 2, dataContent: 'x', from: 'a', to: 'u1', fp: 'f', QoS: true });
    expect(ctx.logger.error).toHaveBeenCalledWith('socket callback threw', expect.objectContaining({ message: 'logger down' }));
    ctx.logger.warn.mockReset();
    // The client is intact: still online, and the next frame is read and delivered.
    expect(ctx.client.state).toBe('online');
    sock.deliver({ type: 2, dataContent: 'y', from: 'a', to: 'u1' });
    expect(ctx.of('message').map((m: { content: string }) => m.content)).toEqual(['y']);
    sock.close = () => {
      throw new Error('close boom');
    };
    sock.deliver({ type: 54, dataContent: '{"code":2}', to: 'u1' });
    // The close that threw did not stop the kickout: the client is closed and says why.
    expect(ctx.client.state).toBe('closed');
    expect(ctx.of('kicked')).toEqual([{ code: 2, reason: '' }]);
    expect(ctx.logger.warn).toHaveBeenCalledWith('socket close failed', expect.any(Error));
    sock.error(new Error('platform'));
  });
});

describe('lifecycle', () => {
  it('offline closes at once and waits; online reconnects at once', async () => {
    const ctx = makeClient({ reconnect: { minDelayMs: 50_000, maxDelayMs: 50_000 } });
    const sock = await loginOnline(ctx);
    ctx.fake.fire('offline');
    expect(sock.closedByClient).not.toBeNull();
    expect(ctx.client.state).toBe('reconnecting');
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(600_000);
    expect(ctx.fake.sockets).toHaveLength(1);
    ctx.fake.fire('online');
    expect(ctx.fake.sockets).toHaveLength(2);
    ctx.client.destroy();
  });

  it('background pauses retries; foreground reconnects at once', async () => {
    const ctx = makeClient({ reconnect: { minDelayMs: 50_000, maxDelayMs: 50_000 } });
    const sock = await loginOnline(ctx);
    ctx.fake.fire('background');
    sock.serverClose();
    expect(ctx.client.state).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(600_000);
    expect(ctx.fake.sockets).toHaveLength(1);
    ctx.fake.fire('foreground');
    expect(ctx.fake.sockets).toHaveLength(2);
    ctx.fake.last.open();
    ctx.fake.last.loginResponse();
    // Going to the background while a retry is scheduled cancels that retry.
    ctx.fake.last.serverClose();
    ctx.fake.fire('background');
    expect(vi.getTimerCount()).toBe(0);
    ctx.client.destroy();
  });

  it('foreground probes an online link: a reply keeps it, silence past probeTimeoutMs reconnects at once', async () => {
    const ctx = makeClient({ probeTimeoutMs: 2000, senseMode: 7 });
    const sock = await loginOnline(ctx);
    ctx.fake.fire('foreground');
    expect(sock.sentOfType(MsgType.KEEP_ALIVE)).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(500);
    sock.deliver({ type: 51, dataContent: '{}', to: 'u1' });
    await vi.advanceTimersByTimeAsync(5000);
    expect(ctx.client.state).toBe('online');
    ctx.fake.fire('online');
    expect(sock.sentOfType(MsgType.KEEP_ALIVE)).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1999);
    expect(ctx.client.state).toBe('online');
    await vi.advanceTimersByTimeAsync(1);
    expect(ctx.of('state').at(-1)).toEqual({ from: 'online', to: 'reconnecting', reason: 'probe-timeout' });
    expect(ctx.of('reconnect').at(-1)).toEqual({ attempt: 1, delayMs: 0 });
    ctx.client.destroy();
  });

  it('stays logged out whatever the lifecycle does, and stops listening', async () => {
    const ctx = makeClient();
    await loginOnline(ctx);
    expect(ctx.fake.lifecycleListeners).toBe(1);
    await ctx.client.logout();
    expect(ctx.fake.lifecycleListeners).toBe(0);
    ctx.fake.fire('online');
    ctx.fake.fire('foreground');
    expect(ctx.fake.sockets).toHaveLength(1);
  });

  it('an offline event during the first login fails that login', async () => {
    const ctx = makeClient();
    const p = ctx.client.login({ userId: 'a' });
    ctx.fake.fire('offline');
    await expect(p).rejects.toMatchObject({ code: 'CONNECT_FAILED' });
  });

  it('survives an adapter whose lifecycle stop function throws', async () => {
    const ctx = makeClient();
    ctx.fake.adapter.watchLifecycle = () => () => {
      throw new Error('off failed');
    };
    await loginOnline(ctx);
    await expect(ctx.client.logout()).resolves.toBeUndefined();
    expect(ctx.client.state).toBe('closed');
    expect(ctx.logger.warn).toHaveBeenCalledWith('lifecycle stop threw', expect.any(Error));
  });

  it('works with an adapter that has no lifecycle hooks', async () => {
    const ctx = makeClient({}, { lifecycle: false });
    await loginOnline(ctx);
    expect(ctx.client.state).toBe('online');
    ctx.client.destroy();
  });
});

describe('destroy and independence', () => {
  it('destroy() leaves no timer, socket or lifecycle listener, reports closed, and is idempotent', async () => {
    const ctx = makeClient();
    const sock = await loginOnline(ctx);
    ctx.client.send('u2', 'x').catch(() => undefined);
    ctx.client.destroy();
    ctx.client.destroy();
    expect(sock.closedByClient).not.toBeNull();
    expect(ctx.fake.lifecycleListeners).toBe(0);
    expect(ctx.of('state').at(-1)).toMatchObject({ to: 'closed', reason: 'destroyed' });
    const n = ctx.events.length;
    sock.deliver({ type: 2, dataContent: 'late', from: 'a', to: 'u1' });
    expect(ctx.events.length).toBe(n);
    await ctx.client.logout();
  });

  it('two clients in one page share nothing', async () => {
    const a = makeClient();
    const b = makeClient();
    const sa = await loginOnline(a, 'ua');
    const sb = await loginOnline(b, 'ub');
    sa.deliver({ type: 2, dataContent: 'for a', from: 'x', to: 'ua', fp: 'same', QoS: true });
    sb.deliver({ type: 2, dataContent: 'for b', from: 'x', to: 'ub', fp: 'same', QoS: true });
    expect(a.of('message').map((m: { content: string }) => m.content)).toEqual(['for a']);
    expect(b.of('message').map((m: { content: string }) => m.content)).toEqual(['for b']);
    sa.deliver({ type: 54, dataContent: '{"code":1}', to: 'ua' });
    expect(a.client.state).toBe('closed');
    expect(b.client.state).toBe('online');
    b.client.destroy();
  });

  it('uses the system clock when none is injected', async () => {
    const fake = createFakeAdapter();
    const client = new IMClient({ url: 'ws://x/websocket', adapter: fake.adapter });
    const p = client.login({ userId: 'a' });
    fake.last.open();
    fake.last.loginResponse();
    await p;
    await vi.advanceTimersByTimeAsync(5000);
    expect(fake.last.sentOfType(MsgType.KEEP_ALIVE)).toHaveLength(1);
    client.destroy();
  });
});
