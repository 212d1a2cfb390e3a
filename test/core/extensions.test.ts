/**
 * The client side of our wire extensions (capabilities at login, the server's message limit, refusals tied
 * to one message, device receipts, going away) and connection failures said in words. Frames exactly as
 * the extensions spec gives them, through the fake adapter; fake timers on both sides of each boundary.
 */
import { describe, expect, it, vi } from 'vitest';
import { IMError } from '../../src/errors';
import { MsgType, encodeFrame, createFrame } from '../../src/protocol';
import { utf8Length } from '../../src/utf8';
import { loginOnline, makeClient, seededRandom, useFakeTimersPerTest } from '../helpers/setup';
import type { FakeSocket } from '../helpers/fake-adapter';

useFakeTimersPerTest();

/** Answers the pending login as our server does to a login that sent `caps`. */
function ourLoginResponse(sock: FakeSocket, maxMessageBytes: number, caps = 1): void {
  sock.deliver({ type: 50, dataContent: `{"code":0,"firstLoginTime":1700000000000,"caps":${caps},"maxMessageBytes":${maxMessageBytes}}` });
}

async function loginOurs(ctx: ReturnType<typeof makeClient>, maxMessageBytes: number, caps = 1) {
  const p = ctx.client.login({ userId: 'u1', token: 'tok' });
  ctx.fake.last.open();
  ourLoginResponse(ctx.fake.last, maxMessageBytes, caps);
  await p;
  return ctx.fake.last;
}

/** The UTF-8 size of the data frame `send('u2', content, { fp })` writes. */
function dataFrameBytes(content: string, fp: string): number {
  return utf8Length(encodeFrame(createFrame({ type: 2, dataContent: content, from: 'u1', to: 'u2', fp, QoS: true })));
}

describe('capabilities at login', () => {
  it('asks for device receipts, in ACKs where they can be, by default: "caps":3 after MobileIMSDK\'s keys', () => {
    const ctx = makeClient();
    ctx.client.login({ userId: 'u1', token: 'tok' }).catch(() => undefined);
    ctx.fake.last.open();
    expect(ctx.fake.last.sentOfType(MsgType.LOGIN)[0].dataContent).toBe('{"loginUserId":"u1","loginToken":"tok","firstLoginTime":0,"caps":3}');
    ctx.client.destroy();
  });

  it('sends no caps key with receipts: false, so the login is MobileIMSDK\'s own', () => {
    const ctx = makeClient({ receipts: false });
    ctx.client.login({ userId: 'u1', token: 'tok' }).catch(() => undefined);
    ctx.fake.last.open();
    expect(ctx.fake.last.sentOfType(MsgType.LOGIN)[0].dataContent).toBe('{"loginUserId":"u1","loginToken":"tok","firstLoginTime":0}');
    ctx.client.destroy();
  });

  it('refuses a receipts option that is not a boolean', () => {
    expect(() => makeClient({ receipts: 'yes' as never })).toThrow(TypeError);
    expect(() => makeClient({ receipts: 'yes' as never })).toThrow(/options\.receipts/);
  });

  it('continues an earlier session with the firstLoginTime given to login()', async () => {
    const ctx = makeClient({ receipts: false });
    const p = ctx.client.login({ userId: 'u1', token: 'tok', firstLoginTime: 1600000000000 });
    ctx.fake.last.open();
    expect(JSON.parse(ctx.fake.last.sentOfType(MsgType.LOGIN)[0].dataContent as string)).toMatchObject({ firstLoginTime: 1600000000000 });
    ctx.fake.last.loginResponse(0, 1600000000000);
    await expect(p).resolves.toEqual({ userId: 'u1', firstLoginTime: 1600000000000 });
    expect(() => ctx.client.login({ userId: 'u1', firstLoginTime: 'x' as never })).toThrow(TypeError);
    ctx.client.destroy();
  });
});

describe("the server's message limit", () => {
  it('sends a message of exactly maxMessageBytes and refuses one byte more at once, as lost with the limit', async () => {
    const ctx = makeClient();
    const sock = await loginOurs(ctx, 400);
    const fits = 'a'.repeat(400 - dataFrameBytes('', 'f1'));
    expect(dataFrameBytes(fits, 'f1')).toBe(400);
    ctx.client.send('u2', fits, { fp: 'f1' }).catch(() => undefined);
    expect(sock.sentOfType(MsgType.DATA).map((f) => f.fp)).toEqual(['f1']);
    const refused = await ctx.client.send('u2', fits + 'a', { fp: 'f2' }).catch((e: IMError) => e);
    expect(refused).toBeInstanceOf(IMError);
    expect(refused).toMatchObject({ code: 'MESSAGE_REFUSED', limit: 400, serverCode: undefined });
    expect((refused as IMError).message).toBe('a 401-byte message exceeds the 400-byte limit');
    expect(sock.sentOfType(MsgType.DATA).map((f) => f.fp)).toEqual(['f1']);
    expect(ctx.client.stats().pending).toBe(1);
    ctx.client.destroy();
  });

  it('keeps the transport limit against a MobileIMSDK server, which says no limit', async () => {
    const ctx = makeClient();
    const sock = await loginOnline(ctx);
    ctx.client.send('u2', 'a'.repeat(5000), { fp: 'big' }).catch(() => undefined);
    expect(sock.sentOfType(MsgType.DATA).map((f) => f.fp)).toEqual(['big']);
    await expect(ctx.client.send('u2', 'a'.repeat(70000))).rejects.toMatchObject({ code: 'MESSAGE_TOO_LARGE', limit: 65536 });
    ctx.client.destroy();
  });

  it('forgets the limit at the next login, which may reach a MobileIMSDK server', async () => {
    const ctx = makeClient({ random: () => 0 });
    const sock = await loginOurs(ctx, 400);
    sock.serverClose(1006, '');
    await vi.advanceTimersByTimeAsync(0);
    ctx.fake.last.open();
    ctx.fake.last.loginResponse(0);
    ctx.client.send('u2', 'a'.repeat(1000), { fp: 'f3' }).catch(() => undefined);
    expect(ctx.fake.last.sentOfType(MsgType.DATA).map((f) => f.fp)).toEqual(['f3']);
    ctx.client.destroy();
  });
});

describe('a refusal tied to one message (type 52 with fp)', () => {
  it('settles that message at once as lost with MESSAGE_REFUSED, the server code and the limit', async () => {
    const ctx = makeClient();
    const sock = await loginOurs(ctx, 6144);
    const settled = vi.fn();
    const p = ctx.client.send('u2', 'hello', { fp: 'fp-1' });
    p.then(settled, settled);
    sock.deliver({ type: 52, to: '-1', dataContent: '{"errorCode":311,"errorMsg":"too large","fp":"fp-1","limit":6144}' });
    await vi.advanceTimersByTimeAsync(0);
    expect(settled).toHaveBeenCalledTimes(1);
    const error = await p.catch((e: IMError) => e);
    expect(error).toMatchObject({ code: 'MESSAGE_REFUSED', serverCode: 311, limit: 6144 });
    expect(ctx.of('lost')).toEqual([{ message: expect.objectContaining({ fp: 'fp-1', content: 'hello' }), error }]);
    expect(ctx.of('error')).toEqual([]);
    expect(ctx.client.stats().pending).toBe(0);
    // Nothing more happens when the QoS timeout would have fired.
    await vi.advanceTimersByTimeAsync(20_000);
    expect(ctx.of('lost')).toHaveLength(1);
    expect(sock.sentOfType(MsgType.DATA)).toHaveLength(1);
    ctx.client.destroy();
  });

  it('has no limit when the server gave none, and reports an fp it does not hold as a server error', async () => {
    const ctx = makeClient();
    const sock = await loginOurs(ctx, 6144);
    const p = ctx.client.send('u2', 'hello', { fp: 'fp-2' });
    sock.deliver({ type: 52, to: '-1', dataContent: '{"errorCode":324,"errorMsg":"offline box full","fp":"fp-2"}' });
    await expect(p).rejects.toMatchObject({ code: 'MESSAGE_REFUSED', serverCode: 324, limit: undefined });
    sock.deliver({ type: 52, to: '-1', dataContent: '{"errorCode":324,"errorMsg":"offline box full","fp":"unknown"}' });
    expect(ctx.of('error')).toEqual([expect.objectContaining({ code: 'SERVER_ERROR', serverCode: 324 })]);
    ctx.client.destroy();
  });
});

describe('device receipts (type 60)', () => {
  it('emits received with fp, the receiver and the server time, after delivered', async () => {
    const ctx = makeClient();
    const sock = await loginOurs(ctx, 6144);
    const seen: string[] = [];
    ctx.client.on('delivered', (e) => seen.push(`delivered ${e.fp}`));
    ctx.client.on('received', (e) => seen.push(`received ${e.fp} by ${e.to} at ${e.at}`));
    ctx.client.send('u2', 'hi', { fp: 'fp-r' }).catch(() => undefined);
    sock.deliver({ type: 4, dataContent: 'fp-r', from: '0', to: 'u1' });
    sock.deliver({ type: 60, dataContent: '{"fp":"fp-r","at":1700000000500}', from: 'u2', to: 'u1', QoS: false });
    expect(seen).toEqual(['delivered fp-r', 'received fp-r by u2 at 1700000000500']);
    // A receipt is not a QoS frame: it is never ACKed.
    expect(sock.sentOfType(MsgType.ACK)).toEqual([]);
    ctx.client.destroy();
  });

  it('emits received from an ACK that carries it (typeu 60, the time in sm) when the server granted caps bit 2, after delivered', async () => {
    const ctx = makeClient();
    const sock = await loginOurs(ctx, 6144, 3);
    const seen: string[] = [];
    ctx.client.on('delivered', (e) => seen.push(`delivered ${e.fp}`));
    ctx.client.on('received', (e) => seen.push(`received ${e.fp} by ${e.to} at ${e.at}`));
    const sent = ctx.client.send('u2', 'hi', { fp: 'fp-in' });
    sock.deliver({ type: 4, dataContent: 'fp-in', from: 'u2', to: 'u1', typeu: 60, sm: 1700000000700 });
    expect(seen).toEqual(['delivered fp-in', 'received fp-in by u2 at 1700000000700']);
    await expect(sent).resolves.toEqual({ fp: 'fp-in', to: 'u2', acked: true });
    // A plain ACK is only an ACK.
    ctx.client.send('u2', 'again', { fp: 'fp-plain' }).catch(() => undefined);
    sock.deliver({ type: 4, dataContent: 'fp-plain', from: 'u2', to: 'u1', sm: 1700000000800 });
    expect(seen).toEqual(['delivered fp-in', 'received fp-in by u2 at 1700000000700', 'delivered fp-plain']);
    ctx.client.destroy();
  });

  it('reads no receipt in an ACK unless the last login granted caps bit 2 (a MobileIMSDK server grants nothing)', async () => {
    for (const grant of [null, 1]) {
      const ctx = makeClient();
      const p = ctx.client.login({ userId: 'u1', token: 'tok' });
      ctx.fake.last.open();
      if (grant === null) ctx.fake.last.loginResponse(0);
      else ourLoginResponse(ctx.fake.last, 6144, grant);
      await p;
      ctx.client.send('u2', 'hi', { fp: 'fp-f' }).catch(() => undefined);
      ctx.fake.last.deliver({ type: 4, dataContent: 'fp-f', from: 'u2', to: 'u1', typeu: 60, sm: 1700000000900 });
      expect(ctx.of('delivered')).toHaveLength(1);
      expect(ctx.of('received')).toEqual([]);
      ctx.client.destroy();
    }
  });

  it('forgets the grant at a re-login to a server that grants nothing (a MobileIMSDK server behind the same URL)', async () => {
    const ctx = makeClient({ reconnect: { minDelayMs: 100, maxDelayMs: 100 } });
    const first = await loginOurs(ctx, 6144, 3);
    ctx.client.send('u2', 'one', { fp: 'fp-1' }).catch(() => undefined);
    first.deliver({ type: 4, dataContent: 'fp-1', from: 'u2', to: 'u1', typeu: 60, sm: 1700000000100 });
    expect(ctx.of('received')).toEqual([{ fp: 'fp-1', to: 'u2', at: 1700000000100 }]);
    first.serverClose(1006, '');
    await vi.advanceTimersByTimeAsync(100);
    ctx.fake.last.open();
    ctx.fake.last.loginResponse(0);
    expect(ctx.client.state).toBe('online');
    ctx.client.send('u2', 'two', { fp: 'fp-2' }).catch(() => undefined);
    ctx.fake.last.deliver({ type: 4, dataContent: 'fp-2', from: 'u2', to: 'u1', typeu: 60, sm: 1700000000200 });
    expect(ctx.of('delivered').map((e) => (e as { fp: string }).fp)).toEqual(['fp-1', 'fp-2']);
    expect(ctx.of('received')).toHaveLength(1);
    ctx.client.destroy();
  });

  it('reports a malformed receipt as a protocol error and stays online', async () => {
    const ctx = makeClient();
    const sock = await loginOurs(ctx, 6144);
    sock.deliver({ type: 60, dataContent: 'not json', from: 'u2', to: 'u1' });
    expect(ctx.of('error')).toEqual([expect.objectContaining({ code: 'PROTOCOL_ERROR' })]);
    expect(ctx.client.state).toBe('online');
    ctx.client.destroy();
  });
});

describe('going away (error 336, close 1001)', () => {
  const slowBackoff = { reconnect: { minDelayMs: 20_000, maxDelayMs: 60_000 } };

  it.each([
    ['error 336', (s: FakeSocket) => s.deliver({ type: 52, to: '-1', dataContent: '{"errorCode":336,"errorMsg":"server shutting down; reconnect"}' })],
    ['close 1001', (s: FakeSocket) => s.serverClose(1001, 'going away')],
  ])('%s: reconnects after a random delay in [0, 1000) ms, not the backoff', async (_name, goAway) => {
    const expected = Math.floor(seededRandom(3)() * 1000);
    expect(expected).toBeGreaterThan(0);
    const ctx = makeClient({ ...slowBackoff, random: seededRandom(3) });
    const sock = await loginOurs(ctx, 6144);
    goAway(sock);
    expect(ctx.of('state').at(-1)).toEqual({ from: 'online', to: 'reconnecting', reason: 'server-going-away' });
    expect(ctx.of('reconnect')).toEqual([{ attempt: 1, delayMs: expected }]);
    await vi.advanceTimersByTimeAsync(expected - 1);
    expect(ctx.fake.sockets).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(ctx.fake.sockets).toHaveLength(2);
    ctx.client.destroy();
  });

  it('stays under a second for the largest draw', async () => {
    const ctx = makeClient({ ...slowBackoff, random: () => 0.9999999 });
    const sock = await loginOurs(ctx, 6144);
    sock.serverClose(1001, '');
    expect(ctx.of('reconnect')).toEqual([{ attempt: 1, delayMs: 999 }]);
    await vi.advanceTimersByTimeAsync(998);
    expect(ctx.fake.sockets).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(ctx.fake.sockets).toHaveLength(2);
    ctx.client.destroy();
  });

  it('keeps the backoff for any other close', async () => {
    const ctx = makeClient({ ...slowBackoff, random: () => 0.5 });
    const sock = await loginOurs(ctx, 6144);
    sock.serverClose(1006, '');
    expect(ctx.of('reconnect')).toEqual([{ attempt: 1, delayMs: 10_000 }]);
    ctx.client.destroy();
  });
});

describe('connection failures in words', () => {
  it('says what happened to a first login, and keeps the reason name as a field', async () => {
    const ctx = makeClient();
    const refused = ctx.client.login({ userId: 'u1' });
    ctx.fake.last.serverClose(1006, '');
    await expect(refused).rejects.toMatchObject({
      code: 'CONNECT_FAILED',
      reason: 'socket-closed',
      message: 'could not reach ws://test/websocket: connection refused or lost',
    });
    const described = ctx.client.login({ userId: 'u1' });
    ctx.fake.last.serverClose(1006, 'connection refused (ECONNREFUSED)');
    await expect(described).rejects.toMatchObject({ message: 'could not reach ws://test/websocket: connection refused (ECONNREFUSED)' });
    const closed = ctx.client.login({ userId: 'u1' });
    ctx.fake.last.serverClose(1011, '');
    await expect(closed).rejects.toMatchObject({ message: 'could not reach ws://test/websocket: closed with code 1011' });
    ctx.fake.failNextConnect(new Error('bad url'));
    await expect(ctx.client.login({ userId: 'u1' })).rejects.toMatchObject({
      code: 'CONNECT_FAILED',
      reason: 'connect-failed',
      message: 'could not reach ws://test/websocket: bad url',
    });
    const timeout = ctx.client.login({ userId: 'u1' }).catch((e: IMError) => e);
    ctx.fake.last.open();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(await timeout).toMatchObject({ code: 'LOGIN_TIMEOUT', reason: 'login-timeout' });
  });

  it('names the last cause when it gives up reconnecting', async () => {
    const ctx = makeClient({ reconnect: { maxAttempts: 1 }, random: () => 0 });
    const sock = await loginOnline(ctx);
    sock.serverClose(1006, '');
    await vi.advanceTimersByTimeAsync(0);
    ctx.fake.last.serverClose(1006, '');
    expect(ctx.of('error').at(-1)).toMatchObject({ code: 'RECONNECT_FAILED', reason: 'socket-closed' });
  });
});
