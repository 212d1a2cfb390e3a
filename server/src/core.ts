import { createFrame, decodeFrame, encodeFrame, MsgType, SERVER_ID, UNSET_ID, type Protocal } from '../../src/protocol';
import { MAX_KICK_REASON_LENGTH } from './bounds';
import { DedupWindow } from './dedup';
import { ServerErrorCode } from './errors';
import { admitFrame, handleAck, handleData, replaySettled, resendFrame } from './delivery';
import { handleLogin } from './login';
import { Metrics } from './metrics';
import type { Logger } from './logger';
import type { OfflineStore } from './offline-store';
import { OnlineMap } from './online';
import type { ResolvedOptions } from './options';
import { QosSendDaemon } from './qos-s2c';
import { ReceiptBacklog } from './receipts';
import type { FrameBudget } from './rate-limit';
import { Session, overBytes, type Link, type TransportName } from './session';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes strict UTF-8; null when the bytes are not valid UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | null {
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

/** What an error frame refers to: the refused message's fingerprint and, for size refusals, the limit. */
export interface ErrorAbout {
  fp?: string | null;
  limit?: number;
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
 * frame texts ({@link ServerCore.receive}) and closes ({@link ServerCore.closed}); it runs the MobileIMSDK
 * dispatch, the timers and the security checks, and leaves login and routing to login.ts and delivery.ts.
 */
export class ServerCore {
  readonly metrics = new Metrics();
  readonly online = new OnlineMap();
  /** C2S de-duplication: (sender, fp) of messages to the server. */
  readonly dedup: DedupWindow;
  /** C2C de-duplication: (sender, fp) of messages accepted for another user. */
  readonly c2cDedup: DedupWindow;
  readonly qos: QosSendDaemon;
  readonly receipts: ReceiptBacklog;
  private readonly sessions = new Set<Session>();
  /** Set by a graceful shutdown: every new connection is sent error 336 and closed at once. */
  draining = false;

  constructor(readonly opts: ResolvedOptions, readonly store: OfflineStore) {
    this.dedup = new DedupWindow(opts.dedup.ttlMs, opts.dedup.max, opts.dedup.maxBytes);
    this.c2cDedup = new DedupWindow(opts.c2cDedup.ttlMs, opts.c2cDedup.max, opts.c2cDedup.maxBytes);
    this.receipts = new ReceiptBacklog(opts.receipts);
    this.qos = new QosSendDaemon(
      opts.qos,
      (frame) => resendFrame(this, frame),
      (frames) => {
        this.metrics.lost += frames.length;
        this.safely('onLost', () => opts.hooks.onLost?.(frames));
        for (const f of frames) {
          if (f.to && f.fp) this.safely('replay', () => replaySettled(this, f.to as string, f.from ?? SERVER_ID, f.fp as string));
        }
      },
      (ageMs) => this.metrics.ackLatency.observe(ageMs / 1000),
    );
  }

  /** Registers a new connection and starts its idle and login timers; `budget` continues a peer's rate limit. */
  open(link: Link, budget?: FrameBudget): Session {
    const s = new Session(link, this.opts.rateLimit, budget);
    this.sessions.add(s);
    this.metrics.open[link.transport]++;
    this.metrics.connectionsOpened++;
    this.armIdle(s);
    s.loginTimer = setTimeout(() => {
      s.loginTimer = null;
      if (!s.userId) this.fail(s, ServerErrorCode.LOGIN_TIMEOUT, `no login within ${this.opts.loginTimeoutMs} ms`);
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
      this.rejectInput(s, ServerErrorCode.BAD_FRAME, `bad frame: ${(err as Error).message}`);
      return;
    }
    // Charged by what the frame is: an ACK of a frame the server sent costs nothing (see FrameBudget).
    const refusal = s.budget?.admit(p.type);
    if (refusal) {
      this.metrics.rateLimited++;
      this.opts.logger.debug(`session ${s.id} (${s.transport} ${s.remote}): ${refusal.message}`);
      this.fail(s, refusal.code, refusal.message);
      return;
    }
    s.lastActivityMs = Date.now();
    this.metrics.messagesIn++;
    if ((p.type === MsgType.DATA || p.type === MsgType.ACK) && !admitFrame(this, s, p)) return;
    if (s.queued >= MAX_QUEUED_FRAMES) {
      this.metrics.rateLimited++;
      this.fail(s, ServerErrorCode.RATE_LIMITED, 'too many frames waiting to be handled');
      return;
    }
    if (s.queued > 0 && s.queuedChars + text.length > this.opts.maxQueuedBytes) {
      this.metrics.badInput++;
      this.opts.logger.warn(`session ${s.id} (${s.transport} ${s.remote}): over ${this.opts.maxQueuedBytes} bytes of frames waiting to be handled, closing`);
      this.fail(s, ServerErrorCode.INPUT_BACKLOG, `too many bytes of frames waiting to be handled (limit ${this.opts.maxQueuedBytes})`);
      return;
    }
    s.queued++;
    s.queuedChars += text.length;
    s.chain = s.chain
      .then(() => (s.closed ? undefined : this.dispatch(s, p)))
      .catch((err: unknown) => {
        this.opts.logger.error(`session ${s.id}: handling a type-${p.type} frame failed`, err);
        this.fail(s, ServerErrorCode.SERVER_ERROR, 'internal server error');
      })
      .finally(() => {
        s.queued--;
        s.queuedChars -= text.length;
      });
  }

  /** Handles one frame's bytes: invalid UTF-8 is refused with error 310, anything else goes to {@link receive}. */
  receiveBytes(s: Session, bytes: Uint8Array): void {
    const text = decodeUtf8(bytes);
    if (text === null) this.rejectInput(s, ServerErrorCode.BAD_FRAME, 'frame is not valid UTF-8');
    else this.receive(s, text);
  }

  /** Refuses input a gateway could not even decode (oversize, binary, bad UTF-8): error, then close. */
  rejectInput(s: Session, code: number, message: string): void {
    this.metrics.badInput++;
    this.opts.logger.debug(`session ${s.id} (${s.transport} ${s.remote}): ${message}`);
    this.fail(s, code, message);
  }

  /** Called by the gateway once a connection is gone; idempotent. */
  closed(s: Session): void {
    if (!this.sessions.delete(s)) return;
    s.closed = true;
    s.clearTimers();
    this.metrics.open[s.transport]--;
    this.release(s);
  }

  /**
   * Sends an error frame (type 52). `about` ties the refusal to one data frame: its `fp` (and the byte
   * `limit` it broke) travel as extra keys after MobileIMSDK's two, which MobileIMSDK clients ignore and
   * our SDK uses to settle that message as refused at once.
   */
  sendError(s: Session, code: number, message: string, about?: ErrorAbout): void {
    this.metrics.errorSent(code);
    if (code !== ServerErrorCode.SERVER_GOING_AWAY) logRefusal(this.opts.logger, s, code, message);
    const body: Record<string, unknown> = { errorCode: code, errorMsg: message };
    if (about?.fp) body.fp = about.fp;
    if (about?.limit !== undefined) body.limit = about.limit;
    const frame = (): Protocal => createFrame({ type: MsgType.ERROR, dataContent: JSON.stringify(body), from: SERVER_ID, to: UNSET_ID });
    // The message may quote the client's frame (301 does): shortened rather than not sent when it cannot fit.
    if (!this.fits(s, frame())) body.errorMsg = `${message.slice(0, 200)}…`;
    this.send(s, frame());
  }

  /** Sends an error frame, then closes the connection. */
  fail(s: Session, code: number, message: string): void {
    if (s.closed) return;
    this.sendError(s, code, message);
    this.closeSession(s);
  }

  /** Writes a frame to a session, counting it; a frame over the session's transport limit is not written. */
  send(s: Session, p: Protocal): boolean {
    if (!s.send(p, this.frameLimit(s.transport))) {
      if (!s.closed && !this.fits(s, p)) {
        this.opts.logger.warn(`session ${s.id} (${s.transport} ${s.remote}): a type-${p.type} frame is over the ${this.frameLimit(s.transport)}-byte transport limit; not sent`);
      }
      return false;
    }
    this.metrics.messagesOut++;
    if (p.type === MsgType.DATA) {
      if (p.from === SERVER_ID) this.metrics.s2cOut++;
      else this.metrics.c2cOut++;
      if (p.QoS) s.budget?.sentQos();
    }
    return true;
  }

  /** Whether a frame's encoding fits the largest frame the session's transport carries. */
  fits(s: Session, p: Protocal): boolean {
    return !overBytes(encodeFrame(p), this.frameLimit(s.transport));
  }

  /** The largest frame (encoded bytes) a client on `transport` reads: the gateway's own input limit. */
  frameLimit(transport: TransportName): number {
    const o = this.opts;
    if (transport === 'ws') return o.ws ? o.ws.maxPayloadBytes : Number.POSITIVE_INFINITY;
    if (transport === 'tcp') return o.tcp ? o.tcp.maxBodyBytes : Number.POSITIVE_INFINITY;
    return o.udp ? o.udp.maxDatagramBytes : Number.POSITIVE_INFINITY;
  }

  /**
   * Closes a connection (WebSocket: Close 1000 "Bye"). The user goes offline (onLogout, with the kickout
   * code) at once: a peer that stops reading can hold the socket itself open for a while (ws waits 30 s
   * for the closing handshake).
   */
  closeSession(s: Session, kickCode = -1, closeCode?: number): void {
    if (s.closed) return;
    if (kickCode !== -1) s.kickCode = kickCode;
    s.closed = true;
    s.clearTimers();
    this.release(s);
    s.link.close(closeCode);
  }

  /**
   * Graceful shutdown of one connection: error 336 (the SDK reconnects at once, with jitter), then close
   * (WebSocket: 1001 Going Away).
   */
  goAway(s: Session): void {
    if (s.closed) return;
    this.sendError(s, ServerErrorCode.SERVER_GOING_AWAY, 'server shutting down; reconnect');
    this.closeSession(s, -1, 1001);
  }

  /** Sends a kickout (type 54) to one session and closes it; a reason that would not fit the transport is left out. */
  kickSession(s: Session, userId: string, code: number, reason?: string): void {
    const frame = (info: object) => createFrame({ type: MsgType.KICKOUT, dataContent: JSON.stringify(info), from: SERVER_ID, to: userId });
    let kickout = frame(reason == null ? { code } : { code, reason });
    if (!this.fits(s, kickout)) kickout = frame({ code });
    this.metrics.kicks++;
    this.opts.logger.info('kick', { user: userId, code, session: s.id, transport: s.transport, remote: s.remote });
    this.send(s, kickout);
    this.closeSession(s, code);
  }

  /**
   * Kicks a user's current session; false when the user is not online. A reason longer than
   * {@link MAX_KICK_REASON_LENGTH} characters is a RangeError (the admin API answers 413).
   */
  kick(userId: string, code: number, reason?: string): boolean {
    if (reason != null && typeof reason !== 'string') throw new TypeError(`kick reason must be a string, got ${typeof reason}`);
    if (reason != null && reason.length > MAX_KICK_REASON_LENGTH) {
      throw new RangeError(`kick reason is ${reason.length} characters; at most ${MAX_KICK_REASON_LENGTH}`);
    }
    const s = this.online.get(userId);
    if (!s) return false;
    this.kickSession(s, userId, code, reason);
    return true;
  }

  /** Every connection still open, for shutdown. */
  allSessions(): Session[] {
    return [...this.sessions];
  }

  /** Takes a session's user offline if it is still the user's current session, firing onLogout. */
  private release(s: Session): void {
    const uid = s.userId;
    if (uid && this.online.removeIfCurrent(uid, s)) {
      const info = s.info();
      this.opts.logger.info('logout', { user: uid, kickCode: s.kickCode, session: s.id, transport: s.transport });
      this.safely('onLogout', () => this.opts.hooks.onLogout?.(uid, s.kickCode, info));
    }
  }

  /** Runs an application hook, logging (never propagating) what it throws or rejects with. */
  safely(name: string, fn: () => unknown): void {
    try {
      const r = fn();
      if (r && typeof (r as Promise<unknown>).catch === 'function') {
        (r as Promise<unknown>).catch((err) => this.opts.logger.error(`hook ${name} failed`, err));
      }
    } catch (err) {
      this.opts.logger.error(`hook ${name} failed`, err);
    }
  }

  private async dispatch(s: Session, p: Protocal): Promise<void> {
    switch (p.type) {
      case MsgType.LOGIN:
        return handleLogin(this, s, p);
      case MsgType.ECHO: {
        const reply: Protocal = { ...p, type: MsgType.ECHO_RESPONSE };
        // "type":53 is one byte longer than "type":5: an echo at the frame limit would come back over it.
        const size = Buffer.byteLength(encodeFrame(reply), 'utf8');
        if (size > this.frameLimit(s.transport)) this.sendError(s, ServerErrorCode.FRAME_TOO_LARGE, `the echo reply would be ${size} bytes, over this connection's ${this.frameLimit(s.transport)}-byte frame limit`);
        else this.send(s, reply);
        return;
      }
      case MsgType.LOGOUT:
        this.closeSession(s);
        return;
      case MsgType.KEEP_ALIVE:
      case MsgType.DATA:
      case MsgType.ACK:
        if (!s.userId) {
          this.fail(s, ServerErrorCode.UNLOGIN, quoteFrame(p));
          return;
        }
        if (p.type === MsgType.DATA) {
          if (p.to === SERVER_ID) this.metrics.c2sIn++;
          else this.metrics.c2cIn++;
        }
        if (p.type === MsgType.KEEP_ALIVE) {
          this.send(s, createFrame({ type: MsgType.KEEP_ALIVE_RESPONSE, dataContent: '{}', from: SERVER_ID, to: s.userId }));
          return;
        }
        return p.type === MsgType.DATA ? handleData(this, s, s.userId, p) : handleAck(this, s, s.userId, p);
      default:
        this.opts.logger.debug(`session ${s.id}: ignoring frame of unknown type ${p.type}`);
    }
  }

  /** Idle expiry judged against the last activity, so a busy connection costs no timer churn. */
  private armIdle(s: Session): void {
    const expiry = s.transport === 'udp' ? this.opts.udpExpiryMs : this.opts.expiryMs;
    const tick = (): void => {
      const idle = Date.now() - s.lastActivityMs;
      if (idle >= expiry) {
        s.idleTimer = null;
        this.opts.logger.debug(`session ${s.id}: idle for ${idle} ms, closing`);
        this.closeSession(s);
        return;
      }
      s.idleTimer = setTimeout(tick, expiry - idle);
    };
    s.idleTimer = setTimeout(tick, expiry);
  }
}

/** Longest refusal reason logged: error texts can quote what the client sent. */
const MAX_LOGGED_REASON = 160;
/** Refusal lines logged per second at most: clients choose how many refusals they cause. */
export const REFUSAL_LOG_LINES_PER_SECOND = 50;

/** Per logger: the current one-second window of refusal lines. */
const refusalWindows = new WeakMap<Logger, { startMs: number; used: number; suppressed: number }>();

/**
 * One info line per refusal, with the code and a reason that never quotes a frame (301 carries the whole
 * frame), at most {@link REFUSAL_LOG_LINES_PER_SECOND}; the next refusal after a window with more logs a
 * warning with the number left out.
 */
function logRefusal(logger: Logger, s: Session, code: number, message: string): void {
  const now = Date.now();
  let w = refusalWindows.get(logger);
  if (!w) refusalWindows.set(logger, (w = { startMs: now, used: 0, suppressed: 0 }));
  if (now - w.startMs >= 1000) {
    if (w.suppressed > 0) logger.warn('refusal lines suppressed', { suppressed: w.suppressed, perSecond: REFUSAL_LOG_LINES_PER_SECOND });
    w.startMs = now;
    w.used = 0;
    w.suppressed = 0;
  }
  if (w.used >= REFUSAL_LOG_LINES_PER_SECOND) {
    w.suppressed++;
    return;
  }
  w.used++;
  const reason = code === ServerErrorCode.UNLOGIN ? 'not logged in' : message.slice(0, MAX_LOGGED_REASON);
  logger.info('refused', { code, reason, session: s.id, user: s.userId, transport: s.transport, remote: s.remote });
}
