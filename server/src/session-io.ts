import { createFrame, MsgType, SERVER_ID, UNSET_ID, type Protocal } from '../../src/protocol';
import { encoded } from './bounds';
import { ServerErrorCode } from './errors';
import { runHook } from './hooks';
import type { LocalSessions } from './local-sessions';
import type { Logger } from './logger';
import { isPromise } from './maybe-promise';
import type { Metrics } from './metrics';
import type { ResolvedOptions } from './options';
import type { Presence } from './presence';
import { describeSession, overBytes, type Session, type TransportName } from './session';

/** What an error frame refers to: the refused message's fingerprint and, for size refusals, the limit. */
export interface ErrorAbout {
  fp?: string | null;
  limit?: number;
}

/** The options writing to and ending a session needs: the logger, each transport's frame limit, `onLogout`. */
export type SessionIoOptions = Pick<ResolvedOptions, 'logger' | 'ws' | 'tcp' | 'udp' | 'hooks' | 'nodeId'>;

/**
 * Everything that writes to or ends one session of this process: frames (counted), error frames,
 * kickouts, closes, and taking a closed session's user offline. The bottom of every frame's path before
 * the gateway's link: it calls nothing above it.
 */
export class SessionIo {
  constructor(
    private readonly opts: SessionIoOptions,
    private readonly metrics: Metrics,
    private readonly sessions: LocalSessions,
    private readonly presence: Presence,
  ) {}

  /** Writes a frame to a session, counting it; a frame over the session's transport limit is not written. */
  send(s: Session, p: Protocal): boolean {
    if (!s.send(p, this.frameLimit(s.transport))) {
      if (!s.closed && !this.fits(s, p)) {
        this.opts.logger.warn(`${describeSession(s)}: a type-${p.type} frame is over the ${this.frameLimit(s.transport)}-byte transport limit; not sent`);
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

  /** Refuses input that could not even be decoded (oversize, binary, bad UTF-8, bad login): error, then close. */
  rejectInput(s: Session, code: number, message: string): void {
    this.metrics.badInput++;
    this.opts.logger.debug(`${describeSession(s)}: ${message}`);
    this.fail(s, code, message);
  }

  /** Whether a frame's encoding fits the largest frame the session's transport carries. */
  fits(s: Session, p: Protocal): boolean {
    return !overBytes(encoded(p), this.frameLimit(s.transport));
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

  /** Takes a session's user offline if it is still the user's current session, firing onLogout. */
  release(s: Session): void {
    const uid = s.userId;
    if (!uid || !this.sessions.unbind(uid, s)) return;
    const released = this.presence.release(uid, this.opts.nodeId, s.id);
    if (isPromise(released)) released.catch((err: unknown) => this.opts.logger.error(`releasing "${uid}" failed`, err));
    const info = s.info();
    this.opts.logger.info('logout', { user: uid, kickCode: s.kickCode, session: s.id, transport: s.transport });
    runHook(this.opts.logger, 'onLogout', () => this.opts.hooks.onLogout?.(uid, s.kickCode, info));
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
