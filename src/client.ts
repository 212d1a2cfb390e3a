import { Timer } from './clock';
import { DEV } from './dev';
import { EchoRequests } from './echo';
import { SafeEmitter } from './emitter';
import { IMError } from './errors';
import { KeepAlive } from './keepalive';
import { Lifecycle } from './lifecycle';
import { resolveOptions, type IMClientOptions, type ResolvedOptions } from './options';
import {
  TYPE_ACK,
  TYPE_DATA,
  TYPE_ECHO,
  TYPE_ECHO_RESPONSE,
  TYPE_ERROR,
  TYPE_KEEP_ALIVE,
  TYPE_KEEP_ALIVE_RESPONSE,
  TYPE_KICKOUT,
  TYPE_LOGIN,
  TYPE_LOGIN_RESPONSE,
  TYPE_LOGOUT,
  TYPE_RECEIPT,
  CAP_RECEIPTS,
  CAP_RECEIPT_IN_ACK,
  ERROR_GOING_AWAY,
  ERROR_UNLOGIN,
  SERVER_ID,
  createFingerprint,
  createFrame,
  decodeErrorResponse,
  decodeFrame,
  decodeKickoutInfo,
  decodeLoginResponse,
  decodeReceipt,
  encodeFrame,
  encodeLoginInfo,
  type ErrorResponse,
  type Protocal,
} from './protocol';
import type { ClientEvents, LoginParams, LoginResult, SendOptions, StateReason } from './client-types';
import { DedupWindow } from './dedup-window';
import { OutboxPersistence } from './outbox-persistence';
import { QosOutbox, type SendReceipt } from './qos-outbox';
import { Reconnect } from './reconnect';
import { AUTHENTICATING, CLOSED, CONNECTING, IDLE, ONLINE, RECONNECTING, type ClientStateName } from './state';
import type { SocketConnection } from './transport';
import { decodeText, utf8Length } from './utf8';

interface Waiter<T> {
  _resolve(value: T): void;
  _reject(error: IMError): void;
}

const DESTROYED = 'client destroyed; create a new one';
/** Stops that settle a durable outbox's messages as lost; the others keep them for the next login. */
const SETTLES_OUTBOX: readonly StateReason[] = ['logout', 'kicked', 'login-rejected', 'reconnect-failed'];

/**
 * A MobileIMSDK client: login, keep-alive, automatic re-login, QoS send and receive.
 *
 * @example
 * const client = new IMClient({ url: 'ws://127.0.0.1:3000/websocket', adapter: createBrowserAdapter() });
 * client.on('message', (m) => console.log(m.from, m.content));
 * await client.login({ userId: 'u1', token: 't' });
 * await client.send('u2', 'hello');
 */
export class IMClient extends SafeEmitter<ClientEvents> {
  private readonly _o: ResolvedOptions;
  private readonly _inbox: DedupWindow;
  private readonly _outbox: QosOutbox;
  private readonly _persistence: OutboxPersistence;
  private readonly _keepAlive: KeepAlive;
  private readonly _loginTimer: Timer;
  private readonly _reconnect: Reconnect;
  private readonly _lifecycle: Lifecycle;
  private readonly _echoes: EchoRequests;
  private _current: ClientStateName = IDLE;
  // _link, _credentials, _loginWaiter and _destroyed start unset: every read tests them for truth, where
  // undefined acts as null and false do, and the minified bundle spares their initial assignments.
  private _link?: SocketConnection | null;
  /** Bumped whenever the link closes or the client moves; callbacks of an older value are stale. */
  private _generation = 0;
  private _credentials?: { userId: string; token: string; extra?: string };
  private _firstLogin = 0;
  /** The server's maxMessageBytes from the last login response; 0 when it did not say (MobileIMSDK). Set by login(). */
  private _maxMessageBytes!: number;
  /** The capability bits the server granted at the last login (0 from a MobileIMSDK server). */
  private _caps!: number;
  /** Why the link went down last, for RECONNECT_FAILED (set by every lost link, before any reconnect). */
  private _lastLoss!: StateReason;
  private _loginWaiter?: Waiter<LoginResult> | null;
  private _destroyed?: boolean;
  /**
   * The position in the walk of `options.url` (the constructor orders the copy; the walk begins at index 1):
   * the URL in use is the entry at this index modulo their count.
   */
  private _at = 1;

  constructor(options: IMClientOptions) {
    super();
    const o = (this._o = resolveOptions(options));
    // Each client walks the list in its own random order, drawn once: entries are drawn one by one without
    // replacement, each moved to the end of the copy, so from index 1 on the copy holds them in the order
    // drawn, the one left undrawn at index 0 last. It thus starts at a random entry (the first draw's pick),
    // visits every entry before repeating one, and the clients of a dead node spread evenly over the others.
    // One URL draws nothing.
    const u = o._urls;
    for (let i = u.length; i > 1; ) u.push(...u.splice((o._random() * i--) | 0, 1));
    this._inbox = new DedupWindow(o._qos.dedupTtlMs, o._qos.dedupMax);
    this._outbox = new QosOutbox(o._clock, o._qos, {
      _write: (frame) => this._current === ONLINE && this._write(frame),
      _delivered: (message) => this._emit('delivered', { fp: message.fp as string, message }),
      _lost: (message, error) => this._emit('lost', { message, error }),
      _changed: () => this._persistence._changed(),
    });
    this._persistence = new OutboxPersistence(o._outboxStore, this._outbox, o._logger);
    this._keepAlive = new KeepAlive(
      o._clock,
      o._keepAlive.intervalMs,
      o._keepAlive.timeoutMs,
      () => this._write(this._frame(TYPE_KEEP_ALIVE, '{}')),
      (reason) => this._linkLost(reason),
    );
    this._loginTimer = new Timer(o._clock, () => this._linkLost('login-timeout'));
    this._echoes = new EchoRequests(o._clock, o.echoTimeoutMs);
    this._reconnect = new Reconnect(o, {
      _due: () => this._current === RECONNECTING && !!this._credentials,
      _open: (token) => {
        const c = this._credentials as { token: string };
        if (token !== null) {
          c.token = token;
          if (this._lifecycle._paused) return;
        }
        this._openLink(c.token, 'retry');
      },
      _tokenFailed: (error) => {
        this._emit('error', error);
        if (this._current === RECONNECTING) this._scheduleReconnect('retry');
      },
    });
    this._lifecycle = new Lifecycle(o._adapter, o._logger, {
      _pause: (offline) => {
        // Network loss closes at once; in the background retries pause until the app returns.
        if (offline) this._linkLost('offline');
        if (this._current === RECONNECTING) this._reconnect._pause();
      },
      _resume: () => {
        if (this._current === ONLINE) this._keepAlive._probe(o.probeTimeoutMs);
        else this.reconnectNow();
      },
    });
  }

  /** The connection state. */
  get state(): ClientStateName {
    return this._current;
  }

  /** The user id of the current or last login, or null before the first. */
  get userId(): string | null {
    return this._credentials ? this._credentials.userId : null;
  }

  /** The server URL in use: the one connected to, or the one the next attempt goes to. */
  get url(): string {
    return this._o._urls[this._at % this._o._urls.length];
  }

  /** The first-login time the server gave this session (0 before it answered). */
  get firstLoginTime(): number {
    return this._firstLogin;
  }

  /** Counters for dashboards and tests. */
  stats(): { pending: number; dedupEntries: number; reconnectAttempts: number } {
    return { pending: this._outbox._size, dedupEntries: this._inbox.size, reconnectAttempts: this._reconnect._attempts };
  }

  /** A listener that throws is logged, never fatal: the other listeners and the client go on. */
  protected override _listenerFailed(type: keyof ClientEvents, error: unknown): void {
    this._o._logger.error(`a "${type}" listener threw`, error);
  }

  /**
   * Connects and logs in. Resolves on the server's code 0; rejects with an `IMError` carrying the server's
   * code (`LOGIN_REJECTED`), or `LOGIN_TIMEOUT` / `CONNECT_FAILED`. Once logged in, the client keeps the
   * session alive and logs in again by itself until `logout()`, a kickout or a rejected re-login.
   */
  login(params: LoginParams): Promise<LoginResult> {
    if (!params || typeof params.userId !== 'string' || params.userId === '') {
      throw new TypeError(DEV ? 'login({ userId, token?, extra? }): userId must be a non-empty string' : 'invalid userId');
    }
    if (params.token !== undefined && typeof params.token !== 'string') throw new TypeError(DEV ? 'login(): token must be a string' : 'invalid token');
    if (params.extra !== undefined && typeof params.extra !== 'string') throw new TypeError(DEV ? 'login(): extra must be a string' : 'invalid extra');
    const first = params.firstLoginTime || 0;
    if (!(first >= 0)) throw new TypeError(DEV ? 'login(): firstLoginTime must be a time in ms, or 0 for a new session' : 'invalid firstLoginTime');
    if (this._destroyed) return Promise.reject(new IMError('DESTROYED', DESTROYED));
    if (!this._stopped()) {
      return Promise.reject(new IMError('ALREADY_ACTIVE', DEV ? `login() needs a logged-out client; the state is ${this._current}` : this._current));
    }
    // The received-message window outlives a logout, so a message replayed after the next login is not
    // shown twice; only another user's login starts it afresh.
    if (this.userId !== params.userId) this._inbox.clear();
    this._credentials = { userId: params.userId, token: params.token || '', extra: params.extra };
    this._firstLogin = first;
    this._maxMessageBytes = 0;
    this._reconnect._attempts = 0;
    this._lifecycle._watch();
    this._persistence._restore(params.userId);
    const result = new Promise<LoginResult>((resolve, reject) => (this._loginWaiter = { _resolve: resolve, _reject: reject }));
    this._openLink(this._credentials.token, 'login');
    return result;
  }

  /**
   * Sends `content` to user `to` (`"0"` is the server). With QoS (the default) it resolves when the ACK
   * arrives and rejects when the message is lost; while the link is down it waits in the outbox.
   */
  send(to: string, content: string, options: SendOptions = {}): Promise<SendReceipt> {
    if (typeof to !== 'string' || to === '') throw new TypeError(DEV ? 'send(to, content): to must be a user id, or "0" for the server' : 'invalid to');
    if (typeof content !== 'string') throw new TypeError(DEV ? 'send(to, content): content must be a string (JSON.stringify objects first)' : 'invalid content');
    if (options.typeu !== undefined && !Number.isInteger(options.typeu)) throw new TypeError(DEV ? 'send(): typeu must be an integer' : 'invalid typeu');
    if (this._destroyed) return Promise.reject(new IMError('DESTROYED', DESTROYED));
    if (!this._credentials || this._stopped()) {
      return Promise.reject(new IMError('NOT_ONLINE', 'send() needs a login first'));
    }
    const qos = options.qos !== false;
    const fp = options.fp || (qos ? createFingerprint(this._o._random) : null);
    const frame = Object.assign(this._frame(TYPE_DATA, content, to), { fp, QoS: qos, typeu: options.typeu === undefined ? -1 : options.typeu });
    // Refuse here what the server would refuse (our server says its limit at login) and what the transport
    // cannot carry (MobileIMSDK closes a connection that sends an oversize frame).
    const bytes = utf8Length(encodeFrame(frame));
    const server = this._maxMessageBytes;
    const refused = server > 0 && bytes > server;
    const limit = refused ? server : this._o._adapter.maxFrameBytes || 65536;
    if (bytes > limit) {
      const code = refused ? 'MESSAGE_REFUSED' : 'MESSAGE_TOO_LARGE';
      return Promise.reject(new IMError(code, `a ${bytes}-byte message exceeds the ${limit}-byte limit`, undefined, undefined, { limit }));
    }
    return this._outbox._enqueue(frame);
  }

  /** Sends an echo (type 5) and resolves with the round-trip time when the server's reply arrives. */
  echo(): Promise<{ rttMs: number }> {
    if (this._current !== ONLINE) return Promise.reject(new IMError('NOT_ONLINE', 'echo() needs a login'));
    const token = 'echo-' + createFingerprint(this._o._random);
    const reply = this._echoes._wait(token);
    this._write(this._frame(TYPE_ECHO, token));
    return reply;
  }

  /** Re-logs in at once, skipping the backoff wait (only while reconnecting). */
  reconnectNow(): void {
    if (this._current !== RECONNECTING) return;
    this._reconnect._attempts = 0;
    this._reconnect._attempt();
  }

  /** Sends a logout (type 3) when online, closes the socket and stops everything; waiting messages are lost. */
  logout(): Promise<void> {
    if (this._stopped()) return Promise.resolve();
    if (this._current === ONLINE) this._write(this._frame(TYPE_LOGOUT, null));
    this._shutdown('logout', new IMError('LOGGED_OUT', 'logged out before delivery'));
    return Promise.resolve();
  }

  /** Stops everything and removes every listener, timer and socket; the client cannot be used again. */
  destroy(): void {
    if (this._destroyed) return;
    this._destroyed = true;
    if (!this._stopped()) {
      this._shutdown('destroyed', new IMError('DESTROYED', DESTROYED));
    }
    this._lifecycle._unwatch();
    this._clear();
  }

  /** Before the first login, or after a stop: nothing runs and nothing is sent. */
  private _stopped(): boolean {
    return this._current === IDLE || this._current === CLOSED;
  }

  private _frame(type: number, dataContent: string | null, to: string = SERVER_ID): Protocal {
    return createFrame({ type, dataContent, from: this._credentials ? this._credentials.userId : '-1', to });
  }

  private _write(frame: Protocal): boolean {
    if (!this._link) return false;
    try {
      this._link.send(encodeFrame(frame));
      return true;
    } catch (error) {
      this._o._logger.warn('send failed', error);
      return false;
    }
  }

  /**
   * The one generation guard: moves to `to` (a `state` listener may stop or restart the client from inside
   * the event) and returns whether this is still the same link in state `to`, so the caller may go on.
   */
  private _move(to: ClientStateName, reason: StateReason): boolean {
    const from = this._current;
    const gen = this._generation;
    if (from !== to) {
      this._current = to;
      this._emit('state', { from, to, reason });
    }
    return gen === this._generation && this._current === to;
  }

  private _openLink(token: string, reason: StateReason): void {
    this._closeLink();
    if (!this._move(CONNECTING, reason)) return;
    const gen = this._generation;
    this._loginTimer._arm(this._o.loginTimeoutMs);
    const guard = <A extends unknown[]>(fn: (...args: A) => void) => (...args: A): void => {
      if (gen !== this._generation) return;
      try {
        fn(...args);
      } catch (error) {
        this._o._logger.error('socket callback threw', error);
      }
    };
    try {
      this._link = this._o._adapter.connect(this.url, {
        onOpen: guard(() => this._authenticate(token)),
        onMessage: guard((data) => this._receive(data)),
        onClose: guard(({ code, reason }) =>
          // 1001 "going away": the server shuts down (our server says so first with error 336).
          code === 1001
            ? this._goneAway()
            : this._linkLost('socket-closed', reason || (code === 1006 ? 'connection refused or lost' : `closed with code ${code}`)),
        ),
        onError: guard((error) => this._o._logger.warn('socket error', error)),
      });
    } catch (error) {
      this._o._logger.warn('connect threw', error);
      this._linkLost('connect-failed', String((error as Error).message || error));
    }
  }

  private _authenticate(token: string): void {
    const c = this._credentials;
    if (!c || this._current !== CONNECTING || !this._move(AUTHENTICATING, 'socket-open')) return;
    const caps = this._o._receipts ? CAP_RECEIPTS | CAP_RECEIPT_IN_ACK : undefined;
    const info = { loginUserId: c.userId, loginToken: token, extra: c.extra, firstLoginTime: this._firstLogin, caps };
    this._write(this._frame(TYPE_LOGIN, encodeLoginInfo(info)));
  }

  private _closeLink(): void {
    this._generation++;
    const link = this._link;
    this._link = null;
    this._keepAlive._stop();
    this._loginTimer._cancel();
    this._outbox._linkDown();
    this._echoes._failAll();
    if (link) {
      try {
        link.close(1000, '');
      } catch (error) {
        this._o._logger.warn('socket close failed', error);
      }
    }
  }

  /**
   * The link is gone: `words` says why for people (the reason's name by default). A first login fails;
   * otherwise the client reconnects after `delayMs`, or the backoff when undefined.
   */
  private _linkLost(reason: StateReason, words: string = reason.replace('-', ' '), delayMs?: number): void {
    // Only a link that is up or coming up can be lost.
    if (this._current === RECONNECTING || this._stopped()) return;
    const url = this.url;
    // A link that never logged in, or a server going away (the one caller with a delay): the next attempt
    // goes to the next URL. A session that was online tries its URL again first.
    if (this._current !== ONLINE || delayMs !== undefined) this._at++;
    this._closeLink();
    this._lastLoss = reason;
    if (this._loginWaiter) {
      const error =
        reason === 'login-timeout'
          ? new IMError('LOGIN_TIMEOUT', `no login response within ${this._o.loginTimeoutMs} ms`, undefined, undefined, { reason })
          : new IMError('CONNECT_FAILED', `could not reach ${url}: ${words}`, undefined, undefined, { reason });
      this._shutdown(reason, error);
      return;
    }
    this._scheduleReconnect(reason, reason === 'probe-timeout' ? 0 : delayMs);
  }

  /** The server is going away (error 336, close 1001): reconnect within a second, spread at random. */
  private _goneAway(): void {
    this._linkLost('server-going-away', 'server shutting down', Math.floor(this._o._random() * 1000));
  }

  /** Waits `delayMs` (the backoff when undefined), then logs in again; gives up after `maxAttempts`. */
  private _scheduleReconnect(reason: StateReason, delayMs?: number): void {
    if (this._stopped()) return;
    const r = this._reconnect;
    if (r._exhausted) {
      const error = new IMError('RECONNECT_FAILED', `gave up after ${r._attempts} reconnect attempts`, undefined, undefined, {
        reason: this._lastLoss,
      });
      this._shutdown('reconnect-failed', error);
      this._emit('error', error);
      return;
    }
    if (!this._move(RECONNECTING, reason) || this._lifecycle._paused) return;
    this._emit('reconnect', { attempt: r._attempts + 1, delayMs: r._schedule(delayMs) });
  }

  private _shutdown(reason: StateReason, error: IMError, announce?: () => void): void {
    this._closeLink();
    this._reconnect._cancel();
    // With a durable outbox, destroy() and a first login that could not connect keep the stored messages
    // for the next login (their promises reject, no loss is reported); every other stop settles them as lost.
    const keep = this._o._outboxStore !== null && SETTLES_OUTBOX.indexOf(reason) < 0;
    this._persistence._stop(keep);
    const lost = this._outbox._drain();
    const waiter = this._loginWaiter;
    this._loginWaiter = null;
    this._lifecycle._unwatch();
    this._move(CLOSED, reason);
    if (waiter) waiter._reject(error);
    else if (reason === 'login-rejected') this._emit('error', error);
    if (announce) announce();
    for (const item of lost) {
      item._reject(error);
      if (!keep) this._emit('lost', { message: item.message, error });
    }
  }

  private _receive(data: string | ArrayBuffer | Uint8Array): void {
    const frame = this._decode(() => decodeFrame(typeof data === 'string' ? data : decodeText(data instanceof Uint8Array ? data : new Uint8Array(data))));
    if (!frame) return;
    this._keepAlive._heard();
    if (frame.QoS && frame.fp != null && frame.type !== TYPE_ACK && frame.type !== TYPE_LOGIN_RESPONSE) {
      // ACK every QoS frame, duplicates included. `from` is our own id rather than the frame's
      // `to`, so a server that checks the sender (ours does) accepts it. MobileIMSDK never ACKs a type 50.
      this._write(this._frame(TYPE_ACK, frame.fp, frame.from || SERVER_ID));
    }
    switch (frame.type) {
      case TYPE_LOGIN_RESPONSE:
        return this._onLoginResponse(frame);
      case TYPE_DATA:
        // Keyed by sender and fp: another user's message with the same fp is not a duplicate.
        if (frame.QoS && frame.fp != null && this._inbox.checkAndAdd(JSON.stringify([frame.from, frame.fp]), this._o._clock.now())) return;
        return this._emit('message', {
          fp: frame.fp,
          from: frame.from || '',
          to: frame.to || '',
          content: frame.dataContent || '',
          typeu: frame.typeu,
          qos: frame.QoS,
          serverTime: frame.sm > 0 ? frame.sm : null,
        });
      case TYPE_ACK:
        if (frame.dataContent == null) return;
        this._outbox._ack(frame.dataContent);
        // Our server's ACK that also says the receiver's device has the message (granted at login).
        if (frame.typeu === TYPE_RECEIPT && this._caps & CAP_RECEIPT_IN_ACK) this._emit('received', { fp: frame.dataContent, to: frame.from || '', at: frame.sm });
        return;
      case TYPE_ECHO_RESPONSE:
        return this._echoes._reply(frame.dataContent);
      case TYPE_ERROR:
        return this._onServerError(frame.dataContent);
      case TYPE_KICKOUT:
        return this._onKickout(frame.dataContent);
      case TYPE_RECEIPT:
        return this._onReceipt(frame);
      case TYPE_KEEP_ALIVE_RESPONSE:
        return;
      default:
        this._o._logger.debug(`ignored frame type ${frame.type}`);
    }
  }

  private _onLoginResponse(frame: Protocal): void {
    if (this._current !== AUTHENTICATING || !this._credentials) return;
    const res = this._decode(() => decodeLoginResponse(frame.dataContent));
    if (!res) return this._linkLost('protocol-error', 'malformed login response');
    if (res.code !== 0) {
      const error = new IMError('LOGIN_REJECTED', `login rejected with code ${res.code}`, res.code);
      return this._shutdown('login-rejected', error);
    }
    if (this._firstLogin <= 0 && res.firstLoginTime > 0) this._firstLogin = res.firstLoginTime;
    this._maxMessageBytes = res.maxMessageBytes || 0;
    this._caps = res.caps;
    this._loginTimer._cancel();
    this._reconnect._attempts = 0;
    this._keepAlive._start();
    // A `state` listener may stop the client here; its shutdown then rejects the waiting login().
    if (!this._move(ONLINE, 'logged-in')) return;
    const waiter = this._loginWaiter;
    this._loginWaiter = null;
    this._outbox._linkUp();
    if (waiter) waiter._resolve({ userId: this._credentials.userId, firstLoginTime: this._firstLogin });
  }

  private _onServerError(dataContent: string | null): void {
    // An error frame we cannot read names no message (fp) and no limit.
    let info: Pick<ErrorResponse, 'errorCode' | 'errorMsg'> & Partial<ErrorResponse>;
    try {
      info = decodeErrorResponse(dataContent);
    } catch {
      info = { errorCode: -1, errorMsg: dataContent || '' };
    }
    const code = info.errorCode;
    const words = `server error ${code}: ${info.errorMsg}`;
    // Our server names the message it refuses: that message is lost now, not after the QoS timeout.
    const refused = new IMError('MESSAGE_REFUSED', `message ${info.fp} refused: ${words}`, code, undefined, { limit: info.limit || undefined });
    if (info.fp != null && this._outbox._refuse(info.fp, refused)) return;
    this._emit('error', new IMError('SERVER_ERROR', words, code));
    // 301: the server has no session for this socket; log in again.
    if (code === ERROR_UNLOGIN) this._linkLost('server-unlogin', words);
    if (code === ERROR_GOING_AWAY) this._goneAway();
  }

  private _onReceipt(frame: Protocal): void {
    const r = this._decode(() => decodeReceipt(frame.dataContent));
    if (r) this._emit('received', { fp: r.fp, to: frame.from || '', at: r.at });
  }

  /** Runs a decoder; what it cannot read is reported as a `PROTOCOL_ERROR` event and gives null. */
  private _decode<T>(decode: () => T): T | null {
    try {
      return decode();
    } catch (error) {
      this._emit('error', new IMError('PROTOCOL_ERROR', `malformed frame: ${(error as Error).message}`, undefined, error));
      return null;
    }
  }

  private _onKickout(dataContent: string | null): void {
    let info;
    try {
      info = decodeKickoutInfo(dataContent);
    } catch {
      info = { code: -1 };
    }
    const kicked = { code: info.code, reason: info.reason || '' };
    const error = new IMError('KICKED', `kicked out (code ${info.code})`, info.code);
    this._shutdown('kicked', error, () => this._emit('kicked', kicked));
  }
}
