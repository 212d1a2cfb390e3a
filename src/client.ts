import { backoffDelay } from './backoff';
import { Timer } from './clock';
import { SafeEmitter } from './emitter';
import { IMError } from './errors';
import { KeepAlive } from './keepalive';
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
import { ClientState, type ClientStateName } from './state';
import type { LifecycleEvent, SocketConnection } from './transport';
import { decodeText, utf8Length } from './utf8';

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: IMError): void;
}

interface PendingEcho extends Waiter<{ rttMs: number }> {
  sentAt: number;
  timer: Timer;
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
  private readonly _retryTimer: Timer;
  private readonly _tokenTimer: Timer;
  private _tokenTimeout: () => void = () => undefined;
  private readonly _echoes = new Map<string, PendingEcho>();
  private _current: ClientStateName = ClientState.IDLE;
  private _link: SocketConnection | null = null;
  private _generation = 0;
  private _credentials: { userId: string; token: string; extra?: string } | null = null;
  private _firstLogin = 0;
  private _attempts = 0;
  private _loginWaiter: Waiter<LoginResult> | null = null;
  private _stopLifecycle: (() => void) | null = null;
  private _networkDown = false;
  private _background = false;
  private _destroyed = false;

  constructor(options: IMClientOptions) {
    const o = (this._o = resolveOptions(options));
    this._events = new SafeEmitter<ClientEvents>((type, error) => o.logger.error(`a "${String(type)}" listener threw`, error));
    this._inbox = new DedupWindow(o.qos.dedupTtlMs, o.qos.dedupMax);
    this._outbox = new QosOutbox(o.clock, o.qos, {
      write: (frame) => this._current === ClientState.ONLINE && this._write(frame),
      delivered: (message) => this._events.emit('delivered', { fp: message.fp as string, message }),
      lost: (message, error) => this._events.emit('lost', { message, error }),
      changed: () => this._persistence.changed(),
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
    this._retryTimer = new Timer(o.clock, () => this._reconnectAttempt());
    this._tokenTimer = new Timer(o.clock, () => this._tokenTimeout());
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
    return { pending: this._outbox.size, dedupEntries: this._inbox.size, reconnectAttempts: this._attempts };
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
    // The received-message window outlives a logout, so a message replayed after the next login is not
    // shown twice; only another user's login starts it afresh.
    if (this.userId !== params.userId) this._inbox.clear();
    this._credentials = { userId: params.userId, token: params.token || '', extra: params.extra };
    this._firstLogin = params.firstLoginTime || 0;
    this._attempts = 0;
    this._watchLifecycle();
    this._persistence.restore(params.userId);
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
    return this._outbox.enqueue(frame);
  }

  /** Sends an echo (type 5) and resolves with the round-trip time when the server's reply arrives. */
  echo(): Promise<{ rttMs: number }> {
    if (this._current !== ClientState.ONLINE) return Promise.reject(new IMError('NOT_ONLINE', 'echo() needs an online client'));
    const token = 'echo-' + createFingerprint(this._o.random);
    return new Promise((resolve, reject) => {
      const timer = new Timer(this._o.clock, () => {
        this._echoes.delete(token);
        reject(new IMError('ECHO_TIMEOUT', `no echo reply within ${this._o.echoTimeoutMs} ms`));
      });
      this._echoes.set(token, { sentAt: this._o.clock.now(), timer, resolve, reject });
      timer.arm(this._o.echoTimeoutMs);
      this._write(this._frame(MsgType.ECHO, token));
    });
  }

  /** Re-logs in at once, skipping the backoff wait (only while reconnecting). */
  reconnectNow(): void {
    if (this._current !== ClientState.RECONNECTING) return;
    this._attempts = 0;
    this._reconnectAttempt();
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
    this._unwatchLifecycle();
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

  private _move(to: ClientStateName, reason: StateReason): void {
    const from = this._current;
    if (from === to) return;
    this._current = to;
    this._events.emit('state', { from, to, reason });
  }

  private _openLink(token: string, reason: StateReason): void {
    this._closeLink();
    const gen = this._generation;
    this._move(ClientState.CONNECTING, reason);
    if (gen !== this._generation || this._current !== ClientState.CONNECTING) return;
    this._loginTimer.arm(this._o.loginTimeoutMs);
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
    if (!c || this._current !== ClientState.CONNECTING) return;
    const gen = this._generation;
    this._move(ClientState.AUTHENTICATING, 'socket-open');
    if (gen !== this._generation) return;
    const info = { loginUserId: c.userId, loginToken: token, extra: c.extra, firstLoginTime: this._firstLogin };
    this._write(this._frame(MsgType.LOGIN, encodeLoginInfo(info)));
  }

  private _closeLink(): void {
    this._generation++;
    const link = this._link;
    this._link = null;
    this._keepAlive.stop();
    this._loginTimer.cancel();
    this._outbox.linkDown();
    this._echoes.forEach((e) => {
      e.timer.cancel();
      e.reject(new IMError('CONNECTION_LOST', 'the link closed before the echo reply'));
    });
    this._echoes.clear();
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
    this._scheduleReconnect(reason, reason === 'probe-timeout');
  }

  private _scheduleReconnect(reason: StateReason, immediate: boolean): void {
    if (this._stopped()) return;
    const r = this._o.reconnect;
    if (this._attempts >= r.maxAttempts) {
      const error = new IMError('RECONNECT_FAILED', `gave up after ${this._attempts} reconnect attempts`);
      this._shutdown('reconnect-failed', error);
      this._events.emit('error', error);
      return;
    }
    const gen = this._generation;
    this._move(ClientState.RECONNECTING, reason);
    if (gen !== this._generation || this._current !== ClientState.RECONNECTING || this._networkDown || this._background) return;
    const delayMs = immediate ? 0 : backoffDelay(this._attempts, r.minDelayMs, r.maxDelayMs, this._o.random);
    this._retryTimer.arm(delayMs);
    this._events.emit('reconnect', { attempt: this._attempts + 1, delayMs });
  }

  private _reconnectAttempt(): void {
    this._retryTimer.cancel();
    const c = this._credentials;
    if (this._current !== ClientState.RECONNECTING || !c) return;
    this._attempts++;
    const gen = ++this._generation;
    const getToken = this._o.getToken;
    if (!getToken) return this._openLink(c.token, 'retry');
    // Waiting for a token counts against the login timeout, so a token endpoint that hangs cannot
    // leave the client waiting for ever.
    const stale = (): boolean => gen !== this._generation || this._current !== ClientState.RECONNECTING;
    const fail = (error: unknown, message: string): void => {
      if (stale()) return;
      this._tokenTimer.cancel();
      this._generation++;
      this._events.emit('error', new IMError('TOKEN_ERROR', message, undefined, error));
      if (this._current === ClientState.RECONNECTING) this._scheduleReconnect('retry', false);
    };
    this._tokenTimer.arm(this._o.loginTimeoutMs);
    this._tokenTimeout = () => fail(undefined, `getToken() did not answer within ${this._o.loginTimeoutMs} ms`);
    Promise.resolve()
      .then(getToken)
      .then(
        (token) => {
          if (stale()) return;
          if (typeof token !== 'string') return fail(token, 'getToken() must resolve with a string');
          this._tokenTimer.cancel();
          c.token = token;
          if (!this._networkDown && !this._background) this._openLink(token, 'retry');
        },
        (error: unknown) => fail(error, 'getToken() failed; retrying'),
      );
  }

  private _shutdown(reason: StateReason, error: IMError, announce?: () => void): void {
    this._closeLink();
    this._retryTimer.cancel();
    this._tokenTimer.cancel();
    // With a durable outbox, destroy() and a first login that could not connect keep the stored messages
    // for the next login (their promises reject, no loss is reported); every other stop settles them as lost.
    const keep = this._o.outboxStore !== null && SETTLES_OUTBOX.indexOf(reason) < 0;
    this._persistence.stop(keep);
    const lost = this._outbox.drain();
    const waiter = this._loginWaiter;
    this._loginWaiter = null;
    this._unwatchLifecycle();
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
    this._keepAlive.heard();
    if (frame.QoS && frame.fp != null && frame.type !== MsgType.ACK && frame.type !== MsgType.LOGIN_RESPONSE) {
      // ACK every QoS frame, duplicates included. `from` is our own id rather than the frame's
      // `to`, so a server that checks the sender (ours does) accepts it. MobileIMSDK never ACKs a type 50.
      this._write(this._frame(MsgType.ACK, frame.fp, frame.from || SERVER_ID));
    }
    switch (frame.type) {
      case MsgType.LOGIN_RESPONSE:
        return this._onLoginResponse(frame);
      case MsgType.DATA:
        // Keyed by sender and fp: another user's message with the same fp is not a duplicate.
        if (frame.QoS && frame.fp != null && this._inbox.checkAndAdd(JSON.stringify([frame.from, frame.fp]), this._o.clock.now())) return;
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
        if (frame.dataContent != null) this._outbox.ack(frame.dataContent);
        return;
      case MsgType.ECHO_RESPONSE:
        return this._onEcho(frame.dataContent);
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
    this._loginTimer.cancel();
    this._attempts = 0;
    const gen = this._generation;
    this._keepAlive.start();
    // A `state` listener may stop the client here; its shutdown then rejects the waiting login().
    this._move(ClientState.ONLINE, 'logged-in');
    if (gen !== this._generation) return;
    const waiter = this._loginWaiter;
    this._loginWaiter = null;
    this._outbox.linkUp();
    if (waiter) waiter.resolve({ userId: this._credentials.userId, firstLoginTime: this._firstLogin });
  }

  private _onEcho(token: string | null): void {
    const pending = token == null ? undefined : this._echoes.get(token);
    if (!pending || token == null) return;
    this._echoes.delete(token);
    pending.timer.cancel();
    pending.resolve({ rttMs: this._o.clock.now() - pending.sentAt });
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

  private _watchLifecycle(): void {
    const watch = this._o.adapter.watchLifecycle;
    if (!watch || this._stopLifecycle) return;
    this._stopLifecycle = watch.call(this._o.adapter, (event) => {
      try {
        this._onLifecycle(event);
      } catch (error) {
        this._o.logger.error('internal error handling a lifecycle event', error);
      }
    });
  }

  private _unwatchLifecycle(): void {
    const stop = this._stopLifecycle;
    this._stopLifecycle = null;
    this._networkDown = false;
    this._background = false;
    try {
      if (stop) stop();
    } catch (error) {
      this._o.logger.warn('adapter lifecycle stop failed', error);
    }
  }

  private _onLifecycle(event: LifecycleEvent): void {
    if (event === 'offline' || event === 'background') {
      if (event === 'offline') this._networkDown = true;
      else this._background = true;
      // Network loss closes at once; in the background retries pause until the app returns.
      if (event === 'offline') this._linkLost('offline');
      if (this._current === ClientState.RECONNECTING) this._retryTimer.cancel();
      return;
    }
    if (event === 'online') this._networkDown = false;
    else this._background = false;
    if (this._networkDown || this._background) return;
    if (this._current === ClientState.ONLINE) this._keepAlive.probe(this._o.probeTimeoutMs);
    else this.reconnectNow();
  }
}
