import { createServer as createHttpServer, type IncomingMessage, type RequestListener, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket } from 'ws';
import { NO_SLOT, plainAddress, refusalLogger, type AddressSlot } from './address-cap';
import type { ServerCore } from './core';
import { ServerErrorCode } from './errors';
import type { Gateway } from './gateway';
import { listen, closeHttp } from './gateway';
import { guardTlsListener, loadTlsMaterial } from './tls';

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
 * With `core.opts.tls` it serves wss:// and reloads its certificate without dropping connections.
 * A connection that has not completed its upgrade `handshakeTimeoutMs` after it opened (after its TLS
 * handshake, with TLS) is destroyed.
 */
export async function startWsGateway(
  core: ServerCore,
  opts: { port: number; host?: string; path: string; maxPayloadBytes: number; handshakeTimeoutMs: number; trustedProxies?: readonly string[] },
): Promise<Gateway> {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: opts.maxPayloadBytes,
    perMessageDeflate: false,
    clientTracking: true,
    WebSocket: LimitedWebSocket,
  });
  const onRequest: RequestListener = (_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' }).end(`WebSocket endpoint: ${opts.path}\n`);
  };
  const tls = core.opts.tls;
  let guard: { close(): void } | null = null;
  let http: HttpServer;
  if (tls) {
    const material = loadTlsMaterial(tls);
    // Node waits 120 s for a TLS handshake by default: bounded like the upgrade request (10 s).
    const https = createHttpsServer({ ...material.context, handshakeTimeout: tls.handshakeTimeoutMs }, onRequest);
    guard = guardTlsListener(https, tls, material, core.opts.logger, 'wss gateway');
    http = https;
  } else {
    http = createHttpServer(onRequest);
  }
  // Netty gives the handshake 10 s. Node's own headersTimeout/requestTimeout are only checked every
  // connectionsCheckingInterval (30 s), which let a silent connection live 28 s and more: each
  // connection gets its own deadline instead, cleared once the upgrade is done. With TLS it starts once the
  // TLS handshake is done (bounded by tls.handshakeTimeoutMs), on the socket the upgrade then arrives on.
  const deadlines = new Map<Duplex, ReturnType<typeof setTimeout>>();
  const settle = (socket: Duplex): void => {
    clearTimeout(deadlines.get(socket));
    deadlines.delete(socket);
  };
  http.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => {
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
  const trusted = new Set((opts.trustedProxies ?? []).map(plainAddress));
  const cap = core.unauthenticated;
  const refused = refusalLogger((m) => core.opts.logger.warn(m), 'ws gateway', cap.max);
  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (req.url !== opts.path) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const peer = remoteOf(req, trusted);
    // Counted from the upgrade request on (before it, handshakeTimeoutMs bounds the connection), until login
    // or close. A trusted proxy that names no client is not counted: all its clients would share one count.
    const slot = peer.ip === null ? NO_SLOT : cap.acquire(peer.ip);
    if (!slot) {
      refused(peer.ip ?? peer.text);
      socket.once('finish', () => socket.destroy());
      socket.end('HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    socket.once('close', () => slot.release());
    wss.handleUpgrade(req, socket, head, (ws) => {
      settle(socket);
      attach(core, ws as LimitedWebSocket, socket, peer.text, opts.maxPayloadBytes, slot);
    });
  });
  http.on('clientError', (_err, socket) => socket.destroy());
  http.headersTimeout = opts.handshakeTimeoutMs;
  http.requestTimeout = opts.handshakeTimeoutMs;
  let port: number;
  try {
    port = await listen(http, opts.port, opts.host, core.opts.logger);
  } catch (err) {
    guard?.close();
    throw err;
  }
  return {
    port,
    stopAccepting: () => http.close(),
    close: async () => {
      guard?.close();
      for (const t of deadlines.values()) clearTimeout(t);
      deadlines.clear();
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      await closeHttp(http);
    },
  };
}

/**
 * The peer: `ip` as the per-address cap counts it, `text` as logs name it. Only when the direct peer is one
 * of `trustedProxies` (opt-in) is the client address taken from the proxy's headers: the rightmost
 * X-Forwarded-For entry that is not itself a trusted proxy (what nginx's `$proxy_add_x_forwarded_for`
 * appended), else X-Real-IP. Anyone else could forge them. `ip` is null for a trusted proxy that names no client.
 */
function remoteOf(req: IncomingMessage, trusted: ReadonlySet<string>): { ip: string | null; text: string } {
  const directIp = plainAddress(req.socket.remoteAddress ?? '?');
  const direct = { ip: directIp, text: `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? 0}` };
  if (trusted.size === 0 || !trusted.has(directIp)) return direct;
  const forwarded = String(req.headers['x-forwarded-for'] ?? '')
    .split(',')
    .map((a) => plainAddress(a.trim()))
    .filter((a) => a !== '');
  let client = forwarded.reverse().find((a) => !trusted.has(a));
  const realIp = req.headers['x-real-ip'];
  if (!client && typeof realIp === 'string' && realIp.trim() !== '') client = plainAddress(realIp.trim());
  if (!client) return { ip: null, text: direct.text };
  const ip = client.slice(0, 64);
  return { ip, text: `${ip} via ${direct.text}` };
}

/** Sockets corked since the current turn of the event loop began; uncorked together when it ends. */
const corked = new Set<Duplex>();

function uncorkAll(): void {
  for (const socket of corked) socket.uncork();
  corked.clear();
}

/**
 * Holds a socket's writes until the current turn's microtasks are done (a process.nextTick queued from
 * a microtask runs after the last of them). Every frame one turn writes to a socket (a store commit
 * settling many messages to one receiver, a read of many frames answered at once) then leaves in one
 * writev instead of one system call per frame; no frame waits for a later turn.
 */
function corkUntilTurnEnds(socket: Duplex): void {
  if (corked.has(socket)) return;
  if (corked.size === 0) process.nextTick(uncorkAll);
  corked.add(socket);
  socket.cork();
}

function attach(core: ServerCore, ws: LimitedWebSocket, socket: Duplex, remote: string, maxPayloadBytes: number, slot: AddressSlot): void {
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
      corkUntilTurnEnds(socket);
      ws.send(text);
      return true;
    },
    close(code) {
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(code ?? 1000, code === 1001 ? 'Going Away' : 'Bye');
    },
    loggedIn: () => slot.release(),
  });
  ws.onTooBig = () => {
    core.metrics.badInput++;
    core.opts.logger.debug(`ws ${remote}: a frame over the ${maxPayloadBytes}-byte limit, closing with 1009`);
    core.io.sendError(session, ServerErrorCode.FRAME_TOO_LARGE, `a frame over the ${maxPayloadBytes}-byte limit; closing`, { limit: maxPayloadBytes });
    // The user goes offline now, not when the client answers the Close frame (ws waits up to 30 s).
    core.closed(session);
  };
  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      core.io.rejectInput(session, ServerErrorCode.BINARY_FRAME, 'binary frames are not supported: send each frame as text');
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
