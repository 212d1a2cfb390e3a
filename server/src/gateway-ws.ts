import { createServer as createHttpServer, type IncomingMessage, type RequestListener, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { NO_SLOT, plainAddress, refusalLogger, type AddressSlot } from './address-cap';
import type { ServerCore } from './core';
import { ServerErrorCode } from './errors';
import type { Gateway } from './gateway';
import type { Link, Session } from './session';
import { listen, closeHttp } from './gateway';
import { guardTlsListener, loadTlsMaterial } from './tls';

/** WebSocket close code for a message over the size limit (RFC 6455 "Message Too Big"). */
const CLOSE_TOO_BIG = 1009;

/**
 * ws closes a connection whose frame is over `maxPayload` with 1009 by itself, before any event reaches
 * us. This subclass (ws's `WebSocket` option) hears that close first, while the socket is still open,
 * so the client gets error 311 naming the limit before the Close frame. It also carries its
 * {@link WsLink}, which the shared listeners below reach through `this`, and answers pings itself.
 */
class LimitedWebSocket extends WebSocket {
  link: WsLink | null = null;

  override close(code?: number, data?: string | Buffer): void {
    if (code === CLOSE_TOO_BIG && this.readyState === WebSocket.OPEN) this.link?.tooBig();
    super.close(code, data);
  }

  /**
   * ws's automatic pong keeps a closure and its context per connection (about 100 bytes of heap), and a
   * 'ping' listener would cost as much in each connection's listener table: with `autoPong: false` the
   * ping is answered here, as ws emits it. ws emits at most two arguments.
   */
  override emit(event: string | symbol, a?: unknown, b?: unknown): boolean {
    if (event === 'ping') this.link?.pong(a as Buffer);
    return super.emit(event, a, b);
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
    clientTracking: false,
    autoPong: false,
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
    socket.removeListener('close', settleOnClose);
  };
  // One listener function for every socket (`this` is the socket), so a connection holds no closure for it.
  function settleOnClose(this: Duplex): void {
    settle(this);
  }
  http.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    deadlines.set(
      socket,
      setTimeout(() => {
        deadlines.delete(socket);
        core.opts.logger.debug(`ws ${socket.remoteAddress ?? '?'}: no WebSocket handshake within ${opts.handshakeTimeoutMs} ms, dropped`);
        socket.destroy();
      }, opts.handshakeTimeoutMs),
    );
    socket.on('close', settleOnClose);
  });
  const trusted = new Set((opts.trustedProxies ?? []).map(plainAddress));
  /** The open connections (ws's own client tracking would hold a closure per connection). */
  const links = new Set<WsLink>();
  const shared: WsShared = { core, maxPayloadBytes: opts.maxPayloadBytes, links };
  const cap = core.unauthenticated;
  const refused = refusalLogger((m) => core.opts.logger.warn(m), 'ws gateway', cap.max);
  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', destroySocket);
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
    const releaseSlot = (): void => slot.release();
    socket.once('close', releaseSlot);
    wss.handleUpgrade(req, socket, head, (ws) => {
      settle(socket);
      // From here on ws handles the socket's errors, and the link releases the slot (at login or close).
      socket.removeListener('error', destroySocket);
      socket.removeListener('close', releaseSlot);
      links.add(new WsLink(shared, ws as LimitedWebSocket, socket, peer.text, slot));
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
      for (const link of links) link.ws.terminate();
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
  const address = req.socket.remoteAddress ?? '?';
  const port = req.socket.remotePort ?? 0;
  forgetPeerName(req.socket);
  const directIp = plainAddress(address);
  // Joined, not concatenated: one flat string instead of a cons string holding its pieces for the connection's life.
  const direct = { ip: directIp, text: [address, port].join(':') };
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
  return { ip, text: [ip, 'via', direct.text].join(' ') };
}

/**
 * Node's `net.Socket` caches the peer's address, port and family in an object on the socket once
 * `remoteAddress` is read (about 90 bytes with its strings, for the connection's life). The gateway reads
 * them once, at the upgrade, and keeps its own text: the cache is dropped (Node fetches it again if
 * anything asks later while the socket is open). Only an existing own property is reset, so a Node that
 * stores it elsewhere is left as it is.
 */
function forgetPeerName(socket: Socket): void {
  if (Object.hasOwn(socket, '_peername')) (socket as unknown as { _peername: unknown })._peername = undefined;
}

/** Sockets corked since the current turn of the event loop began; uncorked together when it ends. */
const corked: Duplex[] = [];

function uncorkAll(): void {
  for (const socket of corked) socket.uncork();
  // Emptied in place: a Set cleared every turn allocated a new table each time, in the old generation.
  corked.length = 0;
}

/**
 * Holds a socket's writes until the current turn's microtasks are done (a process.nextTick queued from
 * a microtask runs after the last of them). Every frame one turn writes to a socket (one store commit
 * settling several senders' messages to one receiver, a kick and its close) then leaves in one writev
 * instead of one system call per frame; no frame waits for a later turn. One connection's own frames
 * are handled one store commit apart (frame-queue.ts), so a single busy pair gains nothing from it.
 * A socket still corked was corked here this turn: ws corks and uncorks within one send.
 */
function corkUntilTurnEnds(socket: Duplex): void {
  if (socket.writableCorked > 0) return;
  if (corked.length === 0) process.nextTick(uncorkAll);
  corked.push(socket);
  socket.cork();
}

/** What every link of one gateway shares. */
interface WsShared {
  readonly core: ServerCore;
  readonly maxPayloadBytes: number;
  readonly links: Set<WsLink>;
}

/** An error listener shared by every socket before its upgrade. */
function destroySocket(this: Duplex): void {
  this.destroy();
}

/**
 * The core's {@link Link} to one WebSocket, and its session. One object per connection with its methods
 * on the prototype, and ws's listeners are functions shared by every connection: an idle connection
 * holds no closures of ours.
 */
class WsLink implements Link {
  readonly session: Session;

  constructor(
    readonly shared: WsShared,
    readonly ws: LimitedWebSocket,
    private readonly socket: Duplex,
    readonly remote: string,
    /** Counts the connection as not logged in yet; NO_SLOT once released. */
    private slot: AddressSlot,
  ) {
    ws.link = this;
    ws.on('message', onWsMessage);
    ws.on('error', onWsError);
    ws.on('close', onWsClose);
    this.session = shared.core.open(this);
  }

  get transport(): 'ws' {
    return 'ws';
  }

  write(text: string): boolean {
    const ws = this.ws;
    if (ws.readyState !== WebSocket.OPEN || this.droppedAsSlow()) return false;
    corkUntilTurnEnds(this.socket);
    ws.send(text);
    return true;
  }

  /**
   * Answers a WebSocket ping with its payload (ws's autoPong is off: see LimitedWebSocket). A peer that
   * pings without reading the answers is bounded like any slow reader, by `maxBufferedBytes`.
   */
  pong(data: Buffer): void {
    if (this.ws.readyState !== WebSocket.OPEN || this.droppedAsSlow()) return;
    this.ws.pong(data, false);
  }

  /** Terminates the connection when more than `maxBufferedBytes` wait to be written to it; true when it did. */
  private droppedAsSlow(): boolean {
    const ws = this.ws;
    const core = this.shared.core;
    if (ws.bufferedAmount <= core.opts.maxBufferedBytes) return false;
    core.opts.logger.warn(`ws ${this.remote}: slow consumer (${ws.bufferedAmount} bytes queued), dropping`);
    ws.terminate();
    return true;
  }

  close(code?: number): void {
    const ws = this.ws;
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(code ?? 1000, code === 1001 ? 'Going Away' : 'Bye');
  }

  loggedIn(): void {
    this.slot.release();
    this.slot = NO_SLOT;
  }

  /** ws is about to close the connection for a frame over maxPayload: error 311 first, and offline at once. */
  tooBig(): void {
    const { core, maxPayloadBytes } = this.shared;
    if (this.session.closed) return;
    core.metrics.badInput++;
    core.opts.logger.debug(`ws ${this.remote}: a frame over the ${maxPayloadBytes}-byte limit, closing with 1009`);
    core.io.sendError(this.session, ServerErrorCode.FRAME_TOO_LARGE, `a frame over the ${maxPayloadBytes}-byte limit; closing`, { limit: maxPayloadBytes });
    // The user goes offline now, not when the client answers the Close frame (ws waits up to 30 s).
    core.closed(this.session);
  }

  /** The WebSocket is gone. */
  ended(): void {
    this.slot.release();
    this.slot = NO_SLOT;
    this.shared.links.delete(this);
    this.shared.core.closed(this.session);
  }
}

function onWsMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  const link = (this as LimitedWebSocket).link as WsLink;
  const core = link.shared.core;
  if (isBinary) {
    core.io.rejectInput(link.session, ServerErrorCode.BINARY_FRAME, 'binary frames are not supported: send each frame as text');
    return;
  }
  core.receive(link.session, Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data as Buffer[]).toString('utf8'));
}

function onWsError(this: WebSocket, err: Error): void {
  const link = (this as LimitedWebSocket).link as WsLink;
  link.shared.core.metrics.badInput++;
  link.shared.core.opts.logger.debug(`ws ${link.remote}: ${err.message}`);
}

function onWsClose(this: WebSocket): void {
  ((this as LimitedWebSocket).link as WsLink).ended();
}
