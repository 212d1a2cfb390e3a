/** Real peers on 127.0.0.1 port 0: a length-prefix TCP server, a UDP side, and a WebSocket server for the browser adapter. */
import net from 'node:net';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { afterEach, vi, expect } from 'vitest';
import { WebSocketServer, type WebSocket as WsSocket } from 'ws';
import { encodeLengthPrefixed, LengthPrefixDecoder } from '../../src/length-prefix';
import { recorder, type Peer } from './conformance';
import type { SocketAdapter, SocketConnection } from '../../src/transport';

/** A TCP server that speaks MobileIMSDK's length-prefixed framing and records what it receives. */
export async function startTcpPeer() {
  const server = net.createServer();
  const conns: Array<{ socket: net.Socket; frames: Uint8Array[]; raw: Buffer[] }> = [];
  server.on('connection', (socket) => {
    const entry = { socket, frames: [] as Uint8Array[], raw: [] as Buffer[] };
    const decoder = new LengthPrefixDecoder(1 << 20);
    socket.on('data', (chunk) => {
      entry.raw.push(chunk);
      entry.frames.push(...decoder.push(new Uint8Array(chunk)));
    });
    socket.on('error', () => {});
    conns.push(entry);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;

  const peerOf = (entry: (typeof conns)[number]): Peer => ({
    received: () => entry.frames,
    send: (data) => {
      const body = typeof data === 'string' ? new Uint8Array(Buffer.from(data)) : data;
      entry.socket.write(encodeLengthPrefixed(body));
    },
    close: () => {
      entry.socket.end();
    },
    fail: () => {
      entry.socket.resetAndDestroy();
    },
  });

  return {
    port,
    url: `tcp://127.0.0.1:${port}`,
    conns,
    /** Waits for the next accepted connection (the n-th, counting from 1). */
    async accept(n = conns.length + 1): Promise<Peer & { socket: net.Socket; raw: Buffer[] }> {
      await vi.waitFor(() => expect(conns.length).toBeGreaterThanOrEqual(n));
      const entry = conns[n - 1];
      return Object.assign(peerOf(entry), { socket: entry.socket, raw: entry.raw });
    },
    async close() {
      for (const c of conns) c.socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port on 127.0.0.1 with nothing listening (bound, then released). */
export async function closedTcpPort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** A UDP peer on 127.0.0.1 port 0, plus a `dgram` wrapper that lets the test find the client's socket. */
export async function startUdpPeer() {
  const socket = dgram.createSocket('udp4');
  const frames: Uint8Array[] = [];
  socket.on('message', (msg) => frames.push(new Uint8Array(msg)));
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const port = socket.address().port;
  const clients: dgram.Socket[] = [];
  const wrapped = {
    createSocket: (type: 'udp4' | 'udp6') => {
      const s = dgram.createSocket(type);
      clients.push(s);
      return s;
    },
  };
  return {
    port,
    url: `udp://127.0.0.1:${port}`,
    frames,
    dgram: wrapped,
    clients,
    /** Waits until the latest client socket is connected and returns the far side. */
    async accept(): Promise<Peer & { client: dgram.Socket }> {
      await vi.waitFor(() => {
        const c = clients[clients.length - 1];
        expect(c?.remoteAddress().port).toBe(port);
      });
      const client = clients[clients.length - 1];
      const clientPort = client.address().port;
      return {
        client,
        received: () => frames,
        send: (data) =>
          new Promise<void>((resolve, reject) =>
            socket.send(typeof data === 'string' ? Buffer.from(data) : data, clientPort, '127.0.0.1', (err) =>
              err ? reject(err) : resolve(),
            ),
          ),
        fail: () => {
          client.emit('error', Object.assign(new Error('recvmsg ENETDOWN'), { code: 'ENETDOWN' }));
        },
      };
    },
    async close() {
      for (const c of clients) {
        try {
          c.close();
        } catch {
          /* already closed by the adapter */
        }
      }
      await new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
}

/**
 * For one describe block: returns `open()`, which starts a fresh peer, connects `adapter(peer)` to it and
 * waits for the open; the connection and the peer are closed after each test.
 */
export function usePeerConnection<P extends { url: string; accept(): Promise<unknown>; close(): Promise<void> }>(
  start: () => Promise<P>,
  adapter: (peer: P) => SocketAdapter,
) {
  let peer: P | undefined;
  let conn: SocketConnection | undefined;
  afterEach(async () => {
    conn?.close();
    conn = undefined;
    await peer?.close();
    peer = undefined;
  });
  return async () => {
    const p = await start();
    peer = p;
    const rec = recorder();
    const c = adapter(p).connect(p.url, rec.handlers);
    conn = c;
    const far = (await p.accept()) as Awaited<ReturnType<P['accept']>>;
    await vi.waitFor(() => expect(rec.types()).toEqual(['open']));
    return { rec, far, conn: c };
  };
}

/** A WebSocket server (the `ws` package) on 127.0.0.1 port 0 at /websocket, recording what it receives. */
export async function startWsPeer() {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/websocket' });
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const conns: Array<{ socket: WsSocket; frames: Uint8Array[] }> = [];
  server.on('connection', (socket) => {
    const entry = { socket, frames: [] as Uint8Array[] };
    socket.on('message', (data: Buffer) => entry.frames.push(new Uint8Array(data)));
    socket.on('error', () => {});
    conns.push(entry);
  });
  return {
    port,
    url: `ws://127.0.0.1:${port}/websocket`,
    /** Waits for the next accepted connection and returns its far side. */
    async accept(): Promise<Peer> {
      const n = conns.length + 1;
      await vi.waitFor(() => expect(conns.length).toBeGreaterThanOrEqual(n));
      const { socket, frames } = conns[n - 1];
      return {
        received: () => frames,
        send: (data) =>
          new Promise<void>((resolve, reject) =>
            socket.send(typeof data === 'string' ? data : Buffer.from(data), { binary: typeof data !== 'string' }, (err) =>
              err ? reject(err) : resolve(),
            ),
          ),
        close: () => socket.close(1000, 'bye'),
        // A frame no WebSocket may send (RSV1 set, no extension agreed): the client fails the connection,
        // which the platform reports as an error, then a close.
        fail: () => void (socket as unknown as { _socket: net.Socket })._socket.write(Buffer.from([0xc1, 0x00])),
      };
    },
    async close() {
      for (const c of conns) c.socket.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
