/** The TCP adapter over real sockets on 127.0.0.1: MobileIMSDK framing, split and coalesced frames, limits. */
import net from 'node:net';
import { once } from 'node:events';
import { describe, expect, it, vi } from 'vitest';
import { recorder, tick } from './conformance';
import { closedTcpPort, startTcpPeer, usePeerConnection } from './peers';
import { IMClient } from '../../src/client';
import { createTcpAdapter } from '../../adapters/tcp';

function frame(body: Uint8Array | string, announced?: number): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(announced ?? b.length);
  return Buffer.concat([head, b]);
}

describe('tcp adapter', () => {
  const open = usePeerConnection(startTcpPeer, () => createTcpAdapter(net));

  it('prefixes each frame with its 4-byte big-endian length', async () => {
    const { far, conn } = await open();
    conn.send('{"type":1}');
    await vi.waitFor(() => expect(Buffer.concat(far.raw)).toEqual(frame('{"type":1}')));
  });

  it('reassembles frames split across chunks and separates frames coalesced in one chunk', async () => {
    const { rec, far } = await open();
    const all = Buffer.concat([frame('{"a":1}'), frame('{"b":2}'), frame('{"c":"三"}')]);
    far.socket.write(all.subarray(0, 2));
    await tick(15);
    far.socket.write(all.subarray(2, 9));
    await tick(15);
    far.socket.write(all.subarray(9));
    await vi.waitFor(() => expect(rec.messages()).toHaveLength(3));
    expect(rec.messages().map((m) => Buffer.from(m).toString())).toEqual(['{"a":1}', '{"b":2}', '{"c":"三"}']);
    expect(rec.events.every((e) => e.type !== 'message' || e.data instanceof Uint8Array)).toBe(true);
  });

  it('accepts an incoming 6144-byte frame and drops the connection on a 6145-byte announcement', async () => {
    const { rec, far } = await open();
    far.socket.write(frame('z'.repeat(6144)));
    await vi.waitFor(() => expect(rec.messages()).toHaveLength(1));
    far.socket.write(frame('', 6145));
    await vi.waitFor(() => expect(rec.closes()).toHaveLength(1));
    expect(rec.closes()[0].info.code).toBe(1009);
    expect(rec.types()).toEqual(['open', 'message', 'error', 'close']);
    await vi.waitFor(() => expect(far.socket.destroyed || far.socket.readableEnded).toBe(true));
  });

  it('flushes frames sent just before a local close', async () => {
    const { rec, far, conn } = await open();
    conn.send('{"type":3}');
    conn.close(1000, 'logout');
    await vi.waitFor(() => expect(far.received()).toHaveLength(1));
    await vi.waitFor(() => expect(far.socket.readableEnded).toBe(true));
    expect(rec.closes().map((c) => c.info)).toEqual([{ code: 1000, reason: 'logout' }]);
  });

  it("declares MobileIMSDK's 6144-byte body limit (the conformance suite checks it is enforced)", () => {
    expect(createTcpAdapter(net).maxFrameBytes).toBe(6144);
  });

  it('rejects a URL that is not tcp://host:port and a missing net module', () => {
    const adapter = createTcpAdapter(net);
    const rec = recorder();
    expect(() => adapter.connect('ws://127.0.0.1:8901', rec.handlers)).toThrow(TypeError);
    expect(() => adapter.connect('tcp://127.0.0.1', rec.handlers)).toThrow(TypeError);
    expect(() => adapter.connect('tcp://127.0.0.1:70000', rec.handlers)).toThrow(TypeError);
    expect(() => createTcpAdapter(undefined as never)).toThrow(TypeError);
  });
});

describe('tcp adapter against a peer that never closes its side', () => {
  it('flushes, then destroys its socket after a local close instead of leaving it half-open', async () => {
    const server = net.createServer({ allowHalfOpen: true });
    const far: net.Socket[] = [];
    const received: Buffer[] = [];
    let ended = false;
    server.on('connection', (s) => {
      far.push(s);
      s.on('data', (chunk) => received.push(chunk));
      s.on('end', () => (ended = true));
      s.on('error', () => {});
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const mine: net.Socket[] = [];
    const spied = {
      connect: (options: { host: string; port: number }) => {
        const s = net.connect(options);
        mine.push(s);
        return s;
      },
    };
    const rec = recorder();
    const conn = createTcpAdapter(spied).connect(`tcp://127.0.0.1:${(server.address() as net.AddressInfo).port}`, rec.handlers);
    try {
      await vi.waitFor(() => expect(rec.types()).toEqual(['open']));
      conn.send('{"type":3}');
      conn.close(1000, 'logout');
      await vi.waitFor(() => expect(ended).toBe(true));
      expect(Buffer.concat(received)).toEqual(Buffer.concat([Buffer.from([0, 0, 0, 10]), Buffer.from('{"type":3}')]));
      await vi.waitFor(() => expect(mine[0].destroyed).toBe(true), { timeout: 500 });
      expect(rec.closes().map((c) => c.info)).toEqual([{ code: 1000, reason: 'logout' }]);
    } finally {
      for (const s of [...far, ...mine]) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('tcp adapter close over a stalled socket', () => {
  it('destroys the socket when the flush never finishes (a peer that stopped reading)', async () => {
    const listeners = new Map<string, (...args: never[]) => void>();
    const calls: string[] = [];
    let onIdle: (() => void) | undefined;
    const socket = {
      on: (event: string, listener: (...args: never[]) => void) => void listeners.set(event, listener),
      write: () => true,
      end: () => void calls.push('end'),
      destroy: () => void calls.push('destroy'),
      setNoDelay: () => undefined,
      setTimeout: (_ms: number, callback?: () => void) => void (onIdle = callback),
    };
    const rec = recorder();
    const conn = createTcpAdapter({ connect: () => socket }).connect('tcp://127.0.0.1:8901', rec.handlers);
    listeners.get('connect')!();
    await vi.waitFor(() => expect(rec.types()).toEqual(['open']));
    conn.close(1000, 'logout');
    expect(calls).toEqual(['end']);
    onIdle!();
    expect(calls).toEqual(['end', 'destroy']);
  });
});

describe('tcp adapter: a refused connection in words', () => {
  it('closes with the reason "connection refused (ECONNREFUSED)", which a first login reports', async () => {
    const port = await closedTcpPort();
    const rec = recorder();
    createTcpAdapter(net).connect(`tcp://127.0.0.1:${port}`, rec.handlers);
    await vi.waitFor(() => expect(rec.closes()).toHaveLength(1));
    expect(rec.closes()[0].info).toEqual({ code: 1006, reason: 'connection refused (ECONNREFUSED)' });
    const client = new IMClient({ url: `tcp://127.0.0.1:${port}`, adapter: createTcpAdapter(net) });
    await expect(client.login({ userId: 'u1' })).rejects.toMatchObject({
      code: 'CONNECT_FAILED',
      reason: 'socket-closed',
      message: `could not reach tcp://127.0.0.1:${port}: connection refused (ECONNREFUSED)`,
    });
    client.destroy();
  });
});
