/**
 * A fake of `@ohos.net.webSocket` and of the app-supplied lifecycle sources: error-first callbacks,
 * `connect`/`send`/`close` acknowledging through their callbacks (asynchronously), `on`/`off` per event
 * type, an `ApplicationContext` with `applicationStateChange`, and a `NetConnection` that delivers
 * nothing until `register()` and drops every subscription on `unregister()`. Listeners are called without
 * try/catch, so an exception escaping the adapter fails the test.
 */
type Cb = (...args: any[]) => void;
const later = (fn: () => void): void => void setTimeout(fn, 0);

/** One fake `WebSocket` from `createWebSocket()`; the test plays the server through its methods. */
export class FakeHarmonyWebSocket {
  readonly listeners = new Map<string, Cb[]>();
  state: 'created' | 'connecting' | 'open' | 'closed' = 'created';
  readonly sent: Array<string | ArrayBuffer> = [];
  url = '';
  connectError: unknown = undefined;

  on(type: string, cb: Cb) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), cb]);
  }
  off(type: string, cb?: Cb) {
    this.listeners.set(type, cb ? (this.listeners.get(type) ?? []).filter((l) => l !== cb) : []);
  }
  get listenerCount(): number {
    let n = 0;
    for (const l of this.listeners.values()) n += l.length;
    return n;
  }
  connect(url: string, cb: (err: unknown, ok: boolean) => void) {
    this.url = url;
    this.state = 'connecting';
    const err = this.connectError;
    later(() => (err ? cb(err, false) : cb(undefined, true)));
  }
  send(data: unknown, cb: (err: unknown, ok: boolean) => void) {
    if (this.state !== 'open') return later(() => cb({ code: 2302999, message: 'websocket not open' }, false));
    if (typeof data !== 'string' && !(data instanceof ArrayBuffer)) {
      return later(() => cb({ code: 401, message: 'Parameter error' }, false));
    }
    this.sent.push(data);
    later(() => cb(undefined, true));
  }
  close(options: { code?: number; reason?: string }, cb: (err: unknown, ok: boolean) => void) {
    const wasOpen = this.state !== 'closed';
    this.state = 'closed';
    later(() => {
      cb(undefined, true);
      if (wasOpen) this.fire('close', undefined, { code: options.code ?? 1000, reason: options.reason ?? '' });
    });
  }
  fire(type: string, ...args: unknown[]) {
    for (const l of [...(this.listeners.get(type) ?? [])]) l(...args);
  }
  accept() {
    this.state = 'open';
    this.fire('open', undefined, { status: 101, message: 'Switching Protocols' });
  }
  serverSend(data: string | ArrayBuffer) {
    this.fire('message', undefined, data);
  }
  serverClose(code = 1000, reason = 'server closed') {
    this.state = 'closed';
    this.fire('close', undefined, { code, reason });
  }
  networkError() {
    this.state = 'closed';
    this.fire('error', { code: 2302006, message: 'network error' });
    this.fire('close', undefined, { code: 1006, reason: '' });
  }
}

/** The fake `webSocket` module plus the app-supplied ApplicationContext and NetConnection. */
export class FakeHarmony {
  readonly sockets: FakeHarmonyWebSocket[] = [];
  /** Makes the next socket's connect callback report an error. */
  failNextConnect = false;
  readonly module = {
    createWebSocket: () => {
      const ws = new FakeHarmonyWebSocket();
      if (this.failNextConnect) {
        ws.connectError = { code: 2302001, message: 'websocket connect failed' };
        this.failNextConnect = false;
      }
      this.sockets.push(ws);
      return ws;
    },
  };
  get lastSocket(): FakeHarmonyWebSocket {
    const s = this.sockets[this.sockets.length - 1];
    if (!s) throw new Error('no socket');
    return s;
  }

  readonly stateCallbacks = new Set<{ onApplicationForeground(): void; onApplicationBackground(): void }>();
  readonly applicationContext = {
    on: (type: 'applicationStateChange', cb: { onApplicationForeground(): void; onApplicationBackground(): void }) => {
      if (type === 'applicationStateChange') this.stateCallbacks.add(cb);
    },
    off: (type: 'applicationStateChange', cb?: { onApplicationForeground(): void; onApplicationBackground(): void }) => {
      if (type !== 'applicationStateChange') return;
      if (cb) this.stateCallbacks.delete(cb);
      else this.stateCallbacks.clear();
    },
  };

  readonly netSubscriptions = new Map<string, Cb[]>();
  registered = false;
  readonly netConnection = {
    on: (type: string, cb: Cb) => {
      this.netSubscriptions.set(type, [...(this.netSubscriptions.get(type) ?? []), cb]);
    },
    register: (cb: Cb) => {
      this.registered = true;
      later(() => cb(undefined));
    },
    unregister: (cb: Cb) => {
      this.registered = false;
      this.netSubscriptions.clear();
      later(() => cb(undefined));
    },
  };
  get listenerCount(): number {
    let n = this.stateCallbacks.size;
    for (const l of this.netSubscriptions.values()) n += l.length;
    return n;
  }

  foreground() {
    for (const cb of [...this.stateCallbacks]) cb.onApplicationForeground();
  }
  background() {
    for (const cb of [...this.stateCallbacks]) cb.onApplicationBackground();
  }
  /**
   * Network events reach subscribers only while registered, as NetConnection documents; each carries the
   * NetHandle of the network it is about.
   */
  setNetwork(available: boolean, netId = 100) {
    if (!this.registered) return;
    const type = available ? 'netAvailable' : 'netLost';
    for (const cb of [...(this.netSubscriptions.get(type) ?? [])]) cb({ netId });
  }
}
