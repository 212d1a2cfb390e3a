/** The UDP adapter over real sockets on 127.0.0.1: one datagram per frame, at most 1024 bytes. */
import dgram from 'node:dgram';
import { describe, expect, it, vi } from 'vitest';
import { recorder, tick } from './conformance';
import { startUdpPeer, usePeerConnection } from './peers';
import { createUdpAdapter, UDP_MAX_FRAME_BYTES } from '../../adapters/udp';

describe('udp adapter', () => {
  const open = usePeerConnection(startUdpPeer, (p) => createUdpAdapter(p.dgram));

  it('sends each frame as its own datagram', async () => {
    const { far, conn } = await open();
    conn.send('{"type":1}');
    conn.send('{"type":2}');
    await vi.waitFor(() => expect(far.received()).toHaveLength(2));
    expect(far.received().map((f) => Buffer.from(f).toString())).toEqual(['{"type":1}', '{"type":2}']);
  });

  it('closes its socket on a local close and reports the close once', async () => {
    const { rec, far, conn } = await open();
    let socketClosed = false;
    far.client.on('close', () => (socketClosed = true));
    conn.close(1000, 'logout');
    await vi.waitFor(() => expect(socketClosed).toBe(true));
    await tick();
    expect(rec.closes().map((c) => c.info)).toEqual([{ code: 1000, reason: 'logout' }]);
  });

  it("declares MobileIMSDK's 1024-byte datagram limit (the conformance suite checks it is enforced)", () => {
    expect(UDP_MAX_FRAME_BYTES).toBe(1024);
    expect(createUdpAdapter(dgram).maxFrameBytes).toBe(1024);
  });

  it('rejects a URL that is not udp://host:port and a missing dgram module', () => {
    const adapter = createUdpAdapter(dgram);
    const rec = recorder();
    expect(() => adapter.connect('tcp://127.0.0.1:7901', rec.handlers)).toThrow(TypeError);
    expect(() => adapter.connect('udp://:7901', rec.handlers)).toThrow(TypeError);
    expect(() => createUdpAdapter(undefined as never)).toThrow(TypeError);
  });
});
