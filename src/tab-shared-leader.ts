import { IMClient, IMError, systemClock, type IMClientOptions, type LoginResult, type SendReceipt } from './index';
import { backoffDelay } from './backoff';
import { Timer } from './clock';
import type { StateReason } from './client-types';
import type { ClientStateName } from './state';
import { errorFor, type SendRequest } from './tab-shared-wire';

/** Every event of {@link IMClient} the leader passes on to the tabs (`state` travels on its own). */
export const FORWARDED_EVENTS = ['message', 'delivered', 'lost', 'kicked', 'reconnect', 'error', 'received'];

/** What a leader term tells the tab that holds it. */
export interface TermHost {
  /** The shared state changed. */
  state(to: ClientStateName, reason: StateReason): void;
  /** An event for every tab. */
  event(type: string, payload: unknown): void;
  /** The login of this term succeeded (the first time). */
  ready(result: LoginResult): void;
  /** The session is over for every tab. */
  ended(reason: StateReason, error: IMError): void;
}

/** Who logs in, and whether this term continues a session another tab started. */
export interface TermLogin {
  userId: string;
  token: string;
  extra?: string;
  /** The session's first-login time (0: a first login). */
  firstLoginTime: number;
  /** A takeover retries a failed login with backoff instead of ending the session. */
  takeover: boolean;
}

type Done = (ok: boolean, value: unknown) => void;

/**
 * One tab's time as leader: it owns the only {@link IMClient} (and socket) of the user's tabs, logs in,
 * passes every event on, and sends what any tab asks it to, with that tab's fingerprint.
 *
 * ```
 *  start ── login ──> online (ready: queued requests go out in order) ── logout / kick / rejected ──> ended
 *            │ takeover: connect failed or timed out                ── handover() (this tab leaves) ──> silent
 *            └──> reconnecting ── backoff ──> login again (up to reconnect.maxAttempts)
 * ```
 */
export class LeaderTerm {
  /** The client holding the socket. */
  readonly client: IMClient;
  private readonly _retry: Timer;
  private _queue: Array<{ req: SendRequest; done: Done }> = [];
  private _ready = false;
  private _over = false;
  private _closedReason: StateReason = 'connect-failed';
  private _attempts = 0;

  constructor(private readonly _o: IMClientOptions, private readonly _login: TermLogin, private readonly _host: TermHost) {
    this.client = new IMClient(_o);
    this._retry = new Timer(_o.clock || systemClock, () => this._attempt());
    this.client.on('state', ({ to, reason }) => this._onState(to, reason));
    for (const type of FORWARDED_EVENTS) {
      (this.client.on as (t: string, l: (e: unknown) => void) => void)(type, (e) => {
        if (!this._over) this._host.event(type, e);
      });
    }
  }

  /** Logs in (a takeover: at once, with the session's first-login time). */
  start(): void {
    this._attempt();
  }

  /** Sends a request now, or once the login succeeded; `done` gets the receipt or the error. */
  submit(req: SendRequest, done: Done): void {
    if (this._over) return done(false, new IMError('NOT_ONLINE', 'the session is over'));
    if (this._ready) return this._send(req, done);
    const max = (this._o.qos && this._o.qos.maxPending) || 1000;
    if (this._queue.length >= max) return done(false, new IMError('OUTBOX_FULL', `outbox full: ${max} messages are waiting`));
    this._queue.push({ req, done });
  }

  /** `echo()` on the leader's client. */
  echo(): Promise<{ rttMs: number }> {
    return this.client.echo();
  }

  /** Retries a takeover login at once, or asks the client to re-login now. */
  reconnectNow(): void {
    if (this._over) return;
    if (this._retry._armed) {
      this._attempts = 0;
      this._attempt();
    } else this.client.reconnectNow();
  }

  /** Logs out (every tab follows through the host). */
  logout(): void {
    if (this._over) return;
    if (this._retry._armed) return this._end('logout', new IMError('LOGGED_OUT', 'logged out before the message was delivered'));
    void this.client.logout();
  }

  /** This tab leaves but the session goes on in another tab: stop without telling anyone anything. */
  handover(): void {
    this._over = true;
    this._retry._cancel();
    this._queue = [];
    this.client.destroy();
  }

  private _attempt(): void {
    this._retry._cancel();
    if (this._over) return;
    const l = this._login;
    const getToken = this._o.getToken;
    const go = (token: string): void => {
      if (this._over) return;
      this.client
        .login({ userId: l.userId, token, extra: l.extra, firstLoginTime: this._login.firstLoginTime || this.client.firstLoginTime })
        .then(
          (result) => this._onReady(result),
          (error: IMError) => this._failed(error),
        );
    };
    if (!l.takeover || !getToken) return go(l.token);
    // A tab that takes over may hold an old token: ask for a fresh one, as a re-login does.
    Promise.resolve()
      .then(getToken)
      .then(
        (token) => go(typeof token === 'string' ? token : l.token),
        () => go(l.token),
      );
  }

  private _onReady(result: LoginResult): void {
    if (this._over) return;
    this._ready = true;
    this._attempts = 0;
    this._login.firstLoginTime = result.firstLoginTime;
    this._host.ready(result);
    const queue = this._queue;
    this._queue = [];
    for (const item of queue) this._send(item.req, item.done);
  }

  private _failed(error: IMError): void {
    if (this._over) return;
    const transient = error.code === 'CONNECT_FAILED' || error.code === 'LOGIN_TIMEOUT';
    if (!this._login.takeover || !transient) {
      if (this._login.takeover && error.code === 'LOGIN_REJECTED') this._host.event('error', error);
      return this._end(this._closedReason, error);
    }
    const r = this._o.reconnect || {};
    const maxAttempts = r.maxAttempts === undefined ? Infinity : r.maxAttempts;
    if (this._attempts >= maxAttempts) {
      const failed = new IMError('RECONNECT_FAILED', `gave up after ${this._attempts} reconnect attempts`);
      this._host.event('error', failed);
      return this._end('reconnect-failed', failed);
    }
    const delayMs = backoffDelay(this._attempts, r.minDelayMs === undefined ? 1000 : r.minDelayMs, r.maxDelayMs === undefined ? 30000 : r.maxDelayMs, this._o.random || Math.random);
    this._attempts++;
    this._host.state('reconnecting', this._closedReason);
    this._host.event('reconnect', { attempt: this._attempts, delayMs });
    this._retry._arm(delayMs);
  }

  private _onState(to: ClientStateName, reason: StateReason): void {
    if (this._over) return;
    if (to === 'closed') {
      this._closedReason = reason;
      // Before the first success, the login's promise decides what happens; afterwards the session is
      // over, once the client finished settling (its replies and `lost` events go out first).
      if (!this._ready) return;
      this._host.state(to, reason);
      const clock = this._o.clock || systemClock;
      clock.setTimeout(() => this._end(reason, errorFor(reason)), 0);
      return;
    }
    this._host.state(to, this._login.takeover && reason === 'login' ? 'retry' : reason);
  }

  private _send(req: SendRequest, done: Done): void {
    let promise: Promise<SendReceipt>;
    try {
      promise = this.client.send(req.to, req.content, { qos: req.qos, typeu: req.typeu, fp: req.fp || undefined });
    } catch (error) {
      return done(false, error);
    }
    promise.then(
      (receipt) => this._over || done(true, receipt),
      (error: unknown) => this._over || done(false, error),
    );
  }

  private _end(reason: StateReason, error: IMError): void {
    if (this._over) return;
    this._over = true;
    this._retry._cancel();
    const queue = this._queue;
    this._queue = [];
    for (const item of queue) item.done(false, error);
    this._host.ended(reason, error);
    this.client.destroy();
  }
}
