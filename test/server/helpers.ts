import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect as tcpConnect, type Socket } from 'node:net';
import { afterEach } from 'vitest';
import { WebSocket } from 'ws';
import { encodeLengthPrefixed, LengthPrefixDecoder } from '../../src/length-prefix';
import type { ServerCore } from '../../server/src/core';
import { createServer, silentLogger, type IMServer, type ServerOptions } from '../../server/src/index';

/** The admin token every test server uses. */
export const ADMIN_TOKEN = 'test-admin-token';

/** A server on ephemeral ports with a silent logger and an in-memory store. */
export function startServer(overrides: ServerOptions = {}): Promise<IMServer> {
  return createServer({
    ws: { port: 0, host: '127.0.0.1' },
    tcp: { port: 0, host: '127.0.0.1' },
    udp: { port: 0, host: '127.0.0.1' },
    http: { port: 0, host: '127.0.0.1', adminToken: ADMIN_TOKEN },
    logger: silentLogger,
    ...overrides,
  });
}

/** A decoded frame as a plain object. */
export type Frame = Record<string, unknown>;

/** What every raw test client offers: frames in order, and the close. */
export abstract class RawClient {
  readonly frames: Frame[] = [];
  readonly texts: string[] = [];
  private waiters: Array<() => void> = [];
  private cursor = 0;
  closeInfo: { code: number; reason: string } | null = null;
  readonly closed: Promise<{ code: number; reason: string }>;
  protected resolveClosed!: (info: { code: number; reason: string }) => void;

  constructor() {
    this.closed = new Promise((r) => (this.resolveClosed = r));
  }

  abstract sendText(text: string): void;
  abstract close(): void;

  /** Sends an object as JSON. */
  send(frame: Frame): void {
    this.sendText(JSON.stringify(frame));
  }

  protected onText(text: string): void {
    this.texts.push(text);
    this.frames.push(JSON.parse(text) as Frame);
    this.wake();
  }

  protected onClosed(info: { code: number; reason: string }): void {
    if (this.closeInfo) return;
    this.closeInfo = info;
    this.resolveClosed(info);
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** The next frame not yet taken (matching `pred` if given, skipping others); rejects after `timeoutMs`. */
  async next(pred: (f: Frame) => boolean = () => true, timeoutMs = 3000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.cursor < this.frames.length) {
        const f = this.frames[this.cursor++];
        if (pred(f)) return f;
      }
      if (this.closeInfo) throw new Error(`connection closed (${this.closeInfo.code}) while waiting; got ${JSON.stringify(this.frames)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a frame; got ${JSON.stringify(this.frames)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The next frame of a given type. */
  nextOfType(type: number, timeoutMs?: number): Promise<Frame> {
    return this.next((f) => f.type === type, timeoutMs);
  }

  /** Resolves after `ms` with every frame that arrived and was not taken. */
  async quiet(ms = 150): Promise<Frame[]> {
    await new Promise((r) => setTimeout(r, ms));
    const rest = this.frames.slice(this.cursor);
    this.cursor = this.frames.length;
    return rest;
  }
}

/** A raw WebSocket client. */
export class WsClient extends RawClient {
  constructor(readonly ws: WebSocket) {
    super();
    ws.on('message', (data, isBinary) => {
      if (!isBinary) this.onText(data.toString());
    });
    ws.on('close', (code, reason) => this.onClosed({ code, reason: reason.toString() }));
    ws.on('error', () => undefined);
  }

  static async open(port: number, path = '/websocket'): Promise<WsClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
    const c = new WsClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return c;
  }

  sendText(text: string): void {
    this.ws.send(text);
  }

  close(): void {
    this.ws.terminate();
  }
}

/** A raw TCP client with MobileIMSDK's length-prefix framing. */
export class TcpClient extends RawClient {
  private readonly decoder = new LengthPrefixDecoder(1 << 20);

  constructor(readonly socket: Socket) {
    super();
    socket.on('data', (chunk) => {
      for (const body of this.decoder.push(chunk)) this.onText(Buffer.from(body).toString('utf8'));
    });
    socket.on('close', () => this.onClosed({ code: 0, reason: 'tcp-close' }));
    socket.on('error', () => undefined);
  }

  static async open(port: number): Promise<TcpClient> {
    const socket = tcpConnect(port, '127.0.0.1');
    const c = new TcpClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    return c;
  }

  sendText(text: string): void {
    this.socket.write(encodeLengthPrefixed(Buffer.from(text, 'utf8')));
  }

  /** Sends several frames in one write, so the server reads them together. */
  sendMany(frames: Frame[]): void {
    this.socket.write(Buffer.concat(frames.map((f) => encodeLengthPrefixed(Buffer.from(JSON.stringify(f), 'utf8')))));
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A raw UDP client: one datagram per frame. */
export class UdpClient extends RawClient {
  constructor(readonly socket: UdpSocket, readonly port: number) {
    super();
    socket.on('message', (msg) => this.onText(msg.toString('utf8')));
  }

  static async open(port: number): Promise<UdpClient> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    return new UdpClient(socket, port);
  }

  /**
   * Sends a frame as MobileIMSDK's clients write it, with every Gson key (unknown keys kept): until a peer
   * proves its address the server answers no more bytes than it was sent, and a real client's frames carry
   * all the keys the server's replies do.
   */
  override send(frame: Frame): void {
    this.sendText(JSON.stringify({ bridge: false, type: frame.type, dataContent: undefined, from: undefined, to: undefined, fp: undefined, QoS: false, typeu: -1, sm: -1, ...frame }));
  }

  sendText(text: string): void {
    this.socket.send(text, this.port, '127.0.0.1');
  }

  sendBytes(bytes: Buffer): void {
    this.socket.send(bytes, this.port, '127.0.0.1');
  }

  close(): void {
    this.socket.close();
    this.onClosed({ code: 0, reason: 'local' });
  }
}

/** A type-0 login frame as the SDK writes it. */
export function loginFrame(userId: string, firstLoginTime = 0, token = 'tok'): Frame {
  return {
    bridge: false,
    type: 0,
    dataContent: JSON.stringify({ loginUserId: userId, loginToken: token, extra: 'x', firstLoginTime }),
    from: userId,
    to: '0',
    QoS: false,
    typeu: -1,
    sm: -1,
  };
}

/** A type-2 frame. */
export function dataFrame(from: string, to: string, content: string, fp: string | null, qos = fp != null, typeu = -1): Frame {
  return { bridge: false, type: 2, dataContent: content, from, to, ...(fp ? { fp } : {}), QoS: qos, typeu, sm: -1 };
}

/** A type-4 ACK frame. */
export function ackFrame(from: string, to: string, fp: string): Frame {
  return { bridge: false, type: 4, dataContent: fp, from, to, QoS: false, typeu: -1, sm: -1 };
}

/** Logs a raw client in and returns the login response payload. */
export async function login(c: RawClient, userId: string, firstLoginTime = 0): Promise<{ code: number; firstLoginTime: number }> {
  c.send(loginFrame(userId, firstLoginTime));
  const r = await c.nextOfType(50);
  return JSON.parse(r.dataContent as string) as { code: number; firstLoginTime: number };
}

/** Logs in as our SDK does when it asks for device receipts (`caps: 1`). */
export async function loginWithCaps(c: RawClient, userId: string, caps: number | string = 1): Promise<Record<string, unknown>> {
  const frame = loginFrame(userId);
  const info = JSON.parse(frame.dataContent as string) as Record<string, unknown>;
  c.send({ ...frame, dataContent: JSON.stringify({ ...info, caps }) });
  return JSON.parse((await c.nextOfType(50)).dataContent as string) as Record<string, unknown>;
}

/** The payload of a type-52 frame. */
export function errorOf(f: Frame): { errorCode: number; errorMsg: string } {
  return JSON.parse(f.dataContent as string) as { errorCode: number; errorMsg: string };
}

/** Calls the admin API. */
export async function admin(port: number, method: string, path: string, body?: unknown, token: string | null = ADMIN_TOKEN): Promise<{ status: number; json: any }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

/** Stops the QoS daemon and closes every session of each core given (tests that build a `ServerCore` directly). */
export function stopCores(cores: ServerCore[]): void {
  for (const c of cores) {
    c.qos.stop();
    for (const s of c.allSessions()) c.io.closeSession(s);
  }
}

/** Closes every client and server given, ignoring errors. */
export async function closeAll(clients: RawClient[], servers: IMServer[]): Promise<void> {
  for (const c of clients) {
    try {
      c.close();
    } catch {
      /* already closed */
    }
  }
  await Promise.all(servers.map((s) => s.close()));
}

/**
 * Servers and raw clients that are closed after each test. Call once at the top of a test file; `setup`
 * starts a server (see {@link startServer}) and returns openers for clients of each transport.
 */
export function useServers() {
  const clients: RawClient[] = [];
  const servers: IMServer[] = [];
  afterEach(async () => {
    await closeAll(clients.splice(0), servers.splice(0));
  });
  const track = <T extends RawClient>(c: T): T => (clients.push(c), c);
  async function setup(opts: ServerOptions = {}) {
    const server = await startServer(opts);
    servers.push(server);
    const ws = async () => track(await WsClient.open(server.ports.ws!));
    return {
      server,
      ws,
      open: ws,
      tcp: async () => track(await TcpClient.open(server.ports.tcp!)),
      udp: async () => track(await UdpClient.open(server.ports.udp!)),
    };
  }
  return { setup, track, servers };
}
