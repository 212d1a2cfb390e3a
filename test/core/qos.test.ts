import { describe, expect, it, vi } from 'vitest';
import { MsgType } from '../../src/protocol';
import { loginOnline, makeClient, useFakeTimersPerTest } from '../helpers/setup';

useFakeTimersPerTest();

const keepAliveOff = { keepAlive: { intervalMs: 10_000_000, timeoutMs: 20_000_000 } };

describe('QoS send', () => {
  it('sends a data frame with a v4 fingerprint and resolves on its ACK', async () => {
    const ctx = makeClient(keepAliveOff);
    const sock = await loginOnline(ctx);
    const p = ctx.client.send('u2', 'hello', { typeu: 1 });
    const [frame] = sock.sentOfType(MsgType.DATA);
    expect(frame).toMatchObject({ bridge: false, type: 2, dataContent: 'hello', from: 'u1', to: 'u2', QoS: true, typeu: 1, sm: -1 });
    expect(frame.fp).toMatch(/^[0-9a-f-]{36}$/);
    sock.deliver({ type: 4, dataContent: frame.fp, from: 'u2', to: 'u1' });
    await expect(p).resolves.toEqual({ fp: frame.fp, to: 'u2', acked: true });
    expect(ctx.of('delivered')).toEqual([{ fp: frame.fp, message: { fp: frame.fp, from: 'u1', to: 'u2', content: 'hello', typeu: 1, qos: true } }]);
    expect(ctx.client.stats().pending).toBe(0);
    // A second ACK for the same fp changes nothing.
    sock.deliver({ type: 4, dataContent: frame.fp, from: 'u2', to: 'u1' });
    expect(ctx.of('delivered')).toHaveLength(1);
    ctx.client.destroy();
  });

  it('matches the captured client data frame field by field', async () => {
    const ctx = makeClient(keepAliveOff);
    const sock = await loginOnline(ctx, 'tcp1');
    void ctx.client.send('0', 'hi 你好 <&>', { fp: 'fp-tcp-1' }).catch(() => undefined);
    expect(sock.sentText.at(-1)).toBe(
      '{"bridge":false,"type":2,"dataContent":"hi 你好 <&>","from":"tcp1","to":"0","fp":"fp-tcp-1","QoS":true,"typeu":-1,"sm":-1}',
    );
    ctx.client.destroy();
  });

  it('retransmits with the same fp on MobileIMSDK timings, then reports the message lost', async () => {
    const ctx = makeClient(keepAliveOff);
    const sock = await loginOnline(ctx);
    const p = ctx.client.send('u2', 'x');
    const settled = vi.fn();
    p.then(settled, settled);
    const data = () => sock.sentOfType(MsgType.DATA);
    await vi.advanceTimersByTimeAsync(4999);
    expect(data()).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(data()).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(5000);
    expect(data()).toHaveLength(3);
    expect(new Set(data().map((f) => sock.sentText[sock.sent.indexOf(f)]))).toHaveProperty('size', 1);
    expect(new Set(data().map((f) => f.fp)).size).toBe(1);
    await vi.advanceTimersByTimeAsync(4999);
    expect(settled).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    await expect(p).rejects.toMatchObject({ code: 'SEND_TIMEOUT' });
    expect(ctx.of('lost')).toHaveLength(1);
    expect(ctx.of('lost')[0].message).toMatchObject({ fp: data()[0].fp, to: 'u2', content: 'x' });
    ctx.client.destroy();
  });

  it('does not retransmit a message sent less than resendAfterMs before a check', async () => {
    const ctx = makeClient(keepAliveOff);
    const sock = await loginOnline(ctx);
    ctx.client.send('u2', 'a').catch(() => undefined);
    await vi.advanceTimersByTimeAsync(3000);
    ctx.client.send('u2', 'b').catch(() => undefined);
    await vi.advanceTimersByTimeAsync(2000);
    expect(sock.sentOfType(MsgType.DATA).map((f) => f.dataContent)).toEqual(['a', 'b', 'a']);
    ctx.client.destroy();
  });

  it('keeps messages sent while offline and sends them in order after the re-login, same fp', async () => {
    const ctx = makeClient({ ...keepAliveOff, random: () => 0.5 });
    const sock = await loginOnline(ctx);
    const inflight = ctx.client.send('u2', 'm1', { fp: 'f1' });
    const fp1 = sock.sentOfType(MsgType.DATA)[0].fp;
    sock.serverClose(1006, '');
    const later = [ctx.client.send('u2', 'm2', { fp: 'f2' }), ctx.client.send('0', 'm3', { fp: 'f3' }), ctx.client.send('u2', 'm4', { qos: false })];
    expect(ctx.client.stats().pending).toBe(4);
    // Far past MobileIMSDK's 13-18 s loss window: nothing is lost while the link is down.
    await vi.advanceTimersByTimeAsync(400);
    ctx.fake.last.serverClose(1006, '');
    await vi.advanceTimersByTimeAsync(30_000);
    expect(ctx.of('lost')).toHaveLength(0);
    const sock3 = ctx.fake.last;
    sock3.open();
    sock3.loginResponse();
    const data = sock3.sentOfType(MsgType.DATA);
    expect(data.map((f) => f.dataContent)).toEqual(['m1', 'm2', 'm3', 'm4']);
    expect(data[0].fp).toBe(fp1);
    for (const f of data.slice(0, 3)) sock3.deliver({ type: 4, dataContent: f.fp, from: f.to, to: 'u1' });
    await expect(Promise.all([inflight, ...later])).resolves.toHaveLength(4);
    expect((await later[2]).acked).toBe(false);
    ctx.client.destroy();
  });

  it('reports a waiting message lost at deliverTimeoutMs, not before', async () => {
    const ctx = makeClient({ ...keepAliveOff, qos: { deliverTimeoutMs: 20_000 }, reconnect: { minDelayMs: 60_000, maxDelayMs: 60_000 }, random: () => 0.99 });
    (await loginOnline(ctx)).serverClose();
    const p = ctx.client.send('u2', 'x', { fp: 'f1' });
    const q = ctx.client.send('u2', 'y', { fp: 'f2' }).catch((e: unknown) => e);
    const settled = vi.fn();
    p.then(settled, settled);
    await vi.advanceTimersByTimeAsync(19_999);
    expect(settled).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    await expect(p).rejects.toMatchObject({ code: 'SEND_TIMEOUT', message: expect.stringContaining('20000 ms') });
    expect(await q).toMatchObject({ code: 'SEND_TIMEOUT' });
    expect(ctx.of('lost')).toHaveLength(2);
    ctx.client.destroy();
  });

  it('bounds the outbox and returns the same promise for a repeated fp', async () => {
    const ctx = makeClient({ ...keepAliveOff, qos: { maxPending: 2 } });
    await loginOnline(ctx);
    const a = ctx.client.send('u2', 'a', { fp: 'same' });
    expect(ctx.client.send('u2', 'a', { fp: 'same' })).toBe(a);
    ctx.client.send('u2', 'b').catch(() => undefined);
    await expect(ctx.client.send('u2', 'c')).rejects.toMatchObject({ code: 'OUTBOX_FULL' });
    a.catch(() => undefined);
    ctx.client.destroy();
  });

  it('rejects waiting messages on logout and kickout, reporting each as lost', async () => {
    const ctx = makeClient(keepAliveOff);
    await loginOnline(ctx);
    const p = ctx.client.send('u2', 'x');
    await ctx.client.logout();
    await expect(p).rejects.toMatchObject({ code: 'LOGGED_OUT' });
    const sock = await loginOnline(ctx);
    const q = ctx.client.send('u2', 'y');
    sock.deliver({ type: 54, dataContent: '{"code":2,"reason":"admin"}', to: 'u1' });
    await expect(q).rejects.toMatchObject({ code: 'KICKED', serverCode: 2 });
    expect(ctx.of('lost').map((l: { error: { code: string } }) => l.error.code)).toEqual(['LOGGED_OUT', 'KICKED']);
    expect(ctx.events.map((e) => e[0]).slice(-2)).toEqual(['kicked', 'lost']);
  });

  it('refuses bad arguments at once, and sends before a login', async () => {
    const ctx = makeClient();
    expect(() => ctx.client.send('', 'x')).toThrow(TypeError);
    expect(() => ctx.client.send('u2', { a: 1 } as unknown as string)).toThrow(/JSON.stringify/);
    expect(() => ctx.client.send('u2', 'x', { typeu: 1.5 })).toThrow(/typeu/);
    await expect(ctx.client.send('u2', 'x')).rejects.toMatchObject({ code: 'NOT_ONLINE' });
  });

  it('counts a failed socket write as not sent: no retry is spent', async () => {
    const ctx = makeClient({ ...keepAliveOff, qos: { deliverTimeoutMs: 1_000_000 } });
    const sock = await loginOnline(ctx);
    const orig = sock.send.bind(sock);
    let fail = false;
    sock.send = (d) => {
      if (fail) throw new Error('EPIPE');
      orig(d);
    };
    const p = ctx.client.send('u2', 'x');
    fail = true;
    await vi.advanceTimersByTimeAsync(30_000);
    expect(ctx.of('lost')).toHaveLength(0);
    fail = false;
    await vi.advanceTimersByTimeAsync(5_000);
    const fp = sock.sentOfType(MsgType.DATA)[0].fp;
    expect(sock.sentOfType(MsgType.DATA)).toHaveLength(2);
    sock.deliver({ type: 4, dataContent: fp, from: 'u2', to: 'u1' });
    await expect(p).resolves.toMatchObject({ acked: true });
    expect(ctx.logger.warn).toHaveBeenCalledWith('send failed', expect.any(Error));
    ctx.client.destroy();
  });
});

describe('QoS receive', () => {
  it('ACKs every QoS frame with from/to swapped and shows each fp once', async () => {
    const ctx = makeClient(keepAliveOff);
    const sock = await loginOnline(ctx);
    const frame = { type: 2, dataContent: 'hello b', from: 'ua', to: 'u1', fp: 'fp-c2c-1', QoS: true, typeu: 1, sm: 0 };
    sock.deliver(frame);
    sock.deliver(frame);
    sock.deliver({ ...frame, dataContent: 'dup send' });
    expect(ctx.of('message')).toEqual([
      { fp: 'fp-c2c-1', from: 'ua', to: 'u1', content: 'hello b', typeu: 1, qos: true, serverTime: null },
    ]);
    const acks = sock.sentOfType(MsgType.ACK);
    expect(acks).toHaveLength(3);
    expect(sock.sentText.filter((t) => t.includes('"type":4'))[0]).toBe(
      '{"bridge":false,"type":4,"dataContent":"fp-c2c-1","from":"u1","to":"ua","QoS":false,"typeu":-1,"sm":-1}',
    );
    ctx.client.destroy();
  });

  it('delivers messages without QoS every time and without an ACK, with the server time when set', async () => {
    const ctx = makeClient(keepAliveOff);
    const sock = await loginOnline(ctx);
    sock.deliver({ type: 2, dataContent: 'noqos', from: 'ua', to: 'u1', sm: 1234 });
    sock.deliver({ type: 2, dataContent: 'noqos', from: 'ua', to: 'u1' });
    expect(ctx.of('message')).toHaveLength(2);
    expect(ctx.of('message')[0].serverTime).toBe(1234);
    expect(sock.sentOfType(MsgType.ACK)).toHaveLength(0);
    ctx.client.destroy();
  });

  it('ACKs server QoS frames of other types but never a type 50', async () => {
    const ctx = makeClient(keepAliveOff);
    const sock = await loginOnline(ctx);
    sock.deliver({ type: 53, dataContent: 'e', from: 'u1', to: '0', fp: 'fp-echo', QoS: true });
    sock.deliver({ type: 50, dataContent: '{"code":1,"firstLoginTime":-1}', fp: 'fp-50', QoS: true });
    expect(sock.sentOfType(MsgType.ACK).map((f) => f.dataContent)).toEqual(['fp-echo']);
    ctx.client.destroy();
  });

  it('forgets fingerprints after dedupTtlMs and beyond dedupMax', async () => {
    const ctx = makeClient({ ...keepAliveOff, qos: { dedupTtlMs: 10_000, dedupMax: 3 } });
    const sock = await loginOnline(ctx);
    const send = (fp: string) => sock.deliver({ type: 2, dataContent: fp, from: 'ua', to: 'u1', fp, QoS: true });
    send('a');
    await vi.advanceTimersByTimeAsync(9_999);
    send('a');
    expect(ctx.of('message')).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    send('a');
    expect(ctx.of('message')).toHaveLength(2);
    send('b');
    send('c');
    send('d');
    expect(ctx.client.stats().dedupEntries).toBe(3);
    send('a');
    expect(ctx.of('message').map((m: { content: string }) => m.content)).toEqual(['a', 'a', 'b', 'c', 'd', 'a']);
    ctx.client.destroy();
  });
});
