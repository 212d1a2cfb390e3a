/**
 * Node UDP adapter with MobileIMSDK's framing: one datagram per frame, at most 1024 bytes. UDP has no
 * handshake: the socket counts as open once connected to the server's address, and as closed when closed
 * locally or on a socket error. Node's `dgram` module is passed in: this file imports nothing from Node.
 */
import type { SocketAdapter, SocketConnection, SocketHandlers } from '../src/transport';
import { createHandlerGate, writeBounded } from './internal/gate';
import { copyBytes, toBytes } from './internal/bytes';
import { describeSocketError, parseHostPort } from './internal/host-port';

/** The largest datagram MobileIMSDK's UDP server accepts. */
export const UDP_MAX_FRAME_BYTES = 1024;

/** The part of a Node `dgram.Socket` this adapter uses. */
export interface DgramSocketLike {
  on(event: 'connect', listener: () => void): unknown;
  on(event: 'message', listener: (message: Uint8Array) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  connect(port: number, address: string): void;
  send(message: Uint8Array, callback?: (error: Error | null) => void): void;
  close(): unknown;
}

/** The part of Node's `dgram` module this adapter uses. */
export interface DgramModuleLike {
  createSocket(type: 'udp4' | 'udp6'): DgramSocketLike;
}

/**
 * Creates the UDP adapter; URLs look like `udp://127.0.0.1:7901`.
 *
 * @example
 * import dgram from 'node:dgram';
 * const client = new IMClient({ url: 'udp://127.0.0.1:7901', adapter: createUdpAdapter(dgram) });
 */
export function createUdpAdapter(dgram: DgramModuleLike): SocketAdapter {
  if (!dgram || typeof dgram.createSocket !== 'function') {
    throw new TypeError("createUdpAdapter(dgram): pass Node's `dgram` module (import dgram from 'node:dgram')");
  }
  const connect = (url: string, handlers: SocketHandlers): SocketConnection => {
    const { host, port, ipv6 } = parseHostPort(url, 'udp');
    const gate = createHandlerGate(handlers);
    let socket: DgramSocketLike | null = null;
    let socketClosed = false;

    const closeSocket = (): void => {
      if (!socket || socketClosed) return;
      socketClosed = true;
      try {
        socket.close();
      } catch {
        /* already closed */
      }
    };

    try {
      const s = dgram.createSocket(ipv6 || host.includes(':') ? 'udp6' : 'udp4');
      socket = s;
      s.on('connect', () => gate.open());
      s.on('message', (message) => gate.message(copyBytes(message)));
      s.on('error', (error) => {
        gate.error(error);
        gate.close({ code: 1006, reason: describeSocketError(error) });
        closeSocket();
      });
      s.on('close', () => {
        socketClosed = true;
        gate.close({ code: 1000, reason: 'socket closed' });
      });
      s.connect(port, host);
    } catch (thrown) {
      gate.error(thrown);
      gate.close({ code: 1006, reason: 'connect threw' });
      closeSocket();
    }
    gate.release();

    return {
      send(data) {
        const s = socket;
        if (gate.ended || !s) return;
        /* A datagram is never split or truncated: a frame over the limit is refused as a whole. */
        writeBounded(gate, 'udp', UDP_MAX_FRAME_BYTES, toBytes(data), (frame, done) => s.send(frame, done));
      },
      close(code = 1000, reason = '') {
        if (gate.ended) return;
        gate.closeDeferred({ code, reason });
        closeSocket();
      },
    };
  };
  return { name: 'udp', maxFrameBytes: UDP_MAX_FRAME_BYTES, connect };
}
