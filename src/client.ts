import { Timer } from './clock';
import { EchoRequests } from './echo';
import { SafeEmitter } from './emitter';
import { IMError } from './errors';
import { KeepAlive } from './keepalive';
import { Lifecycle } from './lifecycle';
import { resolveOptions, type IMClientOptions, type ResolvedOptions } from './options';
import {
  MsgType,
  ERROR_UNLOGIN,
  SERVER_ID,
  createFingerprint,
  createFrame,
  decodeErrorResponse,
  decodeFrame,
  decodeKickoutInfo,
  decodeLoginResponse,
  encodeFrame,
  encodeLoginInfo,
  type Protocal,
} from './protocol';
import type { ClientEvents, LoginParams, LoginResult, SendOptions, StateReason } from './client-types';
import { DedupWindow } from './dedup-window';
import { OutboxPersistence } from './outbox-persistence';
import { QosOutbox, type SendReceipt } from './qos-outbox';
import { Reconnect } from './reconnect';
import { ClientState, type ClientStateName } from './state';
import type { SocketConnection } from './transport';
import { decodeText, utf8Length } from './utf8';

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: IMError): void;
}

const DESTROYED = 'this client was destroyed; create a new one';
const ACTIVE: readonly ClientStateName[] = [ClientState.CONNECTING, ClientState.AUTHENTICATING, ClientState.ONLINE];
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
export class IMClient {
  private readonly _o: ResolvedOptions;
  private readonly _events: SafeEmitter<ClientEvents>;
  private readonly _inbox: DedupWindow;
  private readonly _outbox: QosOutbox;
  private readonly _persistence: OutboxPersistence;
  private readonly _keepAlive: KeepAlive;
  private readonly _loginTimer: Timer;
  private readonly _reconnect: Reconnect;
  private readonly _lifecycle: Lifecycle;
  private readonly _echoes: EchoRequests;
  private _current: ClientStateName = ClientState.IDLE;
  private _link: SocketConnection | null = null;
  /** Bumped whenever the link closes or the client moves; callbacks of an older value are stale. */
  private _generation = 0;
  private _credentials: { userId: string; token: string; extra?: string } | null = null;
  private _firstLogin = 0;
  private _loginWaiter: Waiter<LoginResult> | null = null;
  private _destroyed = false;

  constructor(options: IMClientOptions) {
    const o = (this._o = resolveOptions(options));
    this._events = new SafeEmitter<ClientEvents>((type, error) => o.logger.error(`a "${String(type)}" listener threw`, error));
    this._inbox = new DedupWindow(o.qos.dedupTtlMs, o.qos.dedupMax);
    this._outbox = new QosOutbox(o.clock, o.qos, {
      _write: (frame) => this._current === ClientState.ONLINE && this._write(frame),
      _delivered: (message) => this._events.emit('delivered', { fp: message.fp as string, message }),
      _lost: (message, error) => this._events.emit('lost', { message, error }),
      _changed: () => this._persistence._changed(),
    });
    this._persistence = new OutboxPersistence(o.outboxStore, this._outbox, o.logger);
    this._keepAlive = new KeepAlive(
      o.clock,
      o.keepAlive.intervalMs,
      o.keepAlive.timeoutMs,
      () => this._write(this._frame(MsgType.KEEP_ALIVE, '{}')),
      (reason) => this._linkLost(reason),
    );
    this._loginTimer = new Timer(o.clock, () => this._linkLost('login-timeout'));
    this._echoes = new EchoRequests(o.clock, o.echoTimeoutMs);
    this._reconnect = new Reconnect(o, {
      _due: () => this._current === ClientState.RECONNECTING && !!this._credentials,
      _open: (token) => {
        const c = this._credentials as { token: string };
        if (token !== null) {
          c.token = token;
          if (this._lifecycle._paused) return;
        }
        this._openLink(c.token, 'retry');
      },
      _tokenFailed: (error) => {
        this._events.emit('error', error);
        if (this._current === ClientState.RECONNECTING) this._scheduleReconnect('retry');
      },
    });
    this._lifecycle = new Lifecycle(o.adapter, o.logger, {
      _pause: (offline) => {
        // Network loss closes at once; in the background retries pause until the app returns.
        if (offline) this._linkLost('offline');
        if (this._current === ClientState.RECONNECTING) this._reconnect._pause();
      },
      _resume: () => {
        if (this._current === ClientState.ONLINE) this._keepAlive._probe(o.probeTimeoutMs);
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

  /** The first-login time the server gave this session (0 before it answered). */
  get firstLoginTime(): number {
    return this._firstLogin;
  }

  /** Counters for dashboards and tests. */
  stats(): { pending: number; dedupEntries: number; reconnectAttempts: number } {
    return { pending: this._outbox._size, dedupEntries: this._inbox.size, reconnectAttempts: this._reconnect._attempts };
  }

  /** Adds a listener; returns the function that removes it. A listener that throws is logged, never fatal. */
  on<K extends keyof ClientEvents>(type: K, listener: (event: ClientEvents[K]) => void): () => void {
    return this._events.on(type, listener);
  }

  /** Removes one listener. */
  off<K extends keyof ClientEvents>(type: K, listener: (event: ClientEvents[K]) => void): void {
    this._events.off(type, listener);
  }

  /** Adds a listener for the next event of `type` only. */
  once<K extends keyof ClientEvents>(type: K, listener: (event: ClientEvents[K]) => void): () => void {
    return this._events.once(type, listener);
  }

  /**
   * Connects and logs in. Resolves on the server's code 0; rejects with an `IMError` carrying the server's
   * code (`LOGIN_REJECTED`), or `LOGIN_TIMEOUT` / `CONNECT_FAILED`. Once logged in, the client keeps the
   * session alive and logs in again by itself until `logout()`, a kickout or a rejected re-login.
   */
  login(params: LoginParams): Promise<LoginResult> {
    if (!params || typeof params.userId !== 'string' || params.userId === '') {
      throw new TypeError('login({ userId, token?, extra? }): userId must be a non-empty string');
    }
    if (params.token !== undefined && typeof params.token !== 'string') throw new TypeError('login(): token must be a string');
    if (params.extra !== undefined && typeof params.extra !== 'string') throw new TypeError('login(): extra must be a string');
    if (this._destroyed) return Promise.reject(new IMError('DESTROYED', DESTROYED));
    if (!this._stopped()) {
      return Promise.reject(new IMError('ALREADY_ACTIVE', `login() needs a logged-out client; the state is ${this._current}`));
    }
    this._credentials = { userId: params.userId, token: params.token || '', extra: params.extra };
    this._firstLogin = 0;
    this._reconnect._attempts = 0;
    this._lifecycle._watch();
    this._persistence._restore(params.userId);
    const result = new Promise<LoginResult>((resolve, reject) => (this._loginWaiter = { resolve, reject }));
    this._openLink(this._credentials.token, 'login');
    return result;
  }

  /**
   * Sends `content` to user `to` (`"0"` is the server). With QoS (the default) it resolves when the ACK
   * arrives and rejects when the message is lost; while the link is down it waits in the outbox.
   */
  send(to: string, content: string, options: SendOptions = {}): Promise<SendReceipt> {
    if (typeof to !== 'string' || to === '') throw new TypeError('send(to, content): to must be a user id, or "0" for the server');
    if (typeof content !== 'string') throw new TypeError('send(to, content): content must be a string (JSON.stringify objects first)');
    if (options.typeu !== undefined && !Number.isInteger(options.typeu)) throw new TypeError('send(): typeu must be an integer');
    if (this._destroyed) return Promise.reject(new IMError('DESTROYED', DESTROYED));
    if (!this._credentials || this._stopped()) {
      return Promise.reject(new IMError('NOT_ONLINE', 'send() needs a login first'));
    }
    const qos = options.qos !== false;
    const fp = options.fp || (qos ? createFingerprint(this._o.random) : null);
    const frame = this._frame(MsgType.DATA, content, to, { fp, QoS: qos, typeu: options.typeu === undefined ? -1 : options.typeu });
    // MobileIMSDK closes a connection that sends an oversize frame: refuse it here instead.
    const max = this._o.adapter.maxFrameBytes || 65536;
    const bytes = utf8Length(encodeFrame(frame));
    if (bytes > max) return Promise.reject(new IMError('MESSAGE_TOO_LARGE', `a ${bytes}-byte frame exceeds the ${max}-byte limit`));
    return this._outbox._enqueue(frame);
  }

  /** Sends an echo (type 5) and resolves with the round-trip time when the server's reply arrives. */
  echo(): Promise<{ rttMs: number }> {
    if (this._current !== ClientState.ONLINE) return Promise.reject(new IMError('NOT_ONLINE', 'echo() needs an online client'));
    const token = 'echo-' + createFingerprint(this._o.random);
    const reply = this._echoes._wait(token);
    this._write(this._frame(MsgType.ECHO, token));
    return reply;
  }

  /** Re-logs in at once, skipping the backoff wait (only while reconnecting). */
  reconnectNow(): void {
    if (this._current !== ClientState.RECONNECTING) return;
    this._reconnect._attempts = 0;
    this._reconnect._attempt();
  }

  /** Sends a logout (type 3) when online, closes the socket and stops everything; waiting messages are lost. */
  logout(): Promise<void> {
    if (this._stopped()) return Promise.resolve();
    if (this._current === ClientState.ONLINE) this._write(this._frame(MsgType.LOGOUT, null));
    this._shutdown('logout', new IMError('LOGGED_OUT', 'logged out before the message was delivered'));
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
    this._events.clear();
  }

  /** Before the first login, or after a stop: nothing runs and nothing is sent. */
  private _stopped(): boolean {
    return this._current === ClientState.IDLE || this._current === ClientState.CLOSED;
  }

  private _frame(type: number, dataContent: string | null, to: string = SERVER_ID, extra: Partial<Protocal> = {}): Protocal {
    return createFrame({ type, dataContent, from: this._credentials ? this._credentials.userId : '-1', to, ...extra });
  }

  private _write(frame: Protocal): boolean {
    if (!this._link) return false;
    try {
      this._link.send(encodeFrame(frame));
      return true;
    } catch (error) {
      this._o.logger.warn('socket send failed', error);
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
      this._events.emit('state', { from, to, reason });
    }
    return gen === this._generation && this._current === to;
  }

  private _openLink(token: string, reason: StateReason): void {
    this._closeLink();
    if (!this._move(ClientState.CONNECTING, reason)) return;
    const gen = this._generation;
    this._loginTimer._arm(this._o.loginTimeoutMs);
    const guard = <A extends unknown[]>(fn: (...args: A) => void) => (...args: A): void => {
      if (gen !== this._generation) return;
      try {
        fn(...args);
      } catch (error) {
        this._o.logger.error('internal error in a socket callback', error);
      }
    };
    try {
      this._link = this._o.adapter.connect(this._o.url, {
        onOpen: guard(() => this._authenticate(token)),
        onMessage: guard((data) => this._receive(data)),
        onClose: guard(() => this._linkLost('socket-closed')),
        onError: guard((error) => this._o.logger.warn('socket error', error)),
      });
    } catch (error) {
      this._o.logger.warn('adapter.connect threw', error);
      this._linkLost('connect-failed');
    }
  }

  private _authenticate(token: string): void {
    const c = this._credentials;
    if (!c || this._current !== ClientState.CONNECTING || !this._move(ClientState.AUTHENTICATING, 'socket-open')) return;
    const info = { loginUserId: c.userId, loginToken: token, extra: c.extra, firstLoginTime: this._firstLogin };
    this._write(this._frame(MsgType.LOGIN, encodeLoginInfo(info)));
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
        this._o.logger.warn('socket close failed', error);
      }
    }
  }

  private _linkLost(reason: StateReason): void {
    if (ACTIVE.indexOf(this._current) < 0) return;
    this._closeLink();
    if (this._loginWaiter) {
      const error =
        reason === 'login-timeout'
          ? new IMError('LOGIN_TIMEOUT', `no login response within ${this._o.loginTimeoutMs} ms`)
          : new IMError('CONNECT_FAILED', `could not log in to ${this._o.url} (${reason})`);
      this._shutdown(reason, error);
      return;
    }
    this._scheduleReconnect(reason, reason === 'probe-timeout' ? 0 : undefined);
  }

  /** Waits `delayMs` (the backoff when undefined), then logs in again; gives up after `maxAttempts`. */
  private _scheduleReconnect(reason: StateReason, delayMs?: number): void {
    if (this._stopped()) return;
    const r = this._reconnect;
    if (r._exhausted) {
      const error = new IMError('RECONNECT_FAILED', `gave up after ${r._attempts} reconnect attempts`);
      this._shutdown('reconnect-failed', error);
      this._events.emit('error', error);
      return;
    }
    if (!this._move(ClientState.RECONNECTING, reason) || this._lifecycle._paused) return;
    this._events.emit('reconnect', { attempt: r._attempts + 1, delayMs: r._schedule(delayMs) });
  }

  private _shutdown(reason: StateReason, error: IMError, announce?: () => void): void {
    this._closeLink();
    this._reconnect._cancel();
    // With a durable outbox, destroy() and a first login that could not connect keep the stored messages
    // for the next login (their promises reject, no loss is reported); every other stop settles them as lost.
    const keep = this._o.outboxStore !== null && SETTLES_OUTBOX.indexOf(reason) < 0;
    this._persistence._stop(keep);
    const lost = this._outbox._drain();
    this._inbox.clear();
    const waiter = this._loginWaiter;
    this._loginWaiter = null;
    this._lifecycle._unwatch();
    this._move(ClientState.CLOSED, reason);
    if (waiter) waiter.reject(error);
    else if (reason === 'login-rejected') this._events.emit('error', error);
    if (announce) announce();
    for (const item of lost) {
      item.reject(error);
      if (!keep) this._events.emit('lost', { message: item.message, error });
    }
  }

  private _receive(data: string | ArrayBuffer | Uint8Array): void {
    let frame: Protocal;
    try {
      const text = typeof data === 'string' ? data : decodeText(data instanceof Uint8Array ? data : new Uint8Array(data));
      frame = decodeFrame(text);
    } catch (error) {
      this._events.emit('error', new IMError('PROTOCOL_ERROR', `malformed frame from the server: ${(error as Error).message}`, undefined, error));
      return;
    }
    this._keepAlive._heard();
    if (frame.QoS && frame.fp != null && frame.type !== MsgType.ACK && frame.type !== MsgType.LOGIN_RESPONSE) {
      // ACK every QoS frame, duplicates included. `from` is our own id rather than the frame's
      // `to`, so a server that checks the sender (ours does) accepts it. MobileIMSDK never ACKs a type 50.
      this._write(this._frame(MsgType.ACK, frame.fp, frame.from || SERVER_ID));
    }
    switch (frame.type) {
      case MsgType.LOGIN_RESPONSE:
        return this._onLoginResponse(frame);
      case MsgType.DATA:
        if (frame.QoS && frame.fp != null && this._inbox.checkAndAdd(frame.fp, this._o.clock.now())) return;
        return this._events.emit('message', {
          fp: frame.fp,
          from: frame.from || '',
          to: frame.to || '',
          content: frame.dataContent || '',
          typeu: frame.typeu,
          qos: frame.QoS,
          serverTime: frame.sm > 0 ? frame.sm : null,
        });
      case MsgType.ACK:
        if (frame.dataContent != null) this._outbox._ack(frame.dataContent);
        return;
      case MsgType.ECHO_RESPONSE:
        return this._echoes._reply(frame.dataContent);
      case MsgType.ERROR:
        return this._onServerError(frame.dataContent);
      case MsgType.KICKOUT:
        return this._onKickout(frame.dataContent);
      case MsgType.KEEP_ALIVE_RESPONSE:
        return;
      default:
        this._o.logger.debug(`ignored a frame of unknown type ${frame.type}`);
    }
  }

  private _onLoginResponse(frame: Protocal): void {
    if (this._current !== ClientState.AUTHENTICATING || !this._credentials) return;
    let res;
    try {
      res = decodeLoginResponse(frame.dataContent);
    } catch (error) {
      this._events.emit('error', new IMError('PROTOCOL_ERROR', `malformed login response: ${(error as Error).message}`));
      return this._linkLost('protocol-error');
    }
    if (res.code !== 0) {
      const error = new IMError('LOGIN_REJECTED', `the server rejected the login with code ${res.code}`, res.code);
      return this._shutdown('login-rejected', error);
    }
    if (this._firstLogin <= 0 && res.firstLoginTime > 0) this._firstLogin = res.firstLoginTime;
    this._loginTimer._cancel();
    this._reconnect._attempts = 0;
    this._keepAlive._start();
    // A `state` listener may stop the client here; its shutdown then rejects the waiting login().
    if (!this._move(ClientState.ONLINE, 'logged-in')) return;
    const waiter = this._loginWaiter;
    this._loginWaiter = null;
    this._outbox._linkUp();
    if (waiter) waiter.resolve({ userId: this._credentials.userId, firstLoginTime: this._firstLogin });
  }

  private _onServerError(dataContent: string | null): void {
    let info;
    try {
      info = decodeErrorResponse(dataContent);
    } catch {
      info = { errorCode: -1, errorMsg: dataContent || '' };
    }
    this._events.emit('error', new IMError('SERVER_ERROR', `server error ${info.errorCode}: ${info.errorMsg}`, info.errorCode));
    // 301: the server has no session for this socket; log in again.
    if (info.errorCode === ERROR_UNLOGIN) this._linkLost('server-unlogin');
  }

  private _onKickout(dataContent: string | null): void {
    let info;
    try {
      info = decodeKickoutInfo(dataContent);
    } catch {
      info = { code: -1 };
    }
    const kicked = { code: info.code, reason: info.reason || '' };
    const error = new IMError('KICKED', `kicked out by the server (code ${info.code})`, info.code);
    this._shutdown('kicked', error, () => this._events.emit('kicked', kicked));
  }
}
