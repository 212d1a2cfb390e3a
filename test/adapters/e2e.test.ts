/**
 * End to end: the same scenarios over the Node WebSocket (`ws` through the browser adapter), TCP and UDP
 * adapters against the reference server on ephemeral ports: login, C2C with delivered receipts, kick on a
 * duplicate login, and reconnect after the server restarts.
 */
import net from 'node:net';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { IMClient, type IncomingMessage } from '../../src/index';
import type { SocketAdapter } from '../../src/transport';
import { createBrowserAdapter } from '../../adapters/browser';
import { createTcpAdapter } from '../../adapters/tcp';
import { createUdpAdapter } from '../../adapters/udp';
import { createServer, silentLogger, type IMServer, type ServerOptions } from '../../server/src/index';

type Transport = 'ws' | 'tcp' | 'udp';

const transports: Array<[Transport, (port: number) => { url: string; adapter: SocketAdapter }]> = [
  [
    'ws',
    (port) => ({
      url: `ws://127.0.0.1:${port}/websocket`,
      adapter: createBrowserAdapter({ WebSocket: WebSocket as never, window: null, document: null }),
    }),
  ],
  ['tcp', (port) => ({ url: `tcp://127.0.0.1:${port}`, adapter: createTcpAdapter(net) })],
  ['udp', (port) => ({ url: `udp://127.0.0.1:${port}`, adapter: createUdpAdapter(dgram) })],
];

function startServer(ports: { ws?: number; tcp?: number; udp?: number } = {}, more: Partial<ServerOptions> = {}): Promise<IMServer> {
  return createServer({
    ws: { port: ports.ws ?? 0, host: '127.0.0.1' },
    tcp: { port: ports.tcp ?? 0, host: '127.0.0.1' },
    udp: { port: ports.udp ?? 0, host: '127.0.0.1' },
    http: false,
    logger: silentLogger,
    ...more,
  });
}

describe.each(transports)('end to end over %s', (transport, endpoint) => {
  const clients: IMClient[] = [];
  const servers: IMServer[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    for (const s of servers.splice(0)) await s.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  const serve = async (ports?: Parameters<typeof startServer>[0], more?: Partial<ServerOptions>) => {
    const server = await startServer(ports, more);
    servers.push(server);
    return server;
  };
  /* Short keep-alive and backoff: over UDP a restarted server is only noticed by the keep-alive. */
  const client = (server: IMServer) => {
    const { url, adapter } = endpoint(server.ports[transport]!);
    const c = new IMClient({
      url,
      adapter,
      keepAlive: { intervalMs: 300, timeoutMs: 900 },
      reconnect: { minDelayMs: 50, maxDelayMs: 200 },
    });
    clients.push(c);
    return c;
  };
  const inbox = (c: IMClient) => {
    const got: IncomingMessage[] = [];
    c.on('message', (m) => void got.push(m));
    return got;
  };

  it('logs in and sends C2C with a delivered receipt', async () => {
    const server = await serve();
    const alice = client(server);
    const bob = client(server);
    const bobInbox = inbox(bob);
    const delivered: string[] = [];
    alice.on('delivered', ({ fp }) => void delivered.push(fp));
    const received: Array<{ fp: string; to: string; at: number }> = [];
    alice.on('received', (e) => void received.push(e));
    const r = await alice.login({ userId: 'alice', token: 't' });
    expect(r.userId).toBe('alice');
    await bob.login({ userId: 'bob', token: 't' });
    expect(server.onlineUsers().sort()).toEqual(['alice', 'bob']);
    const sentAt = Date.now();
    const receipt = await alice.send('bob', `hello over ${transport} 你好`, { qos: true, typeu: 7 });
    expect(receipt.acked).toBe(true);
    expect(delivered).toEqual([receipt.fp]);
    await expect
      .poll(() => bobInbox.map((m) => [m.from, m.content, m.typeu, m.fp]))
      .toEqual([['alice', `hello over ${transport} 你好`, 7, receipt.fp]]);
    // Bob's device ACKed it: alice hears so once (in the ACK itself when bob ACKed while it was held).
    await expect.poll(() => received.map((e) => [e.fp, e.to])).toEqual([[receipt.fp, 'bob']]);
    expect(received[0].at).toBeGreaterThanOrEqual(sentAt);
    expect(received[0].at).toBeLessThanOrEqual(Date.now());
    await new Promise((r) => setTimeout(r, 100));
    expect(received).toHaveLength(1);
  });

  it('hears each receipt once, after its delivered, when the receiver ACKs while the message is held (where granted, in the ACK itself)', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'im-e2e-hold-'));
    dirs.push(dataDir);
    const server = await serve({}, { dataDir, storeHoldMs: 1000 });
    const alice = client(server);
    const bob = client(server);
    const seen: string[] = [];
    alice.on('delivered', ({ fp }) => void seen.push(`delivered ${fp}`));
    alice.on('received', ({ fp, to }) => void seen.push(`received ${fp} by ${to}`));
    // Short tokens: over UDP the login answer is larger than the login, so it goes out shrunk.
    await alice.login({ userId: 'alice', token: 't' });
    await bob.login({ userId: 'bob', token: 't' });
    // Over UDP both prove their addresses first (two keep-alives, 300 ms apart), so bob ACKs within the hold.
    if (transport === 'udp') await new Promise((r) => setTimeout(r, 700));
    const fps: string[] = [];
    for (let i = 0; i < 3; i++) fps.push((await alice.send('bob', `held ${i}`)).fp as string);
    await expect.poll(() => seen.length).toBe(6);
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toEqual(fps.flatMap((fp) => [`delivered ${fp}`, `received ${fp} by bob`]));
    // Bob ACKed each while it was held: none was written.
    expect(await server.prometheusMetrics()).toMatch(/^mobileimsdk_store_writes_spared_total 3$/m);
  });

  it('kicks the first client when the same user logs in again', async () => {
    const server = await serve();
    const first = client(server);
    const kicked: number[] = [];
    first.on('kicked', ({ code }) => void kicked.push(code));
    await first.login({ userId: 'dup' });
    // Over UDP the server sends a peer no more bytes than it received until the peer has proven its
    // address (its second keep-alive, 300 ms apart here): only then does the kickout fit.
    if (transport === 'udp') await new Promise((r) => setTimeout(r, 700));
    const second = client(server);
    await second.login({ userId: 'dup' });
    await expect.poll(() => kicked).toEqual([1]);
    expect(server.onlineUsers()).toEqual(['dup']);
    expect((await second.send('0', 'still here')).acked).toBe(true);
  });

  it('logs in again by itself after the server restarts, and delivers again', async () => {
    const server = await serve();
    const ports = { ...server.ports };
    const alice = client(server);
    const bob = client(server);
    const bobInbox = inbox(bob);
    await alice.login({ userId: 'alice' });
    await bob.login({ userId: 'bob' });
    const states: string[] = [];
    alice.on('state', ({ to }) => void states.push(to));

    servers.splice(servers.indexOf(server), 1);
    await server.close();
    await expect.poll(() => states, { timeout: 10000 }).toContain('reconnecting');
    const restarted = await serve({ ws: ports.ws, tcp: ports.tcp, udp: ports.udp });
    await expect.poll(() => restarted.onlineUsers().sort(), { timeout: 10000 }).toEqual(['alice', 'bob']);
    // The server counts a user online once it has written the login's answer, which the client may not have read yet.
    await expect.poll(() => states[states.length - 1]).toBe('online');

    const receipt = await alice.send('bob', 'after the restart');
    expect(receipt.acked).toBe(true);
    await expect.poll(() => bobInbox.map((m) => m.content)).toEqual(['after the restart']);
  });
});
