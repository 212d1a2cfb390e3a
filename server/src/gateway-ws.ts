import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket } from 'ws';
import type { ServerCore } from './core';
import { ServerErrorCode } from './errors';
import type { Gateway } from './gateway';
import { listen, closeHttp } from './gateway';

/** How long a client may take to send its upgrade request. */
const HANDSHAKE_TIMEOUT_MS = 10000;

/**
 * WebSocket gateway: one text frame = one frame, only at the exact path. Unlike Netty, a
 * request for another path gets a 404 at once instead of hanging, and permessage-deflate is off.
 */
export async function startWsGateway(
  core: ServerCore,
  opts: { port: number; host?: string; path: string; maxPayloadBytes: number },
): Promise<Gateway> {
  const wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayloadBytes, perMessageDeflate: false, clientTracking: true });
  const http: HttpServer = createHttpServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' }).end(`WebSocket endpoint: ${opts.path}\n`);
  });
  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (req.url !== opts.path) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => attach(core, ws, req));
  });
  http.on('clientError', (_err, socket) => socket.destroy());
  // Netty gives the handshake 10 s; Node's own defaults (60 s headers, 300 s request) invite slow-loris.
  http.headersTimeout = HANDSHAKE_TIMEOUT_MS;
  http.requestTimeout = HANDSHAKE_TIMEOUT_MS;
  const port = await listen(http, opts.port, opts.host, core.opts.logger);
  return {
    port,
    stopAccepting: () => http.close(),
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      await closeHttp(http);
    },
  };
}

function attach(core: ServerCore, ws: WebSocket, req: IncomingMessage): void {
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
    close(code) {
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(code ?? 1000, code === 1001 ? 'Going Away' : 'Bye');
    },
  });
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
