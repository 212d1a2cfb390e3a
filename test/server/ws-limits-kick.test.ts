import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ServerErrorCode } from '../../server/src/index';
import { resolveOptions } from '../../server/src/options';
import { admin, errorOf, login, useServers } from './helpers';

const { setup } = useServers();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A plain TCP connection to a port, with whether (and when) the server closed it. */
async function rawSocket(port: number): Promise<{ socket: Socket; closed: () => boolean }> {
  const socket = connect(port, '127.0.0.1');
  let closed = false;
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  await new Promise<void>((r) => socket.once('connect', () => r()));
  return { socket, closed: () => closed };
}

describe('WebSocket frame over maxPayloadBytes', () => {
  it('gets error 311 naming the limit before the Close 1009', async () => {
    const { ws, server } = await setup();
    const c = await ws();
    await login(c, 'big');
    c.sendText(JSON.stringify({ type: 2, dataContent: 'x'.repeat(70 * 1024), from: 'big', to: '0' }));
    const err = await c.nextOfType(52);
    expect(JSON.parse(err.dataContent as string)).toMatchObject({ errorCode: ServerErrorCode.FRAME_TOO_LARGE, limit: 65536 });
    expect((await c.closed).code).toBe(1009);
    expect(server.onlineUsers()).toEqual([]);
  });
});

describe('WebSocket handshake deadline', () => {
  it('is 10 s by default', () => {
    const ws = resolveOptions({}).ws;
    expect(ws && ws.handshakeTimeoutMs).toBe(10000);
    expect(() => resolveOptions({ ws: { handshakeTimeoutMs: 0 } })).toThrow(/ws.handshakeTimeoutMs/);
  });

  it('drops a connection that sends nothing, or only part of its request, once handshakeTimeoutMs is over', async () => {
    const { server } = await setup({ ws: { port: 0, host: '127.0.0.1', handshakeTimeoutMs: 400 } });
    const silent = await rawSocket(server.ports.ws!);
    const partial = await rawSocket(server.ports.ws!);
    partial.socket.write('GET /websocket HTTP/1.1\r\nHost: x\r\n');
    await sleep(200);
    expect(silent.closed()).toBe(false);
    expect(partial.closed()).toBe(false);
    await sleep(600);
    expect(silent.closed()).toBe(true);
    expect(partial.closed()).toBe(true);
  });

  it('leaves a connection alone once its upgrade is done', async () => {
    const { ws } = await setup({ ws: { port: 0, host: '127.0.0.1', handshakeTimeoutMs: 200 } });
    const c = await ws();
    await sleep(400);
    c.send({ type: 5, dataContent: 'still here' });
    expect((await c.nextOfType(53)).dataContent).toBe('still here');
  });
});

describe('kick reasons', () => {
  it('are at most 256 characters through kick() and the admin API; the user stays online when refused', async () => {
    const { ws, server } = await setup();
    const c = await ws();
    await login(c, 'k1');
    expect(() => server.kick('k1', 2, 'r'.repeat(257))).toThrow(RangeError);
    const res = await admin(server.ports.http!, 'POST', '/api/kick', { userId: 'k1', reason: 'r'.repeat(60 * 1024) });
    expect(res.status).toBe(413);
    expect(res.json.error).toMatch(/256/);
    expect(server.onlineUsers()).toEqual(['k1']);
    expect(await server.kick('k1', 2, 'r'.repeat(256))).toBe(true);
    expect(JSON.parse((await c.nextOfType(54)).dataContent as string)).toEqual({ code: 2, reason: 'r'.repeat(256) });
  });

  it("never go out in a frame over the receiver's transport limit: the reason is left out instead", async () => {
    const { tcp, server } = await setup({ tcp: { port: 0, host: '127.0.0.1', maxBodyBytes: 400 }, maxMessageBytes: 400 });
    const c = await tcp();
    await login(c, 't1');
    // 256 quotes: 512 bytes once JSON-escaped twice over, more than the 400-byte TCP frame limit.
    expect(await server.kick('t1', 2, '"'.repeat(256))).toBe(true);
    const kick = await c.nextOfType(54);
    expect(JSON.parse(kick.dataContent as string)).toEqual({ code: 2 });
    expect(Buffer.byteLength(c.texts.at(-1)!)).toBeLessThanOrEqual(400);
    await c.closed;
  });

  it('an error that quotes an oversize frame is shortened to fit the transport', async () => {
    const { tcp } = await setup({ tcp: { port: 0, host: '127.0.0.1', maxBodyBytes: 400 }, maxMessageBytes: 400 });
    const c = await tcp();
    // Not logged in: error 301 quotes the frame (MobileIMSDK does), which would not fit 400 bytes.
    c.sendText(JSON.stringify({ type: 1, dataContent: '{}', from: 'x'.repeat(300), to: '0' }));
    const err = await c.nextOfType(52);
    expect(errorOf(err).errorCode).toBe(301);
    expect(Buffer.byteLength(c.texts.at(-1)!)).toBeLessThanOrEqual(400);
  });
});
