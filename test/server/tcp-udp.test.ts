import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ServerErrorCode } from '../../server/src/index';
import { ackFrame, dataFrame, errorOf, login, loginFrame, TcpClient, useServers } from './helpers';

const { setup, track } = useServers();

describe('TCP gateway', () => {
  it('reassembles frames split across chunks and several frames in one chunk', async () => {
    const { server } = await setup();
    const socket = connect(server.ports.tcp!, '127.0.0.1');
    const c = new TcpClient(socket);
    track(c);
    await new Promise((r) => socket.once('connect', r));
    const body = (o: unknown) => {
      const b = Buffer.from(JSON.stringify(o));
      const h = Buffer.alloc(4);
      h.writeUInt32BE(b.length);
      return Buffer.concat([h, b]);
    };
    const all = Buffer.concat([body({ type: 5, dataContent: 'one' }), body({ type: 5, dataContent: 'two' })]);
    socket.write(all.subarray(0, 3));
    await new Promise((r) => setTimeout(r, 20));
    socket.write(all.subarray(3, 20));
    await new Promise((r) => setTimeout(r, 20));
    socket.write(all.subarray(20));
    expect((await c.nextOfType(53)).dataContent).toBe('one');
    expect((await c.nextOfType(53)).dataContent).toBe('two');
  });

  it('closes a connection that announces a body over 6144 bytes, with error 311', async () => {
    const { tcp } = await setup();
    const c = await tcp();
    const h = Buffer.alloc(4);
    h.writeUInt32BE(6145);
    c.socket.write(h);
    expect(errorOf(await c.nextOfType(52)).errorCode).toBe(ServerErrorCode.FRAME_TOO_LARGE);
    await c.closed;
  });

  it('accepts a body of exactly 6144 bytes', async () => {
    const { tcp } = await setup();
    const c = await tcp();
    // A login whose `extra` pads the body to the limit ('x' is one byte however often it is escaped).
    const withExtra = (extra: string) =>
      JSON.stringify({ ...loginFrame('u-big'), dataContent: JSON.stringify({ loginUserId: 'u-big', loginToken: 't', extra, firstLoginTime: 0 }) });
    const text = withExtra('x'.repeat(6144 - Buffer.byteLength(withExtra(''))));
    expect(Buffer.byteLength(text)).toBe(6144);
    c.sendText(text);
    expect(JSON.parse((await c.nextOfType(50)).dataContent as string).code).toBe(0);
  });

  it('answers an echo whose reply would exceed the 6144-byte limit a TCP client reads with error 311, and keeps the connection', async () => {
    const { tcp } = await setup();
    const c = await tcp();
    const head = '{"type":5,"dataContent":"';
    c.sendText(head + 'x'.repeat(6144 - head.length - 2) + '"}');
    expect(errorOf(await c.nextOfType(52)).errorCode).toBe(ServerErrorCode.FRAME_TOO_LARGE);
    c.sendText('{"type":5,"dataContent":"ping"}');
    expect((await c.nextOfType(53)).dataContent).toBe('ping');
    expect(c.texts.every((t) => Buffer.byteLength(t) <= 6144)).toBe(true);
  });

  it('closes on invalid UTF-8 and on an empty body, leaving a WebSocket user untouched', async () => {
    const { tcp, ws } = await setup();
    const w = await ws();
    await login(w, 'wsuser');
    for (const bytes of [Buffer.from([0, 0, 0, 2, 0xc3, 0x28]), Buffer.from([0, 0, 0, 0])]) {
      const c = await tcp();
      c.socket.write(bytes);
      expect(errorOf(await c.nextOfType(52)).errorCode).toBe(ServerErrorCode.BAD_FRAME);
      await c.closed;
    }
    w.send({ type: 1, dataContent: '{}', from: 'wsuser', to: '0' });
    await w.nextOfType(51);
  });

  it('relays between TCP and WebSocket users', async () => {
    const { tcp, ws } = await setup();
    const t = await tcp();
    const w = await ws();
    await login(t, 'tu');
    await login(w, 'wu');
    t.send(dataFrame('tu', 'wu', 'hi 你好 <&>', 'fp-x1'));
    const got = await w.nextOfType(2);
    expect(got.dataContent).toBe('hi 你好 <&>');
    expect((await t.nextOfType(4)).from).toBe('wu');
    w.send(ackFrame('wu', 'tu', 'fp-x1'));
  });
});

describe('UDP gateway', () => {
  it('logs in, answers keep-alives and C2S, per peer address', async () => {
    const { server, udp } = await setup();
    const u = await udp();
    expect((await login(u, 'udp1')).code).toBe(0);
    u.send({ type: 1, dataContent: '{}', from: 'udp1', to: '0' });
    expect((await u.nextOfType(51)).to).toBe('udp1');
    u.send(dataFrame('udp1', '0', 'c2s', 'fp-u1'));
    expect((await u.nextOfType(4)).dataContent).toBe('fp-u1');
    // A peer that has not proven its address gets no more bytes than it sent: error 301 (132 bytes
    // without its text) waits until a second 98-byte keep-alive has paid for it.
    const other = await udp();
    other.send({ type: 1, dataContent: '{}', from: 'udp1', to: '0' });
    expect(await other.quiet(150)).toEqual([]);
    other.send({ type: 1, dataContent: '{}', from: 'udp1', to: '0' });
    expect(errorOf(await other.nextOfType(52)).errorCode).toBe(ServerErrorCode.UNLOGIN);
    expect(server.metrics().connections.udp).toBe(1);
  });

  it('refuses an oversize datagram and forgets the session', async () => {
    const { server, udp } = await setup({ udp: { port: 0, host: '127.0.0.1', maxDatagramBytes: 512 } });
    const u = await udp();
    await login(u, 'udp2');
    u.sendText(JSON.stringify({ type: 5, dataContent: 'x'.repeat(600) }));
    expect(errorOf(await u.nextOfType(52)).errorCode).toBe(ServerErrorCode.FRAME_TOO_LARGE);
    await expect.poll(() => server.onlineUsers()).toEqual([]);
    u.send({ type: 1, dataContent: '{}', from: 'udp2', to: '0' });
    expect(errorOf(await u.nextOfType(52)).errorCode).toBe(ServerErrorCode.UNLOGIN);
  });

  it('relays from UDP to WebSocket and logs out on type 3', async () => {
    const logouts: string[] = [];
    const { server, udp, ws } = await setup({ hooks: { onLogout: (uid) => void logouts.push(uid) } });
    const u = await udp();
    const w = await ws();
    await login(u, 'udp3');
    await login(w, 'ws3');
    u.send(dataFrame('udp3', 'ws3', 'over udp', 'fp-u3'));
    expect((await w.nextOfType(2)).dataContent).toBe('over udp');
    u.send({ type: 3, from: 'udp3', to: '0' });
    await expect.poll(() => logouts).toEqual(['udp3']);
    expect(server.onlineUsers()).toEqual(['ws3']);
  });
});

describe('across transports', () => {
  it('kicks a TCP session when the same user logs in over WebSocket, and an admin kick ends a UDP session', async () => {
    const { server, tcp, ws, udp } = await setup();
    const t = await tcp();
    await login(t, 'roamer');
    const w = await ws();
    await login(w, 'roamer');
    expect((await t.nextOfType(54)).dataContent).toBe('{"code":1}');
    await t.closed;
    const u = await udp();
    await login(u, 'udp-kick');
    // Two keep-alives prove the address receives; until then a kickout is larger than what it sent.
    for (let i = 0; i < 2; i++) u.send({ type: 1, dataContent: '{}', from: 'udp-kick', to: '0' });
    await u.nextOfType(51);
    await u.nextOfType(51);
    expect(await server.kick('udp-kick', 2, 'admin')).toBe(true);
    expect((await u.nextOfType(54)).dataContent).toBe('{"code":2,"reason":"admin"}');
    u.send({ type: 1, dataContent: '{}', from: 'udp-kick', to: '0' });
    expect(errorOf(await u.nextOfType(52)).errorCode).toBe(ServerErrorCode.UNLOGIN);
    expect(server.onlineUsers()).toEqual(['roamer']);
  });
});
