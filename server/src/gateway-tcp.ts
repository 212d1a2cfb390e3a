import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { encodeLengthPrefixed, FrameTooLargeError, LengthPrefixDecoder } from '../../src/length-prefix';
import { NO_SLOT, plainAddress, refusalLogger, type AddressSlot } from './address-cap';
import type { ServerCore } from './core';
import { ServerErrorCode } from './errors';
import type { Gateway } from './gateway';
import { closeHttp, listen } from './gateway';
import { guardTlsListener, loadTlsMaterial } from './tls';

/** How long a closing TCP connection may take to flush before it is destroyed. */
const CLOSE_GRACE_MS = 2000;

/**
 * TCP gateway: 4-byte big-endian length prefix, bodies up to `maxBodyBytes`. With `core.opts.tls` the
 * same framing runs inside TLS, and the certificate is reloaded without dropping connections.
 */
export async function startTcpGateway(core: ServerCore, opts: { port: number; host?: string; maxBodyBytes: number }): Promise<Gateway> {
  const sockets = new Set<Socket>();
  const cap = core.unauthenticated;
  const refused = refusalLogger((m) => core.opts.logger.warn(m), 'tcp gateway', cap.max);
  // A connection from a trusted proxy (ws.trustedProxies, e.g. nginx's stream module) is not counted: TCP
  // carries no client address, so all the proxy's clients would share one count.
  const trusted = new Set((core.opts.ws ? (core.opts.ws.trustedProxies ?? []) : []).map(plainAddress));
  // With TLS, counted once the TLS handshake is done (before it, tls.handshakeTimeoutMs bounds it).
  const onSocket = (socket: Socket): void => {
    const ip = plainAddress(socket.remoteAddress ?? '?');
    const slot = trusted.has(ip) ? NO_SLOT : cap.acquire(ip);
    if (!slot) {
      refused(ip);
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.on('close', () => {
      sockets.delete(socket);
      slot.release();
    });
    attach(core, socket, opts.maxBodyBytes, slot);
  };
  const tls = core.opts.tls;
  let guard: { close(): void } | null = null;
  let server: NetServer;
  if (tls) {
    const material = loadTlsMaterial(tls);
    const secure = createTlsServer({ ...material.context, handshakeTimeout: tls.handshakeTimeoutMs }, onSocket);
    guard = guardTlsListener(secure, tls, material, core.opts.logger, 'tls tcp gateway');
    server = secure;
  } else {
    server = createNetServer(onSocket);
  }
  let port: number;
  try {
    port = await listen(server, opts.port, opts.host, core.opts.logger);
  } catch (err) {
    guard?.close();
    throw err;
  }
  return {
    port,
    stopAccepting: () => server.close(),
    close: async () => {
      guard?.close();
      for (const s of sockets) s.destroy();
      await closeHttp(server);
    },
  };
}

function attach(core: ServerCore, socket: Socket, maxBodyBytes: number, slot: AddressSlot): void {
  socket.setNoDelay(true);
  socket.setKeepAlive(true);
  const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
  const decoder = new LengthPrefixDecoder(maxBodyBytes);
  const session = core.open({
    transport: 'tcp',
    remote,
    write(text) {
      if (socket.destroyed || !socket.writable) return false;
      if (socket.writableLength > core.opts.maxBufferedBytes) {
        core.opts.logger.warn(`tcp ${remote}: slow consumer (${socket.writableLength} bytes queued), dropping`);
        socket.destroy();
        return false;
      }
      socket.write(encodeLengthPrefixed(Buffer.from(text, 'utf8')));
      return true;
    },
    close() {
      socket.end();
      setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
    },
    loggedIn: () => slot.release(),
  });
  socket.on('data', (chunk: Buffer) => {
    if (session.closed) return;
    let bodies: Uint8Array[];
    try {
      bodies = decoder.push(chunk);
    } catch (err) {
      const tooLarge = err instanceof FrameTooLargeError;
      core.io.rejectInput(session, tooLarge ? ServerErrorCode.FRAME_TOO_LARGE : ServerErrorCode.BAD_FRAME, (err as Error).message);
      return;
    }
    for (const body of bodies) {
      if (session.closed) return;
      core.receiveBytes(session, body);
    }
  });
  socket.on('error', (err) => core.opts.logger.debug(`tcp ${remote}: ${err.message}`));
  socket.on('close', () => core.closed(session));
}
