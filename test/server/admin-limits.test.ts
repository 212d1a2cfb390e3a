import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseCli } from '../../server/src/cli-args';
import { resolveOptions } from '../../server/src/options';
import { ADMIN_TOKEN, admin, login, useServers } from './helpers';

const { setup } = useServers();
const sockets: Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
});

/** A raw TCP connection to the admin port that records what it got and when it closed. */
async function raw(port: number, host = '127.0.0.1'): Promise<{ socket: Socket; received: () => string; closed: () => boolean; closedAt: Promise<number> }> {
  const socket = connect(port, host);
  sockets.push(socket);
  let text = '';
  let isClosed = false;
  const closedAt = new Promise<number>((resolve) =>
    socket.on('close', () => {
      isClosed = true;
      resolve(Date.now());
    }),
  );
  socket.on('data', (c) => (text += c.toString()));
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  return { socket, received: () => text, closed: () => isClosed, closedAt };
}

/** Writes `chunks` one every `everyMs` until the socket closes or they run out. */
function trickle(socket: Socket, chunks: string[], everyMs: number): void {
  let i = 0;
  const next = (): void => {
    if (socket.destroyed || i >= chunks.length) return;
    socket.write(chunks[i++]);
    setTimeout(next, everyMs);
  };
  next();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Node checks these deadlines every second (the admin API's connectionsCheckingInterval). */
const CHECK_SLACK_MS = 1500;

describe('admin API: bound, and bounded in time and count (issue 9 item 7)', () => {
  it('binds 127.0.0.1 by default, not the gateways\' --host', async () => {
    expect(resolveOptions({ http: { port: 0 } }).http).toMatchObject({ host: '127.0.0.1' });
    const cli = parseCli(['--host', '0.0.0.0'], {});
    expect(cli.options.http).toMatchObject({ host: '127.0.0.1' });
    expect(cli.options.ws).toMatchObject({ host: '0.0.0.0' });
    expect(parseCli(['--http-host', '10.1.2.3'], {}).options.http).toMatchObject({ host: '10.1.2.3' });
    expect(parseCli([], { IM_HTTP_HOST: '::1' }).options.http).toMatchObject({ host: '::1' });
    expect(parseCli(['--metrics-public'], {}).options.http).toMatchObject({ metricsPublic: true });
    expect(parseCli([], { IM_METRICS_PUBLIC: 'true' }).options.http).toMatchObject({ metricsPublic: true });
    expect(parseCli([], {}).options.http).toMatchObject({ metricsPublic: false });
    expect(() => parseCli(['--metrics-public=maybe'], {})).toThrow(/--metrics-public/);
    const ops = parseCli(['--drain-ms', '250', '--log-format', 'pretty', '--node-id', 'im-7'], {});
    expect([ops.drainMs, ops.logFormat, ops.nodeId, ops.options.nodeId]).toEqual([250, 'pretty', 'im-7', 'im-7']);
    expect(parseCli([], {})).toMatchObject({ drainMs: 5000, logFormat: 'json', nodeId: undefined });
    expect(() => parseCli(['--log-format', 'xml'], {})).toThrow(/--log-format/);
    expect(parseCli(['--version'], {}).version).toBe(true);
    // The gateways on every interface, the admin API left at its default: 127.0.0.2 (loopback, but not
    // the address the admin API binds) reaches the gateway and is refused by the admin port.
    const { server } = await setup({ ws: { port: 0, host: '0.0.0.0' }, http: { port: 0, adminToken: ADMIN_TOKEN } });
    const ws = await raw(server.ports.ws!, '127.0.0.2');
    ws.socket.destroy();
    await expect(raw(server.ports.http!, '127.0.0.2')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect((await admin(server.ports.http!, 'GET', '/health', undefined, null)).status).toBe(200);
  });

  it('closes a connection whose headers trickle in past headersTimeoutMs, and not before', async () => {
    const { server } = await setup({ http: { port: 0, host: '127.0.0.1', adminToken: ADMIN_TOKEN, headersTimeoutMs: 1000 } });
    const c = await raw(server.ports.http!);
    const startedMs = Date.now();
    trickle(c.socket, ['GET /health HTTP/1.1\r\n', ...Array.from({ length: 100 }, (_, i) => `x-h${i}: y\r\n`)], 100);
    await sleep(800);
    expect(c.closed()).toBe(false);
    const closedMs = await Promise.race([c.closedAt, sleep(1000 + CHECK_SLACK_MS + 1000).then(() => -1)]);
    expect(closedMs).not.toBe(-1);
    expect(closedMs - startedMs).toBeGreaterThanOrEqual(1000);
  });

  it('closes a connection that opens and sends nothing within headersTimeoutMs', async () => {
    const { server } = await setup({ http: { port: 0, host: '127.0.0.1', adminToken: ADMIN_TOKEN, headersTimeoutMs: 1000 } });
    const c = await raw(server.ports.http!);
    const closedMs = await Promise.race([c.closedAt, sleep(1000 + CHECK_SLACK_MS + 1000).then(() => -1)]);
    expect(closedMs).not.toBe(-1);
  });

  it('closes an authorised request whose body trickles in past requestTimeoutMs', async () => {
    const { server } = await setup({
      http: { port: 0, host: '127.0.0.1', adminToken: ADMIN_TOKEN, headersTimeoutMs: 1000, requestTimeoutMs: 1500 },
    });
    const c = await raw(server.ports.http!);
    const startedMs = Date.now();
    const head = `POST /api/send HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${ADMIN_TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n`;
    trickle(c.socket, [head, ...Array.from({ length: 1000 }, () => ' ')], 100);
    await sleep(1200);
    expect(c.closed()).toBe(false);
    const closedMs = await Promise.race([c.closedAt, sleep(1500 + CHECK_SLACK_MS + 1000).then(() => -1)]);
    expect(closedMs).not.toBe(-1);
    expect(closedMs - startedMs).toBeGreaterThanOrEqual(1500);
  });

  it('refuses a body over maxBodyBytes with 413 before reading it', async () => {
    const { server } = await setup({ http: { port: 0, host: '127.0.0.1', adminToken: ADMIN_TOKEN, maxBodyBytes: 100 } });
    const ok = await admin(server.ports.http!, 'POST', '/api/kick', { userId: 'x'.repeat(50) });
    expect(ok.status).toBe(404);
    const big = await admin(server.ports.http!, 'POST', '/api/kick', { userId: 'x'.repeat(100) });
    expect(big.status).toBe(413);
  });

  it('closes admin connections over maxConnections at once, while the gateways go on accepting clients', async () => {
    const { server, ws } = await setup({ http: { port: 0, host: '127.0.0.1', adminToken: ADMIN_TOKEN, maxConnections: 3 } });
    const held = [await raw(server.ports.http!), await raw(server.ports.http!), await raw(server.ports.http!)];
    const extra = await raw(server.ports.http!);
    const closedMs = await Promise.race([extra.closedAt, sleep(2000).then(() => -1)]);
    expect(closedMs).not.toBe(-1);
    expect(held.map((h) => h.closed())).toEqual([false, false, false]);
    const client = await ws();
    expect((await login(client, 'still-welcome')).code).toBe(0);
    held[0].socket.destroy();
    await held[0].closedAt;
    await expect.poll(async () => (await admin(server.ports.http!, 'GET', '/health', undefined, null).catch(() => ({ status: 0 }))).status).toBe(200);
  });

  it('validates the limits', () => {
    expect(() => resolveOptions({ http: { maxConnections: 0 } })).toThrow(/http.maxConnections/);
    expect(() => resolveOptions({ http: { headersTimeoutMs: -1 } })).toThrow(/http.headersTimeoutMs/);
    expect(() => resolveOptions({ http: { headersTimeoutMs: 5000, requestTimeoutMs: 1000 } })).toThrow(/headersTimeoutMs/);
  });
});

describe('an admin request the client abandons', () => {
  it('is not logged as a server failure (no error line) when the client hangs up mid-body', async () => {
    const lines: Array<[string, string]> = [];
    const at = (level: string) => (message: string) => void lines.push([level, message]);
    const { server } = await setup({ logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } });
    const c = await raw(server.ports.http!);
    c.socket.write(
      `POST /api/send HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"to":"u1",`,
    );
    await new Promise((r) => setTimeout(r, 100));
    c.socket.destroy();
    await new Promise((r) => setTimeout(r, 200));
    expect(lines.filter(([level]) => level === 'error')).toEqual([]);
    expect(lines.some(([level, message]) => level === 'debug' && message.includes('aborted'))).toBe(true);
  });
});
