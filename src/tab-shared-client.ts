import { IMError, ClientState, systemClock, type ClientEvents, type ClientStateName, type Clock, type IMClientOptions } from './index';
import type { LoginParams, LoginResult, SendOptions, StateReason } from './client-types';
import { Timer } from './clock';
import { DedupWindow } from './dedup-window';
import { SafeEmitter } from './emitter';
import { silentLogger, type Logger } from './logger';
import { createFingerprint } from './protocol';
import type { SendReceipt } from './qos-outbox';
import { canMove } from './state';
import { LeaderTerm } from './tab-shared-leader';
import { TabLink, type TabSharing } from './tab-shared-link';
import { PendingRequests } from './tab-shared-pending';
import { decodeError, decodeEvent, encodeError, encodeEvent, errorFor, type SendRequest, type WireMessage } from './tab-shared-wire';

const DESTROYED = 'this client was destroyed; create a new one';
const STATES: ClientStateName[] = ['idle', 'connecting', 'authenticating', 'online', 'reconnecting', 'closed'];

/** The states to pass through from `from` to `to` along the transition table (a follower may miss steps). */
function path(from: ClientStateName, to: ClientStateName): ClientStateName[] {
  if (from === to) return [];
  if (canMove(from, to)) return [to];
  const back: Partial<Record<ClientStateName, ClientStateName>> = {};
  const queue: ClientStateName[] = [from];
  while (queue.length) {
    const at = queue.shift() as ClientStateName;
    for (const next of STATES) {
      if (next === from || back[next] || !canMove(at, next)) continue;
      back[next] = at;
      if (next === to) {
        const out: ClientStateName[] = [];
        for (let s: ClientStateName = to; s !== from; s = back[s] as ClientStateName) out.unshift(s);
        return out;
      }
      queue.push(next);
    }
  }
  return [to];
}

/**
 * An {@link IMClient} look-alike shared by the tabs of one origin and user: one tab (the leader, elected
 * with a Web Lock held for its lifetime) holds the socket; the others reach it over a BroadcastChannel.
 *
 * ```
 *  login() ── hello ──> a leader answers (sync) ──────────────> follower: events and replies by channel
 *     └── lock granted ──> leader: logs in (a takeover: with the session's firstLoginTime, then every
 *                           tab sends again what is still pending, with the same fingerprints)
 * ```
 */
/** This tab's own events: the core's emitter, with emitting and clearing reachable from the client. */
class TabEvents extends SafeEmitter<ClientEvents> {
  constructor(private readonly _failed: (type: keyof ClientEvents, error: unknown) => void) {
    super();
  }

  emit<K extends keyof ClientEvents>(type: K, event: ClientEvents[K]): void {
    this._emit(type, event);
  }

  clear(): void {
    this._clear();
  }

  protected _listenerFailed(type: keyof ClientEvents, error: unknown): void {
    this._failed(type, error);
  }
}

export class TabSharedClient {
  private readonly _events: TabEvents;
  private readonly _clock: Clock;
  private readonly _random: () => number;
  private readonly _logger: Logger;
  private readonly _tab: string;
  private readonly _dedup = new DedupWindow(600000, 10000);
  private readonly _pending = new PendingRequests();
  private readonly _peers = new Set<string>();
  private readonly _link: TabLink;
  private readonly _finalTimer: Timer;
  private _state: ClientStateName = ClientState.IDLE;
  /** Why the state last changed, told to a tab that joins. */
  private _reason: StateReason = 'login';
  private _login: { userId: string; token: string; extra?: string; firstLoginTime: number } | null = null;
  private _waiter: { resolve(r: LoginResult): void; reject(e: unknown): void } | null = null;
  private _term: LeaderTerm | null = null;
  private _session = 0;
  private _sid: string | null = null;
  private _leader: string | null = null;
  private _destroyed = false;

  constructor(private readonly _o: IMClientOptions, private readonly _sharing: TabSharing) {
    this._link = new TabLink(_sharing, _o.clock || systemClock, _o.logger || silentLogger, (m) => this._onWire(m));
    this._clock = _o.clock || systemClock;
    this._random = _o.random || Math.random;
    this._logger = _o.logger || silentLogger;
    this._tab = createFingerprint(this._random);
    this._events = new TabEvents((type, error) => this._logger.error(`a "${String(type)}" listener threw`, error));
    this._finalTimer = new Timer(this._clock, () => this._pending.rejectAll(errorFor('socket-closed')));
  }

  /** The connection state, as the leader's client reports it. */
  get state(): ClientStateName {
    return this._state;
  }

  /** The user id of the current or last login, or null before the first. */
  get userId(): string | null {
    return this._login ? this._login.userId : null;
  }

  /** The session's first-login time (0 before the server answered). */
  get firstLoginTime(): number {
    return this._login ? this._login.firstLoginTime : 0;
  }

  /** Whether this tab holds the socket. */
  get isLeader(): boolean {
    return this._term !== null;
  }

  /** Counters for dashboards and tests: this tab's own waiting requests, and the leader's attempts. */
  stats(): { pending: number; dedupEntries: number; reconnectAttempts: number } {
    const own = this._term ? this._term.client.stats() : { reconnectAttempts: 0 };
    return { pending: this._pending.size, dedupEntries: this._dedup.size, reconnectAttempts: own.reconnectAttempts };
  }

  /** Adds a listener; returns the function that removes it. */
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

  /** Joins the user's session in another tab, or logs in as the leader when there is none. */
  login(params: LoginParams): Promise<LoginResult> {
    if (!params || typeof params.userId !== 'string' || params.userId === '') {
      throw new TypeError('login({ userId, token?, extra? }): userId must be a non-empty string');
    }
    if (params.token !== undefined && typeof params.token !== 'string') throw new TypeError('login(): token must be a string');
    if (params.extra !== undefined && typeof params.extra !== 'string') throw new TypeError('login(): extra must be a string');
    const known = params.firstLoginTime;
    if (known !== undefined && (typeof known !== 'number' || !(known >= 0))) throw new RangeError('login(): firstLoginTime must be a non-negative number');
    if (this._destroyed) return Promise.reject(new IMError('DESTROYED', DESTROYED));
    if (!this._stopped()) return Promise.reject(new IMError('ALREADY_ACTIVE', `login() needs a logged-out client; the state is ${this._state}`));
    this._finalTimer._cancel();
    this._pending.rejectAll(errorFor('socket-closed'));
    const session = ++this._session;
    this._login = { userId: params.userId, token: params.token || '', extra: params.extra, firstLoginTime: known || 0 };
    this._sid = null;
    this._leader = null;
    this._peers.clear();
    this._dedup.clear();
    this._link.open(`${this._sharing.name}|${this._o.url}|${params.userId}`);
    const result = new Promise<LoginResult>((resolve, reject) => (this._waiter = { resolve, reject }));
    this._move(ClientState.CONNECTING, 'login');
    this._post({ k: 'hello', t: this._tab });
    this._link.requestLock(
      () => session === this._session && !this._stopped() && !this._destroyed,
      () => this._lead(),
      (error) => {
        // Refused (a sandboxed frame, for one) rather than aborted by a stop: no tab could ever lead.
        this._logger.warn('tab-shared: the lock request failed', error);
        this._stop('connect-failed', new IMError('CONNECT_FAILED', 'tab-shared: the Web Lock request failed', undefined, error));
      },
    );
    return result;
  }

  /** Sends through the leader with a fingerprint made here; settles as {@link IMClient.send} does. */
  send(to: string, content: string, options: SendOptions = {}): Promise<SendReceipt> {
    if (typeof to !== 'string' || to === '') throw new TypeError('send(to, content): to must be a user id, or "0" for the server');
    if (typeof content !== 'string') throw new TypeError('send(to, content): content must be a string (JSON.stringify objects first)');
    if (options.typeu !== undefined && !Number.isInteger(options.typeu)) throw new TypeError('send(): typeu must be an integer');
    if (this._destroyed) return Promise.reject(new IMError('DESTROYED', DESTROYED));
    if (!this._login || this._stopped()) return Promise.reject(new IMError('NOT_ONLINE', 'send() needs a login first'));
    const qos = options.qos !== false;
    const req: SendRequest = { to, content, qos, typeu: options.typeu === undefined ? -1 : options.typeu, fp: options.fp || (qos ? createFingerprint(this._random) : null) };
    return this._request('send', req) as Promise<SendReceipt>;
  }

  /** Sends an echo through the leader and resolves with the round-trip time it measured. */
  echo(): Promise<{ rttMs: number }> {
    if (this._state !== ClientState.ONLINE) return Promise.reject(new IMError('NOT_ONLINE', 'echo() needs an online client'));
    return this._request('echo') as Promise<{ rttMs: number }>;
  }

  /** Asks the leader to re-login at once, skipping the backoff wait (only while reconnecting). */
  reconnectNow(): void {
    if (this._state !== ClientState.RECONNECTING) return;
    if (this._term) this._term.reconnectNow();
    else this._post({ k: 'retry', t: this._tab });
  }

  /** Logs out every tab of the user: the leader sends the logout; the others stop at once. */
  logout(): Promise<void> {
    if (this._stopped()) return Promise.resolve();
    if (this._term) {
      this._term.logout();
      return Promise.resolve();
    }
    this._post({ k: 'logout', t: this._tab, sid: this._sid });
    this._stop('logout', new IMError('LOGGED_OUT', 'logged out before the message was delivered'));
    return Promise.resolve();
  }

  /** Leaves: a leader hands the socket to another tab; nothing of this client is left behind. */
  destroy(): void {
    if (this._destroyed) return;
    this._destroyed = true;
    const error = new IMError('DESTROYED', DESTROYED);
    const term = this._term;
    this._term = null;
    if (term) term.handover();
    this._session++;
    this._link.unlock();
    this._link.finishHold();
    this._post({ k: 'bye', t: this._tab });
    if (!this._stopped()) this._move(ClientState.CLOSED, 'destroyed');
    this._rejectLogin(error);
    this._pending.rejectAll(error);
    this._finalTimer._cancel();
    this._link.close();
    this._events.clear();
  }

  private _stopped(): boolean {
    return this._state === ClientState.IDLE || this._state === ClientState.CLOSED;
  }

  private _request(kind: 'send' | 'echo', req?: SendRequest): Promise<unknown> {
    const { id, promise } = this._pending.add(kind, req);
    this._dispatch(id);
    return promise;
  }

  /** Hands a request to the leader: this tab's own term, or the channel. */
  private _dispatch(id: number): void {
    const p = this._pending.get(id);
    if (!p) return;
    const term = this._term;
    if (term) {
      const done = (ok: boolean, value: unknown): void => this._pending.settle(id, ok, value);
      if (p.kind === 'echo') term.echo().then((v) => done(true, v), (e: unknown) => done(false, e));
      else term.submit(p.req as SendRequest, done);
    } else if (p.kind === 'echo') this._post({ k: 'echo', t: this._tab, id });
    else this._post({ k: 'send', t: this._tab, id, req: p.req as SendRequest });
  }

  /** A new leader: echoes in flight are lost with the old one; sends go again, same fingerprints, in order. */
  private _leaderChanged(tab: string): void {
    this._leader = tab;
    for (const id of this._pending.ids()) {
      if ((this._pending.get(id) as { kind: string }).kind === 'echo') {
        this._pending.settle(id, false, new IMError('CONNECTION_LOST', 'the tab holding the connection went away'));
      } else this._dispatch(id);
    }
  }

  private _move(to: ClientStateName, reason: StateReason): void {
    for (const step of path(this._state, to)) {
      const from = this._state;
      this._state = step;
      this._reason = reason;
      this._events.emit('state', { from, to: step, reason });
      if (this._state !== step) return;
    }
    if (to === ClientState.ONLINE && this._waiter && this._login) {
      const waiter = this._waiter;
      this._waiter = null;
      waiter.resolve({ userId: this._login.userId, firstLoginTime: this._login.firstLoginTime });
    }
  }

  /** Emits an event shared by every tab, once per tab: a takeover may repeat a message or a settlement. */
  private _emit(type: string, payload: unknown): void {
    const e = payload as { fp?: string | null; qos?: boolean; message?: { fp: string | null }; error?: unknown };
    const fp = type === 'message' ? (e.qos ? e.fp : null) : type === 'delivered' ? e.fp : type === 'lost' && e.message ? e.message.fp : null;
    if (fp && this._dedup.checkAndAdd(type + ':' + fp, this._clock.now())) return;
    if (fp && type === 'delivered') this._pending.settleFp(fp, true, (req) => ({ fp, to: req.to, acked: true }));
    if (fp && type === 'lost') this._pending.settleFp(fp, false, () => e.error);
    (this._events.emit as (t: string, e: unknown) => void)(type, payload);
  }

  private _post(message: WireMessage): void {
    this._link.post(message);
  }

  /** This tab got the lock: it becomes the leader, continuing the session when one was running. */
  private _lead(): void {
    const l = this._login as NonNullable<TabSharedClient['_login']>;
    const takeover = this._sid !== null;
    if (!takeover) this._sid = createFingerprint(this._random);
    this._peers.clear();
    this._logger.debug(`tab-shared: this tab leads${takeover ? ', taking over the session' : ''}`);
    const term = new LeaderTerm(this._o, { ...l, takeover }, {
      state: (to, reason) => {
        if (this._term !== term) return;
        if (term.client.firstLoginTime > 0) l.firstLoginTime = term.client.firstLoginTime;
        this._move(to, reason);
        this._sync(reason);
      },
      event: (type, payload) => {
        if (this._term !== term) return;
        this._emit(type, payload);
        this._post({ k: 'event', t: this._tab, sid: this._sid as string, type, e: encodeEvent(payload) });
      },
      ready: (result) => {
        if (this._term !== term) return;
        l.firstLoginTime = result.firstLoginTime;
        this._sync('logged-in');
      },
      ended: (reason, error) => {
        if (this._term !== term) return;
        this._term = null;
        this._stop(reason, error);
        this._post({ k: 'end', t: this._tab, sid: this._sid as string, reason, err: encodeError(error) });
        this._link.holdThenRelease(this._peers);
      },
    });
    this._term = term;
    if (takeover) {
      this._move(ClientState.RECONNECTING, 'socket-closed');
      this._sync('socket-closed');
    }
    this._leaderChanged(this._tab);
    term.start();
  }

  private _sync(reason: StateReason): void {
    if (!this._term || !this._login || !this._sid) return;
    this._post({ k: 'sync', t: this._tab, sid: this._sid, state: this._state, reason, flt: this._login.firstLoginTime });
  }

  /** This tab's session is over: no more lock, the state is closed, waiting promises settle. */
  private _stop(reason: StateReason, error: IMError | null): void {
    this._session++;
    const term = this._term;
    this._term = null;
    if (term) term.handover();
    // A leader's end keeps the lock for the end hold; anything else gives it back or leaves the queue.
    this._link.unlock(true);
    if (!this._stopped()) this._move(ClientState.CLOSED, reason);
    const e = error || errorFor(reason);
    this._rejectLogin(e);
    // Told only of the closed state, wait a little for the leader's own replies and the end message.
    if (error) this._pending.rejectAll(error);
    else if (this._pending.size > 0) this._finalTimer._arm(this._sharing.endHoldMs);
  }

  private _rejectLogin(error: unknown): void {
    const waiter = this._waiter;
    this._waiter = null;
    if (waiter) waiter.reject(error);
  }

  private _onWire(d: WireMessage): void {
    if (!d || typeof d !== 'object' || typeof d.t !== 'string' || d.t === this._tab) return;
    const term = this._term;
    if (term && d.k !== 'bye' && d.k !== 'ack') this._peers.add(d.t);
    switch (d.k) {
      case 'hello':
        return this._sync(this._reason);
      case 'sync':
        if (term || this._stopped() || !this._login) return;
        this._sid = d.sid;
        if (d.flt > 0) this._login.firstLoginTime = d.flt;
        if (d.t !== this._leader) {
          this._leaderChanged(d.t);
          this._post({ k: 'hello', t: this._tab });
        }
        if (d.state === ClientState.CLOSED) return this._stop(d.reason, null);
        return this._move(d.state, d.reason);
      case 'event':
        if (!term && d.sid === this._sid) this._emit(d.type, decodeEvent(d.e));
        return;
      case 'send':
        if (term) term.submit(d.req, (ok, value) => this._reply(d.t, d.id, ok, value));
        return;
      case 'echo':
        if (term) term.echo().then((v) => this._reply(d.t, d.id, true, v), (e: unknown) => this._reply(d.t, d.id, false, e));
        return;
      case 'retry':
        if (term) term.reconnectNow();
        return;
      case 'logout':
        if (d.sid !== this._sid || this._stopped()) return;
        if (term) return term.logout();
        return this._stop('logout', new IMError('LOGGED_OUT', 'logged out before the message was delivered'));
      case 'reply':
        if (d.to === this._tab) this._pending.settle(d.id, d.ok, d.ok ? d.v : decodeError(d.err));
        return;
      case 'end':
        if (d.sid === this._sid) {
          const error = decodeError(d.err) as IMError;
          if (!this._stopped()) this._stop(d.reason, error);
          this._finalTimer._cancel();
          this._pending.rejectAll(error);
        }
        return this._post({ k: 'ack', t: this._tab, to: d.t });
      case 'ack':
        if (d.to === this._tab) this._link.ack(d.t);
        return;
      case 'bye':
        this._peers.delete(d.t);
        this._link.ack(d.t);
        return;
    }
  }

  private _reply(to: string, id: number, ok: boolean, value: unknown): void {
    this._post(ok ? { k: 'reply', t: this._tab, to, id, ok, v: value } : { k: 'reply', t: this._tab, to, id, ok, err: encodeError(value) });
  }
}
