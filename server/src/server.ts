import { randomUUID } from 'node:crypto';
import { createFrame, MsgType, SERVER_ID, UNSET_ID } from '../../src/protocol';
import { startAdminHttp } from './admin-http';
import { MAX_FP_LENGTH } from './bounds';
import { ServerCore } from './core';
import { deliver, frameBytes } from './delivery';
import type { Gateway } from './gateway';
import { startTcpGateway } from './gateway-tcp';
import { startUdpGateway } from './gateway-udp';
import { startWsGateway } from './gateway-ws';
import type { MetricsSnapshot } from './metrics';
import { SqliteOfflineStore } from './offline-store';
import { resolveOptions, type ServerOptions } from './options';
import type { QosOutcome } from './qos-s2c';

/** Options of {@link IMServer.sendToUser}. */
export interface SendOptions {
  /** Ask for an ACK, retransmit, and store while the user is offline (default true). */
  qos?: boolean;
  /** Application sub-type (default -1). */
  typeu?: number;
  /** Fingerprint to use (default a random UUID). */
  fp?: string;
}

/**
 * How a push ended: `delivered` (the client ACKed), `stored` (kept durably and delivered on the user's
 * next login), `sent` (written without QoS), `dropped` (not QoS and the user is offline, or the offline
 * hook refused it), `lost` (no ACK and no store holds it), `full` (the user's offline box is full),
 * `busy` (the user is online but too many messages wait for an ACK server-wide; nothing was sent or stored).
 */
export interface SendResult {
  fp: string | null;
  status: 'delivered' | 'stored' | 'sent' | 'dropped' | 'lost' | 'full' | 'busy';
}

/** The bound ports of the gateways that were started. */
export interface BoundPorts {
  ws?: number;
  tcp?: number;
  udp?: number;
  http?: number;
}

/** A running server, as returned by {@link createServer}. */
export interface IMServer {
  readonly ports: BoundPorts;
  /** S2C push; with QoS it resolves once the client ACKs (or the message is stored for later). */
  sendToUser(userId: string, content: string, options?: SendOptions): Promise<SendResult>;
  /** Kicks a user (type 54, then close); false when the user is not online. */
  kick(userId: string, code?: number, reason?: string): boolean;
  /** User ids online now. */
  onlineUsers(): string[];
  /** Counters for the admin API. */
  metrics(): MetricsSnapshot;
  /** Stops every gateway, drops every connection and closes the store. */
  close(): Promise<void>;
}

/**
 * Starts the server: the gateways that are not disabled, the QoS daemon and the offline store.
 * @example
 * const server = await createServer({ ws: { port: 3000 }, tcp: false, udp: false, http: { port: 8080, adminToken } });
 * await server.sendToUser('u1', 'hello');
 */
export async function createServer(options: ServerOptions = {}): Promise<IMServer> {
  const opts = resolveOptions(options);
  const ownStore = opts.store ? null : new SqliteOfflineStore(opts.dataDir, opts.durability);
  const store = opts.store ?? (ownStore as SqliteOfflineStore);
  const core = new ServerCore(opts, store);
  const gateways: Gateway[] = [];
  const ports: BoundPorts = {};
  let offlinePending = 0;
  let closed = false;

  const server: IMServer = {
    ports,
    async sendToUser(userId, content, o = {}) {
      if (closed) throw new Error('the server is closed');
      if (typeof userId !== 'string' || userId === '' || userId === SERVER_ID || userId === UNSET_ID) {
        throw new TypeError(`sendToUser needs a user id (not "0" or "-1"), got ${JSON.stringify(userId)}`);
      }
      if (typeof content !== 'string') throw new TypeError('sendToUser content must be a string');
      if (o.fp !== undefined && (typeof o.fp !== 'string' || o.fp === '')) {
        throw new TypeError(`sendToUser fp must be a non-empty string (omit it for a random UUID), got ${JSON.stringify(o.fp)}`);
      }
      // The client's ACK would carry it back, and an ACK with a longer fp is refused (error 320).
      if (o.fp !== undefined && o.fp.length > MAX_FP_LENGTH) throw new RangeError(`sendToUser fp is ${o.fp.length} characters; at most ${MAX_FP_LENGTH}`);
      if (o.typeu !== undefined && !Number.isInteger(o.typeu)) throw new TypeError(`sendToUser typeu must be an integer, got ${String(o.typeu)}`);
      const qos = o.qos !== false;
      const fp = qos ? (o.fp ?? randomUUID()) : (o.fp ?? null);
      const frame = createFrame({ type: MsgType.DATA, dataContent: content, from: SERVER_ID, to: userId, fp, QoS: qos, typeu: o.typeu ?? -1 });
      const size = frameBytes(frame);
      if (size > opts.maxMessageBytes) throw new RangeError(`sendToUser: the frame is ${size} bytes, over maxMessageBytes (${opts.maxMessageBytes})`);
      let settle: (outcome: QosOutcome) => void = () => undefined;
      const outcome = new Promise<QosOutcome>((resolve) => (settle = resolve));
      const result = await deliver(core, frame, settle);
      if (result !== 'sent' || !qos) return { fp, status: result };
      const end = await outcome;
      if (end === 'delivered') return { fp, status: 'delivered' };
      return { fp, status: opts.hooks.onOffline ? 'lost' : 'stored' };
    },
    kick(userId, code = 2, reason) {
      if (!Number.isInteger(code)) throw new TypeError(`kick code must be an integer (2 = admin kick), got ${String(code)}`);
      return core.kick(userId, code, reason);
    },
    onlineUsers: () => core.online.users(),
    metrics: () => {
      if (ownStore && !closed) offlinePending = ownStore.total();
      return core.metrics.snapshot(core.online.size, offlinePending);
    },
    async close() {
      if (closed) return;
      closed = true;
      core.qos.stop();
      for (const s of core.allSessions()) core.closeSession(s);
      await Promise.all(gateways.map((g) => g.close()));
      for (const s of core.allSessions()) core.closed(s);
      ownStore?.close();
    },
  };

  try {
    if (opts.ws) gateways.push(await startWsGateway(core, opts.ws).then((g) => ((ports.ws = g.port), g)));
    if (opts.tcp) gateways.push(await startTcpGateway(core, opts.tcp).then((g) => ((ports.tcp = g.port), g)));
    if (opts.udp) gateways.push(await startUdpGateway(core, opts.udp).then((g) => ((ports.udp = g.port), g)));
    if (opts.http) gateways.push(await startAdminHttp(server, opts.http, opts.logger).then((g) => ((ports.http = g.port), g)));
  } catch (err) {
    await server.close();
    throw err;
  }
  core.qos.start();
  return server;
}
