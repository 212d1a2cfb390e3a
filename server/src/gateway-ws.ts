import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket } from 'ws';
import type { ServerCore } from './core';
import { ServerErrorCode } from './errors';
import type { Gateway } from './gateway';
import { listen, closeHttp } from './gateway';

/** WebSocket close code for a message over the size limit (RFC 6455 "Message Too Big"). */
const CLOSE_TOO_BIG = 1009;

/**
 * ws closes a connection whose frame is over `maxPayload` with 1009 by itself, before any event reaches
 * us. This subclass (ws's `WebSocket` option) hears that close first, while the socket is still open,
 * so the client gets error 311 naming the limit before the Close frame.
 */
class LimitedWebSocket extends WebSocket {
  onTooBig: (() => void) | null = null;

  override close(code?: number, data?: string | Buffer): void {
    if (code === CLOSE_TOO_BIG && this.readyState === WebSocket.OPEN && this.onTooBig) {
      const notify = this.onTooBig;
      this.onTooBig = null;
      notify();
    }
    super.close(code, data);
  }
}

/**
 * WebSocket gateway: one text frame = one frame, only at the exact path. Unlike Netty, a
 * request for another path gets a 404 at once instead of hanging, and permessage-deflate is off.
 * A connection that has not completed its upgrade `handshakeTimeoutMs` after it opened is destroyed.
 */
export async function startWsGateway(
  core: ServerCore,
  opts: { port: number; host?: string; path: string; maxPayloadBytes: number; handshakeTimeoutMs: number },
): Promise<Gateway> {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: opts.maxPayloadBytes,
    perMessageDeflate: false,
    clientTracking: true,
    WebSocket: LimitedWebSocket,
  });
  const http: HttpServer = createHttpServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' }).end(`WebSocket endpoint: ${opts.path}\n`);
  });
  // Netty gives the handshake 10 s. Node's own headersTimeout/requestTimeout are only checked every
  // connectionsCheckingInterval (30 s), which let a silent connection live 28 s and more: each
  // connection gets its own deadline instead, cleared once the upgrade is done.
  const deadlines = new Map<Duplex, ReturnType<typeof setTimeout>>();
  const settle = (socket: Duplex): void => {
    clearTimeout(deadlines.get(socket));
    deadlines.delete(socket);
  };
  http.on('connection', (socket: Socket) => {
    deadlines.set(
      socket,
      setTimeout(() => {
        deadlines.delete(socket);
        core.opts.logger.debug(`ws ${socket.remoteAddress ?? '?'}: no WebSocket handshake within ${opts.handshakeTimeoutMs} ms, dropped`);
        socket.destroy();
      }, opts.handshakeTimeoutMs),
    );
    socket.once('close', () => settle(socket));
  });
  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (req.url !== opts.path) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      settle(socket);
      attach(core, ws as LimitedWebSocket, req, opts.maxPayloadBytes);
    });
  });
  http.on('clientError', (_err, socket) => socket.destroy());
  http.headersTimeout = opts.handshakeTimeoutMs;
  http.requestTimeout = opts.handshakeTimeoutMs;
  const port = await listen(http, opts.port, opts.host, core.opts.logger);
  return {
    port,
    close: async () => {
      for (const t of deadlines.values()) clearTimeout(t);
      deadlines.clear();
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      await closeHttp(http);
    },
  };
}

function attach(core: ServerCore, ws: LimitedWebSocket, req: IncomingMessage, maxPayloadBytes: number): void {
  const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? 0}`;
  const limit = core.opts.maxBufferedBytes;
  const session = core.open({
    transport: 'ws',
    remote,
    write(text) {
      if (ws.readyState !== WebSocket.OPEN) return false;
      if (ws.bufferedAmount > limit) {
        core.opts.logger.warn(`ws ${remote}: slow consumer (${ws.bufferedAmount} bytes queued), dropping`);
        ws.terminate();
        return false;
      }
      ws.send(text);
      return true;
    },
    close() {
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000, 'Bye');
    },
  });
  ws.onTooBig = () => {
    core.metrics.badInput++;
    core.opts.logger.debug(`ws ${remote}: a frame over the ${maxPayloadBytes}-byte limit, closing with 1009`);
    core.sendError(session, ServerErrorCode.FRAME_TOO_LARGE, `a frame over the ${maxPayloadBytes}-byte limit; closing`, { limit: maxPayloadBytes });
    // The user goes offline now, not when the client answers the Close frame (ws waits up to 30 s).
    core.closed(session);
  };
  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      core.rejectInput(session, ServerErrorCode.BINARY_FRAME, 'binary frames are not supported: send each frame as text');
      return;
    }
    core.receive(session, Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data as Buffer[]).toString('utf8'));
  });
  ws.on('error', (err) => {
    core.metrics.badInput++;
    core.opts.logger.debug(`ws ${remote}: ${err.message}`);
  });
  ws.on('close', () => core.closed(session));
}
