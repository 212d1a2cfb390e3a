import { describe, expect, it, vi } from 'vitest';
import { ServerErrorCode } from '../../server/src/index';
import { ackFrame, dataFrame, errorOf, login, loginFrame, useServers, WsClient } from './helpers';

const { setup } = useServers();

describe('WebSocket gateway: login and session', () => {
  it('logs in, answers keep-alives on the same connection, and lists the user online', async () => {
    const { server, open } = await setup();
    const a = await open();
    const before = Date.now();
    const r = await login(a, 'u1');
    expect(r.code).toBe(0);
    expect(r.firstLoginTime).toBeGreaterThanOrEqual(before);
    expect(server.onlineUsers()).toEqual(['u1']);
    a.send({ bridge: false, type: 1, dataContent: '{}', from: 'u1', to: '0', QoS: false, typeu: -1, sm: -1 });
    const ka = await a.nextOfType(51);
    expect(a.texts.at(-1)).toBe('{"bridge":false,"type":51,"dataContent":"{}","from":"0","to":"u1","QoS":false,"typeu":-1,"sm":-1}');
    expect(ka.to).toBe('u1');
  });

  it('refuses data before login with error 301 carrying the frame, then Close 1000 "Bye"', async () => {
    const { open } = await setup();
    const a = await open();
    a.send({ type: 2, dataContent: 'hi', from: 'ua', to: 'ub', QoS: true, fp: 'fp-nl' });
    const err = await a.nextOfType(52);
    expect(errorOf(err)).toEqual({
      errorCode: 301,
      errorMsg: '{"bridge":false,"type":2,"dataContent":"hi","from":"ua","to":"ub","fp":"fp-nl","QoS":true,"typeu":0,"sm":0}',
    });
    expect(await a.closed).toEqual({ code: 1000, reason: 'Bye' });
  });

  it('answers echo before login, copying every field', async () => {
    const { open } = await setup();
    const a = await open();
    a.send({ type: 5, dataContent: 'echo me', from: 'ua', to: '0' });
    await a.nextOfType(53);
    expect(a.texts[0]).toBe('{"bridge":false,"type":53,"dataContent":"echo me","from":"ua","to":"0","QoS":false,"typeu":0,"sm":0}');
  });

  it('kicks the older connection (code 1) on a duplicate first login, without onLogout', async () => {
    const logouts: unknown[] = [];
    const { server, open } = await setup({ hooks: { onLogout: (...args) => void logouts.push(args) } });
    const a = await open();
    await login(a, 'ud');
    const b = await open();
    await login(b, 'ud');
    const kick = await a.nextOfType(54);
    expect(kick.dataContent).toBe('{"code":1}');
    expect(await a.closed).toEqual({ code: 1000, reason: 'Bye' });
    expect(server.onlineUsers()).toEqual(['ud']);
    b.send({ type: 1, dataContent: '{}', from: 'ud', to: '0' });
    await b.nextOfType(51);
    expect(logouts).toEqual([]);
  });

  it('arbitrates by firstLoginTime: same value replaces silently, an older value is itself kicked', async () => {
    const { server, open } = await setup();
    const a = await open();
    const { firstLoginTime: ft } = await login(a, 'uf');
    const b = await open();
    expect((await login(b, 'uf', ft)).code).toBe(0);
    expect(await a.closed).toEqual({ code: 1000, reason: 'Bye' });
    expect(a.frames.some((f) => f.type === 54)).toBe(false);
    const c = await open();
    expect((await login(c, 'uf', ft - 1000)).code).toBe(0);
    expect((await c.nextOfType(54)).dataContent).toBe('{"code":1}');
    await c.closed;
    b.send({ type: 1, dataContent: '{}', from: 'uf', to: '0' });
    await b.nextOfType(51);
    expect(server.onlineUsers()).toEqual(['uf']);
  });

  it('rejects a login the verify hook refuses, with its code and firstLoginTime -1, then closes', async () => {
    const { server, open } = await setup({ hooks: { verifyLogin: async (_uid, token) => (token === 'good' ? 0 : 1099) } });
    const a = await open();
    a.send(loginFrame('u2', 0, 'bad'));
    const r = await a.nextOfType(50);
    expect(r.dataContent).toBe('{"code":1099,"firstLoginTime":-1}');
    expect(r.to).toBe('-1');
    await a.closed;
    const b = await open();
    b.send(loginFrame('u2', 0, 'good'));
    expect(JSON.parse((await b.nextOfType(50)).dataContent as string).code).toBe(0);
    expect(server.metrics().loginFailures).toBe(1);
  });

  it('answers login code 318 when the verify hook throws, and keeps serving others', async () => {
    const { open } = await setup({
      hooks: {
        verifyLogin: (uid) => {
          if (uid === 'broken') throw new Error('db down');
          return 0;
        },
      },
    });
    const a = await open();
    a.send(loginFrame('broken'));
    expect((await a.nextOfType(50)).dataContent).toBe(`{"code":${ServerErrorCode.SERVER_ERROR},"firstLoginTime":-1}`);
    await a.closed;
    const b = await open();
    expect((await login(b, 'fine')).code).toBe(0);
  });

  it('does not let a logged-in connection switch to another user', async () => {
    const { server, open } = await setup();
    const a = await open();
    await login(a, 'me');
    a.send(loginFrame('victim'));
    const err = await a.nextOfType(52);
    expect(errorOf(err).errorCode).toBe(ServerErrorCode.ALREADY_LOGGED_IN);
    expect(server.onlineUsers()).toEqual(['me']);
    a.send(loginFrame('me'));
    expect(JSON.parse((await a.nextOfType(50)).dataContent as string).code).toBe(0);
  });

  it('logout closes with 1000 "Bye" and fires onLogout with kick code -1', async () => {
    const logouts: Array<[string, number]> = [];
    const { server, open } = await setup({ hooks: { onLogout: (uid, code) => void logouts.push([uid, code]) } });
    const a = await open();
    await login(a, 'lo');
    a.send({ type: 3, dataContent: null, from: 'lo', to: '0' });
    expect(await a.closed).toEqual({ code: 1000, reason: 'Bye' });
    await expect.poll(() => logouts).toEqual([['lo', -1]]);
    expect(server.onlineUsers()).toEqual([]);
  });

  it('understands MobileIMSDK-H5 wire habits: no bridge/sm, retryCount, fp null, no firstLoginTime', async () => {
    const { open } = await setup();
    const a = await open();
    const b = await open();
    a.send({ type: 0, dataContent: JSON.stringify({ loginUserId: 'h5a', loginToken: 't' }), from: 'h5a', to: '0', fp: null, QoS: false, typeu: -1, retryCount: 0 });
    expect(JSON.parse((await a.nextOfType(50)).dataContent as string).code).toBe(0);
    await login(b, 'h5b');
    a.send({ type: 2, dataContent: 'plain', from: 'h5a', to: 'h5b', fp: null, QoS: false, typeu: -1, retryCount: 0 });
    expect(await b.nextOfType(2)).toMatchObject({ dataContent: 'plain', typeu: -1, sm: 0 });
    expect(b.texts.at(-1)).not.toContain('retryCount');
    a.send({ type: 2, dataContent: 'qos', from: 'h5a', to: 'h5b', fp: 'uuid-1', QoS: true, typeu: -1, retryCount: 1 });
    expect((await b.nextOfType(2)).fp).toBe('uuid-1');
    expect((await a.nextOfType(4)).dataContent).toBe('uuid-1');
    a.send({ type: 3, dataContent: null, from: 'h5a', to: '0', fp: null, QoS: false, typeu: -1, retryCount: 0 });
    expect(await a.closed).toEqual({ code: 1000, reason: 'Bye' });
  });

  it('answers an unknown path with 404 instead of hanging', async () => {
    const { server } = await setup();
    await expect(WsClient.open(server.ports.ws!, '/websocket?x=1')).rejects.toThrow(/404/);
  });
});

describe('WebSocket gateway: messages', () => {
  it('relays C2C with the server ACK on the receiver\'s behalf, retransmits, and stops on the receiver\'s ACK', async () => {
    const c2c: unknown[] = [];
    const { server, open } = await setup({ qos: { checkIntervalMs: 100, resendAfterMs: 50, maxRetries: 5 }, hooks: { onC2C: (m) => void c2c.push(m.fp) } });
    const a = await open();
    const b = await open();
    await login(a, 'ua');
    await login(b, 'ub');
    a.send({ type: 2, dataContent: 'hello b', from: 'ua', to: 'ub', QoS: true, fp: 'fp-c2c-1', typeu: 1 });
    await b.nextOfType(2);
    expect(b.texts.at(-1)).toBe('{"bridge":false,"type":2,"dataContent":"hello b","from":"ua","to":"ub","fp":"fp-c2c-1","QoS":true,"typeu":1,"sm":0}');
    await a.nextOfType(4);
    expect(a.texts.at(-1)).toBe('{"bridge":false,"type":4,"dataContent":"fp-c2c-1","from":"ub","to":"ua","QoS":false,"typeu":-1,"sm":-1}');
    const resent = await b.nextOfType(2, 2000);
    expect(resent.fp).toBe('fp-c2c-1');
    b.send(ackFrame('ub', 'ua', 'fp-c2c-1'));
    await expect.poll(() => server.metrics().delivered).toBe(1);
    const retransmissions = server.metrics().retransmissions;
    await b.quiet(400);
    expect(server.metrics().retransmissions).toBe(retransmissions);
    expect(c2c).toEqual(['fp-c2c-1']);
    expect(a.frames.filter((f) => f.type === 4)).toHaveLength(1);
  });

  it('refuses a spoofed from on data and on ACKs, relaying nothing', async () => {
    const { open } = await setup();
    const a = await open();
    const b = await open();
    await login(a, 'ua');
    await login(b, 'ub');
    a.send(dataFrame('uz', 'ub', 'spoof', 'fp-spoof'));
    const err = await a.nextOfType(52);
    expect(errorOf(err).errorCode).toBe(ServerErrorCode.SPOOFED_FROM);
    a.send(ackFrame('uz', 'ub', 'fp-x'));
    expect(errorOf(await a.nextOfType(52)).errorCode).toBe(ServerErrorCode.SPOOFED_FROM);
    expect(await b.quiet()).toEqual([]);
    expect(a.frames.filter((f) => f.type === 4)).toEqual([]);
    a.send(dataFrame('ua', 'ub', 'honest', 'fp-ok'));
    expect((await b.nextOfType(2)).dataContent).toBe('honest');
  });

  it('ACKs C2S once per fp and hands duplicates to onC2S only once', async () => {
    const seen: string[] = [];
    const { open } = await setup({ hooks: { onC2S: (m) => void seen.push(m.dataContent ?? '') } });
    const a = await open();
    await login(a, 'u1');
    a.send(dataFrame('u1', '0', 'to server', 'fp-s1'));
    a.send(dataFrame('u1', '0', 'to server', 'fp-s1'));
    const acks = [await a.nextOfType(4), await a.nextOfType(4)];
    expect(acks.map((f) => [f.from, f.to, f.dataContent])).toEqual([
      ['0', 'u1', 'fp-s1'],
      ['0', 'u1', 'fp-s1'],
    ]);
    expect(seen).toEqual(['to server']);
  });

  it('lets beforeC2C rewrite and beforeC2S drop (no ACK)', async () => {
    const { open } = await setup({
      hooks: {
        beforeC2C: (m) => ({ ...m, dataContent: (m.dataContent ?? '').replace(/darn/g, '****') }),
        beforeC2S: async (m) => m.dataContent !== 'spam',
      },
    });
    const a = await open();
    const b = await open();
    await login(a, 'ua');
    await login(b, 'ub');
    a.send(dataFrame('ua', 'ub', 'oh darn', 'fp-r'));
    expect((await b.nextOfType(2)).dataContent).toBe('oh ****');
    a.send(dataFrame('ua', '0', 'spam', 'fp-spam'));
    a.send(dataFrame('ua', '0', 'fine', 'fp-fine'));
    const acks = [await a.nextOfType(4), await a.nextOfType(4)];
    expect(acks.map((f) => f.dataContent)).toEqual(['fp-r', 'fp-fine']);
  });

  it('refuses QoS without fp and a message without a receiver, keeping the connection', async () => {
    const { open } = await setup();
    const a = await open();
    await login(a, 'ua');
    a.send({ type: 2, dataContent: 'x', from: 'ua', to: 'ub', QoS: true });
    expect(errorOf(await a.nextOfType(52)).errorCode).toBe(ServerErrorCode.BAD_MESSAGE);
    a.send({ type: 2, dataContent: 'x', from: 'ua', QoS: false });
    expect(errorOf(await a.nextOfType(52)).errorCode).toBe(ServerErrorCode.BAD_MESSAGE);
    a.send({ type: 1, dataContent: '{}', from: 'ua', to: '0' });
    await a.nextOfType(51);
  });
});

describe('WebSocket gateway: bad input', () => {
  it.each([
    ['invalid JSON', 'garbage', ServerErrorCode.BAD_FRAME],
    ['a JSON array', '[1,2]', ServerErrorCode.BAD_FRAME],
    ['an object dataContent', '{"type":2,"dataContent":{"a":1}}', ServerErrorCode.BAD_FRAME],
    ['a non-integer type', '{"type":"two"}', ServerErrorCode.BAD_FRAME],
    ['an empty text', '', ServerErrorCode.BAD_FRAME],
    ['a login without user id', '{"type":0,"dataContent":"{\\"loginToken\\":\\"t\\"}"}', ServerErrorCode.BAD_FRAME],
    ['a login as the server', '{"type":0,"dataContent":"{\\"loginUserId\\":\\"0\\"}"}', ServerErrorCode.BAD_FRAME],
  ])('closes only the connection that sent %s, with an error first', async (_name, text, code) => {
    const { server, open } = await setup();
    const good = await open();
    await login(good, 'good');
    const bad = await open();
    bad.sendText(text);
    expect(errorOf(await bad.nextOfType(52)).errorCode).toBe(code);
    expect(await bad.closed).toEqual({ code: 1000, reason: 'Bye' });
    good.send({ type: 1, dataContent: '{}', from: 'good', to: '0' });
    await good.nextOfType(51);
    expect(server.metrics().badInput).toBeGreaterThanOrEqual(1);
  });

  it('closes a connection that sends a binary frame, with error 312', async () => {
    const { open } = await setup();
    const a = await open();
    await login(a, 'ub');
    a.ws.send(Buffer.from('{"type":1}'));
    expect(errorOf(await a.nextOfType(52)).errorCode).toBe(ServerErrorCode.BINARY_FRAME);
    expect((await a.closed).code).toBe(1000);
  });

  it('closes a connection whose frame is over the payload limit (1009)', async () => {
    const { open } = await setup({ ws: { port: 0, host: '127.0.0.1', maxPayloadBytes: 1024 } });
    const a = await open();
    a.sendText(JSON.stringify({ type: 5, dataContent: 'x'.repeat(2000) }));
    expect((await a.closed).code).toBe(1009);
  });

  it('closes a flooding connection with error 315 and leaves others alone', async () => {
    const { server, open } = await setup({ rateLimit: { burst: 20, perSecond: 1 } });
    const other = await open();
    await login(other, 'calm');
    const a = await open();
    for (let i = 0; i < 40; i++) a.send({ type: 5, dataContent: String(i) });
    expect(errorOf(await a.nextOfType(52)).errorCode).toBe(ServerErrorCode.RATE_LIMITED);
    await a.closed;
    expect(a.frames.filter((f) => f.type === 53).length).toBeLessThanOrEqual(20);
    other.send({ type: 1, dataContent: '{}', from: 'calm', to: '0' });
    await other.nextOfType(51);
    expect(server.metrics().rateLimited).toBe(1);
  });

  it('refuses a connection that does not log in within the deadline', async () => {
    const { open } = await setup({ loginTimeoutMs: 150 });
    const a = await open();
    a.send({ type: 5, dataContent: 'still here' });
    await a.nextOfType(53);
    expect(errorOf(await a.nextOfType(52, 2000)).errorCode).toBe(ServerErrorCode.LOGIN_TIMEOUT);
    await a.closed;
  });

  it('keeps running when a hook throws, answering with error 318', async () => {
    const { open } = await setup({
      hooks: {
        beforeC2S: () => {
          throw new Error('boom');
        },
        onLoginSuccess: () => {
          throw new Error('boom too');
        },
      },
    });
    const a = await open();
    await login(a, 'h');
    a.send(dataFrame('h', '0', 'x', 'fp-h'));
    expect(errorOf(await a.nextOfType(52)).errorCode).toBe(ServerErrorCode.SERVER_ERROR);
    a.send({ type: 1, dataContent: '{}', from: 'h', to: '0' });
    await a.nextOfType(51);
  });
});

describe('WebSocket gateway: pings', () => {
  it('answers a WebSocket ping with a pong carrying its payload, before and after login', async () => {
    const { open } = await setup();
    const a = await open();
    const pongs: string[] = [];
    a.ws.on('pong', (data) => pongs.push(data.toString()));
    a.ws.ping('before login');
    await login(a, 'pinger');
    a.ws.ping('after login');
    a.ws.ping();
    a.send({ type: 1, dataContent: '{}', from: 'pinger', to: '0' });
    await a.nextOfType(51);
    await vi.waitFor(() => expect(pongs).toEqual(['before login', 'after login', '']));
  });

  it('drops a peer that pings without reading the pongs, once they pass maxBufferedBytes', async () => {
    const { server, open } = await setup({ maxBufferedBytes: 4096 });
    const other = await open();
    await login(other, 'calm');
    const a = await open();
    await login(a, 'flood');
    a.ws.pause();
    const payload = Buffer.alloc(125, 0x61);
    let sent = 0;
    // The kernel's socket buffers on both sides absorb a few MB first: at most 200,000 pings (about 26 MB).
    while (server.onlineUsers().includes('flood') && sent < 200_000 && a.ws.readyState === a.ws.OPEN) {
      for (let i = 0; i < 500; i++) a.ws.ping(payload);
      sent += 500;
      await new Promise((r) => setTimeout(r, 1));
    }
    await vi.waitFor(() => expect(server.onlineUsers()).toEqual(['calm']), { timeout: 5000 });
    other.send({ type: 1, dataContent: '{}', from: 'calm', to: '0' });
    await other.nextOfType(51);
  });
});
