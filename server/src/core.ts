// The path of a frame through the server, file by file, is drawn in server/README.md (Architecture).

import { createFrame, decodeFrame, encodeFrame, MsgType, SERVER_ID, type Protocal } from '../../src/protocol';
import { AddressCap } from './address-cap';
import { MAX_KICK_REASON_LENGTH } from './bounds';
import type { ServerContext, ServerSeams } from './context';
import { resendFrame } from './deliver';
import { ServerErrorCode } from './errors';
import { enqueue, type Work, type WorkRunner } from './frame-queue';
import { hookRunner, runHook } from './hooks';
import { IdleList } from './idle-list';
import { LocalSessions } from './local-sessions';
import { handleLogin } from './login';
import type { MaybePromise } from './maybe-promise';
import { Metrics } from './metrics';
import type { OfflineStore } from './offline-store';
import type { ResolvedOptions } from './options';
import type { Presence } from './presence';
import { LocalPresence } from './presence-local';
import { QosSendDaemon } from './qos-s2c';
import type { FrameBudget } from './rate-limit';
import { ReceiptBacklog, type ReceiptKeeper } from './receipts';
import { admitFrame, handleAck, handleData } from './relay';
import { replaySettled, replayStored } from './replay';
import type { Routing } from './routing';
import { LocalRouting } from './routing-local';
import { describeSession, Session, type Link } from './session';
import { SessionIo } from './session-io';
import type { MessageStore } from './store';
import { LocalMessageStore } from './store-local';
import { UserBudgets } from './user-budgets';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes strict UTF-8; null when the bytes are not valid UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | null {
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

/**
 * Characters of the offending frame a 301 error quotes. MobileIMSDK quotes the whole re-serialised frame,
 * which escaped twice grows up to fourfold: a frame at the limit drew a reply no client of that transport
 * could read (8,089 bytes for a 2,048-byte UDP datagram). Clients act on the code, not on the quote.
 */
const UNLOGIN_QUOTE_CHARS = 128;

/** The frame re-serialised as MobileIMSDK's 301 quotes it, cut to {@link UNLOGIN_QUOTE_CHARS}. */
function quoteFrame(p: Protocal): string {
  const text = encodeFrame(p);
  return text.length <= UNLOGIN_QUOTE_CHARS ? text : text.slice(0, UNLOGIN_QUOTE_CHARS) + '…';
}

/** Frames a connection may have waiting behind a slow hook before it is dropped. */
const MAX_QUEUED_FRAMES = 1000;

/**
 * The transport-agnostic heart of the server: gateways hand it connections ({@link ServerCore.open}),
 * frame texts ({@link ServerCore.receive}) and closes ({@link ServerCore.closed}); it decodes, bounds and
 * queues each frame, dispatches it to login.ts or relay.ts with the narrow {@link ServerContext}, and
 * owns the per-connection timers. It builds the single-process implementations of the seams (presence,
 * routing, store); nothing below it calls back into it.
 */
export class ServerCore {
  readonly metrics = new Metrics();
  /** The connections of this process. */
  readonly sessions = new LocalSessions();
  /** Writes to, kicks and closes sessions. */
  readonly io: SessionIo;
  readonly qos: QosSendDaemon;
  readonly receipts: ReceiptKeeper;
  readonly presence: Presence;
  readonly routing: Routing;
  readonly store: MessageStore;
  /** What the frame handlers receive. */
  readonly ctx: ServerContext;
  /** WebSocket and TCP connections not logged in yet, per source IP (`maxUnauthenticatedPerAddress`). */
  readonly unauthenticated: AddressCap;
  /** Set by a graceful shutdown: every new connection is sent error 336 and closed at once. */
  draining = false;
  private readonly localRouting: LocalRouting;
  /** Whether a connection's QoS C2C messages may overlap their store writes (see frame-queue.ts). */
  private readonly overlapping: boolean;
  /** Idle expiry of WebSocket and TCP sessions, and of UDP sessions (one timer each); made at first use. */
  private idleStream: IdleList<Session> | null = null;
  private idleUdp: IdleList<Session> | null = null;

  /** `offline` holds the messages unless `seams.store` replaces the whole store (then it may be null); see {@link ServerSeams}. */
  constructor(readonly opts: ResolvedOptions, offline: OfflineStore | null, seams: Partial<ServerSeams> = {}) {
    this.receipts = seams.receipts ?? new ReceiptBacklog(opts.receipts);
    this.unauthenticated = new AddressCap(opts.maxUnauthenticatedPerAddress);
    this.qos = new QosSendDaemon(
      opts.qos,
      (frame) => resendFrame(this.ctx, frame),
      (frames) => {
        this.metrics.lost += frames.length;
        this.safely('onLost', () => opts.hooks.onLost?.(frames));
        for (const f of frames) {
          if (f.to && f.fp) this.safely('replay', () => replaySettled(this.ctx, f.to as string, f.from ?? SERVER_ID, f.fp as string));
        }
      },
      (ageMs) => this.metrics.ackLatency.observe(ageMs / 1000),
    );
    this.presence = seams.presence ?? new LocalPresence();
    this.io = new SessionIo(opts, this.metrics, this.sessions, this.presence);
    this.localRouting = new LocalRouting(this.sessions, this.io, this.qos);
    this.routing = seams.routing ? seams.routing(this.localRouting) : this.localRouting;
    if (!seams.store && !offline) throw new TypeError('ServerCore needs an offline store or a store seam');
    this.store = seams.store ?? new LocalMessageStore(offline as OfflineStore, { c2s: opts.dedup, c2c: opts.c2cDedup });
    // See frame-queue.ts: every await between a QoS message's arrival and its ACK must settle in order.
    this.overlapping = this.store.settlesInOrder === true && this.routing.settlesInOrder === true && !opts.hooks.beforeC2C && !opts.hooks.onOffline;
    this.ctx = {
      opts,
      metrics: this.metrics,
      io: this.io,
      sessions: this.sessions,
      presence: this.presence,
      routing: this.routing,
      store: this.store,
      qos: this.qos,
      receipts: this.receipts,
      userBudgets: opts.rateLimit ? new UserBudgets(opts.rateLimit) : null,
      safely: hookRunner(opts.logger),
    };
  }

  /** Registers a new connection and starts its idle and login timers; `budget` continues a peer's rate limit. */
  open(link: Link, budget?: FrameBudget): Session {
    const s = new Session(link, this.opts.rateLimit, this.opts.nodeId, budget);
    this.sessions.add(s);
    this.metrics.open[link.transport]++;
    this.metrics.connectionsOpened++;
    this.armIdle(s);
    s.loginTimer = setTimeout(() => {
      s.loginTimer = null;
      if (!s.userId) this.io.fail(s, ServerErrorCode.LOGIN_TIMEOUT, `no login within ${this.opts.loginTimeoutMs} ms`);
    }, this.opts.loginTimeoutMs);
    if (this.draining) this.goAway(s);
    return s;
  }

  /** Handles one frame's text from a connection; never throws. */
  receive(s: Session, text: string): void {
    if (s.closed) return;
    let p: Protocal;
    try {
      p = decodeFrame(text);
    } catch (err) {
      this.io.rejectInput(s, ServerErrorCode.BAD_FRAME, `bad frame: ${(err as Error).message}`);
      return;
    }
    // Charged by what the frame is: an ACK of a frame the server sent costs nothing (see FrameBudget).
    const refusal = s.budget?.admit(p.type);
    if (refusal) {
      this.metrics.rateLimited++;
      this.opts.logger.debug(`${describeSession(s)}: ${refusal.message}`);
      this.io.fail(s, refusal.code, refusal.message);
      return;
    }
    s.idle?.touch(s, Date.now());
    this.metrics.messagesIn++;
    if ((p.type === MsgType.DATA || p.type === MsgType.ACK) && !admitFrame(this.ctx, s, p, text.length)) return;
    if (s.queued >= MAX_QUEUED_FRAMES) {
      this.metrics.rateLimited++;
      this.io.fail(s, ServerErrorCode.RATE_LIMITED, 'too many frames waiting to be handled');
      return;
    }
    if (s.queued > 0 && s.queuedChars + text.length > this.opts.maxQueuedBytes) {
      this.metrics.badInput++;
      this.opts.logger.warn(`${describeSession(s)}: over ${this.opts.maxQueuedBytes} bytes of frames waiting to be handled, closing`);
      this.io.fail(s, ServerErrorCode.INPUT_BACKLOG, `too many bytes of frames waiting to be handled (limit ${this.opts.maxQueuedBytes})`);
      return;
    }
    enqueue(s, p, text.length, this.runner);
  }

  /** Handles one frame's bytes: invalid UTF-8 is refused with error 310, anything else goes to {@link receive}. */
  receiveBytes(s: Session, bytes: Uint8Array): void {
    const text = decodeUtf8(bytes);
    if (text === null) this.io.rejectInput(s, ServerErrorCode.BAD_FRAME, 'frame is not valid UTF-8');
    else this.receive(s, text);
  }

  /** Called by the gateway once a connection is gone; idempotent. */
  closed(s: Session): void {
    if (!this.sessions.delete(s)) return;
    s.closed = true;
    s.clearTimers();
    this.metrics.open[s.transport]--;
    if (s.userId && s.budget) this.ctx.userBudgets?.put(s.userId, s.budget);
    this.io.release(s);
  }

  /**
   * Graceful shutdown of one connection: error 336 (the SDK reconnects at once, with jitter), then close
   * (WebSocket: 1001 Going Away).
   */
  goAway(s: Session): void {
    if (s.closed) return;
    this.io.sendError(s, ServerErrorCode.SERVER_GOING_AWAY, 'server shutting down; reconnect');
    this.io.closeSession(s, -1, 1001);
  }

  /**
   * Kicks a user's current session, on whichever node holds it; false when the user is not online. A
   * reason longer than {@link MAX_KICK_REASON_LENGTH} characters is a RangeError (the admin API answers 413).
   */
  kick(userId: string, code: number, reason?: string): MaybePromise<boolean> {
    if (reason != null && typeof reason !== 'string') throw new TypeError(`kick reason must be a string, got ${typeof reason}`);
    if (reason != null && reason.length > MAX_KICK_REASON_LENGTH) {
      throw new RangeError(`kick reason is ${reason.length} characters; at most ${MAX_KICK_REASON_LENGTH}`);
    }
    return this.routing.kickUser(userId, code, reason);
  }

  /** The users logged in to this process (in one process, exactly what the presence lists). */
  onlineUsers(): string[] {
    return this.sessions.userIds();
  }

  /** Number of users logged in to this process. */
  onlineCount(): number {
    return this.sessions.userCount;
  }

  /**
   * Starts handing a logged-in session its stored messages again, from the first (the UDP gateway, once
   * an address proves itself: a message its last replay handed over may have had its retransmissions
   * held back until it was given up).
   */
  replay(s: Session): Promise<void> {
    return replayStored(this.ctx, s, Date.now(), 0);
  }

  /** Runs `task` on the session's queue, after every frame received before it (the UDP gateway's replay). */
  schedule(s: Session, task: () => MaybePromise<void>): void {
    enqueue(s, task, 0, this.runner);
  }

  /** Every connection still open, for shutdown. */
  allSessions(): Session[] {
    return this.sessions.all();
  }

  /** Runs an application hook, logging (never propagating) what it throws or rejects with. */
  safely(name: string, fn: () => unknown): void {
    runHook(this.opts.logger, name, fn);
  }

  /** Runs each session's queued frames and tasks (see frame-queue.ts). */
  private readonly runner: WorkRunner = {
    run: (s: Session, work: Work) => (typeof work === 'function' ? work() : this.dispatch(s, work)),
    // A logged-in user's QoS C2C message overlaps the ones before it when only an in-order store write
    // separates them: no hook that could finish out of order, and a store that settles in order.
    overlapKey: (s: Session, work: Work) =>
      this.overlapping && typeof work !== 'function' && work.type === MsgType.DATA && work.QoS && work.fp && work.to !== SERVER_ID && s.userId
        ? work.fp
        : null,
    failed: (s: Session, work: Work, err: unknown) => {
      if (typeof work === 'function') {
        this.opts.logger.error(`session ${s.id}: a queued task failed`, err);
        return;
      }
      this.opts.logger.error(`session ${s.id}: handling a type-${work.type} frame failed`, err);
      this.io.fail(s, ServerErrorCode.SERVER_ERROR, 'internal server error');
    },
  };

  /** Hands a frame to its handler; a promise only while the handler still waits for something (a hook, a store). */
  private dispatch(s: Session, p: Protocal): MaybePromise<void> {
    switch (p.type) {
      case MsgType.LOGIN:
        return handleLogin(this.ctx, s, p);
      case MsgType.ECHO: {
        const reply: Protocal = { ...p, type: MsgType.ECHO_RESPONSE };
        // "type":53 is one byte longer than "type":5: an echo at the frame limit would come back over it.
        if (this.io.fits(s, reply)) this.io.send(s, reply);
        else this.io.sendError(s, ServerErrorCode.FRAME_TOO_LARGE, `the echo reply would exceed this connection's ${this.io.frameLimit(s.transport)}-byte frame limit`);
        return;
      }
      case MsgType.LOGOUT:
        this.io.closeSession(s);
        return;
      case MsgType.KEEP_ALIVE:
      case MsgType.DATA:
      case MsgType.ACK:
        if (!s.userId) {
          this.io.fail(s, ServerErrorCode.UNLOGIN, quoteFrame(p));
          return;
        }
        if (p.type === MsgType.DATA) {
          if (p.to === SERVER_ID) this.metrics.c2sIn++;
          else this.metrics.c2cIn++;
        }
        if (p.type === MsgType.KEEP_ALIVE) {
          this.io.send(s, createFrame({ type: MsgType.KEEP_ALIVE_RESPONSE, dataContent: '{}', from: SERVER_ID, to: s.userId }));
          return;
        }
        return p.type === MsgType.DATA ? handleData(this.ctx, s, s.userId, p) : handleAck(this.ctx, s, s.userId, p);
      default:
        this.opts.logger.debug(`session ${s.id}: ignoring frame of unknown type ${p.type}`);
    }
  }

  /** Puts a new session in its transport's idle list: closed once idle for the mode's expiry. */
  private armIdle(s: Session): void {
    const list = s.transport === 'udp' ? (this.idleUdp ??= this.idleList(this.opts.udpExpiryMs)) : (this.idleStream ??= this.idleList(this.opts.expiryMs));
    s.idle = list;
    list.add(s, Date.now());
  }

  private idleList(expiryMs: number): IdleList<Session> {
    return new IdleList<Session>(expiryMs, (s, idleMs) => {
      s.idle = null;
      this.opts.logger.debug(`session ${s.id}: idle for ${idleMs} ms, closing`);
      this.io.closeSession(s);
    });
  }
}
