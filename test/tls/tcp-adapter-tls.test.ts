/**
 * The TCP adapter over TLS (`createTcpAdapter(tls)`, `tls://` URLs): the adapter conformance suite against a
 * real TLS peer with MobileIMSDK's framing, what reaches `tls.connect`, and the misuse it refuses.
 */
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTcpAdapter, type NetConnectOptions } from '../../adapters/tcp';
import { encodeLengthPrefixed, LengthPrefixDecoder } from '../../src/length-prefix';
import { recorder, runAdapterConformance, type Peer } from '../adapters/conformance';
import { closedTcpPort } from '../adapters/peers';
import { TestPki, type ServerCert } from './pki';

let pki: TestPki;
let cert: ServerCert;
beforeAll(() => {
  pki = new TestPki();
  cert = pki.issue('adapter');
});
afterAll(() => pki?.dispose());

/** A TLS server with MobileIMSDK's length-prefixed framing that records what it receives. */
async function startTlsPeer() {
  const server = tls.createServer({ cert: cert.pem, key: cert.key });
  const conns: Array<{ socket: tls.TLSSocket; frames: Uint8Array[] }> = [];
  // The TCP sockets under the TLS sessions: a reset has to go to the TCP socket itself.
  const raw: net.Socket[] = [];
  server.on('connection', (socket: net.Socket) => void raw.push(socket));
  server.on('secureConnection', (socket) => {
    const entry = { socket, frames: [] as Uint8Array[] };
    const decoder = new LengthPrefixDecoder(1 << 20);
    socket.on('data', (chunk: Buffer) => entry.frames.push(...decoder.push(new Uint8Array(chunk))));
    socket.on('error', () => {});
    conns.push(entry);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `tls://127.0.0.1:${port}`,
    async accept(): Promise<Peer> {
      const n = conns.length + 1;
      await vi.waitFor(() => expect(conns.length).toBeGreaterThanOrEqual(n));
      const entry = conns[n - 1];
      return {
        received: () => entry.frames,
        send: (data) => void entry.socket.write(encodeLengthPrefixed(typeof data === 'string' ? new Uint8Array(Buffer.from(data)) : data)),
        close: () => void entry.socket.end(),
        // A reset of the TCP connection under the TLS session: the client sees an error, then the close.
        fail: () => void raw.find((r) => r.remotePort === entry.socket.remotePort)!.resetAndDestroy(),
      };
    },
    async close() {
      for (const c of conns) c.socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

runAdapterConformance('tls tcp', { peerClose: true, refusal: true, lifecycle: false, frameLimit: true }, async () => {
  const peer = await startTlsPeer();
  const refusedPort = await closedTcpPort();
  const adapter = createTcpAdapter(tls, { ca: pki.caPem });
  return {
    adapter,
    url: peer.url,
    accept: () => peer.accept(),
    connectRefused: (handlers) => adapter.connect(`tls://127.0.0.1:${refusedPort}`, handlers),
    connectFailingSynchronously: (handlers) =>
      createTcpAdapter({
        connect: () => {
          throw new Error('tls.connect failed');
        },
      }).connect(peer.url, handlers),
    dispose: () => peer.close(),
  };
});

describe('tcp adapter over TLS', () => {
  it('passes host, port and the TLS options to tls.connect, and opens only once the handshake is done', async () => {
    const calls: NetConnectOptions[] = [];
    const listeners = new Map<string, (...args: never[]) => void>();
    const fakeTlsSocket = {
      encrypted: true,
      on: (event: string, listener: (...args: never[]) => void) => void listeners.set(event, listener),
      write: () => true,
      end: () => undefined,
      destroy: () => undefined,
      setNoDelay: () => undefined,
      setTimeout: () => undefined,
    };
    const rec = recorder();
    createTcpAdapter(
      { connect: (o) => (calls.push(o), fakeTlsSocket) },
      { ca: 'PEM', servername: 'im.example.com', rejectUnauthorized: true },
    ).connect('tls://[::1]:8901', rec.handlers);
    expect(calls).toEqual([{ host: '::1', port: 8901, ca: 'PEM', servername: 'im.example.com', rejectUnauthorized: true }]);
    listeners.get('connect')?.();
    await new Promise((r) => setTimeout(r, 10));
    expect(rec.types()).toEqual([]);
    listeners.get('secureConnect')!();
    await vi.waitFor(() => expect(rec.types()).toEqual(['open']));
  });

  it('refuses a tls:// URL with the net module (it would talk plain text) and a tcp:// URL with tls', () => {
    const rec = recorder();
    expect(() => createTcpAdapter(net).connect('tls://127.0.0.1:8901', rec.handlers)).toThrow("a tls:// URL needs createTcpAdapter(tls) with Node's `tls` module");
    expect(() => createTcpAdapter(tls).connect('tcp://127.0.0.1:8901', rec.handlers)).toThrow('a tcp:// URL needs createTcpAdapter(net)');
    expect(() => createTcpAdapter(tls).connect('tls://127.0.0.1', rec.handlers)).toThrow('expected a URL like tls://127.0.0.1:8901');
    expect(() => createTcpAdapter(tls, { rejectUnauthorized: 'no' as never })).toThrow(TypeError);
    expect(() => createTcpAdapter(tls, null as never)).toThrow(TypeError);
    expect(rec.events).toEqual([]);
  });
});
