/**
 * A fake of the mini-program SocketTask family (wx, uni, my, tt) that behaves as the platforms document,
 * quirks included: success/fail only acknowledge the call and arrive late, listeners registered after
 * connectSocket returned may miss the open event, at most 5 live sockets, uni returns a Promise unless a
 * callback is passed, Alipay returns a task only with `multiple: true` and reports binary as base64,
 * uni's send succeeds while offline and close never completes offline, a close before the socket opened
 * fails, and a socket can die in the background without SocketTask.onClose. Listeners are called without try/catch, so an adapter that lets
 * an exception escape makes the test fail.
 */
/** Which platform object the fake imitates. */
export type Family = 'wx' | 'uni' | 'alipay' | 'tt';

type Listener = (result: any) => void;
interface Callbacks {
  success?: Listener;
  fail?: Listener;
  complete?: Listener;
}

const later = (fn: () => void): void => void setTimeout(fn, 0);

function finish(cb: Callbacks, ok: boolean, result: object): void {
  later(() => {
    if (ok) cb.success?.(result);
    else cb.fail?.(result);
    cb.complete?.(result);
  });
}

/** One fake SocketTask; the test plays the server and the system through its methods. */
export class FakeSocketTask {
  readonly listeners = { open: [] as Listener[], message: [] as Listener[], close: [] as Listener[], error: [] as Listener[] };
  state: 'connecting' | 'open' | 'closed' | 'dead' = 'connecting';
  /** Everything `send` accepted, in order (only string or ArrayBuffer is accepted, as documented). */
  readonly sent: Array<string | ArrayBuffer> = [];
  readonly closeCalls: Array<{ code?: number; reason?: string }> = [];
  /** Whether the onOpen listener was in place when the first microtask after connectSocket ran. */
  openRegisteredInTime = false;

  constructor(
    readonly platform: FakeMiniProgram,
    readonly url: string,
    readonly connectCallbacks: Callbacks,
  ) {
    void Promise.resolve().then(() => {
      this.openRegisteredInTime = this.listeners.open.length > 0;
    });
  }

  onOpen(l: Listener) {
    this.listeners.open.push(l);
  }
  onMessage(l: Listener) {
    this.listeners.message.push(l);
  }
  onClose(l: Listener) {
    this.listeners.close.push(l);
  }
  onError(l: Listener) {
    this.listeners.error.push(l);
  }

  send(option: { data: unknown } & Callbacks) {
    if (this.state !== 'open' && !(this.state === 'dead' && this.platform.sendSucceedsWhenDead)) {
      finish(option, false, { errMsg: 'sendSocketMessage:fail WebSocket is not connected' });
      return;
    }
    if (typeof option.data !== 'string' && !(option.data instanceof ArrayBuffer)) {
      finish(option, false, { errMsg: 'sendSocketMessage:fail parameter error: data should be String or ArrayBuffer' });
      return;
    }
    /* uni-app reports success while offline (dcloudio/uni-app#744); the bytes go nowhere. */
    if (this.platform.offline || this.state === 'dead') {
      finish(option, true, { errMsg: 'sendSocketMessage:ok' });
      return;
    }
    this.sent.push(option.data as string | ArrayBuffer);
    finish(option, true, { errMsg: 'sendSocketMessage:ok' });
  }

  close(option: { code?: number; reason?: string } & Callbacks) {
    this.closeCalls.push({ code: option.code, reason: option.reason });
    const code = option.code ?? 1000;
    if (code !== 1000 && !(code >= 3000 && code <= 4999)) {
      finish(option, false, { errMsg: 'closeSocket:fail invalid code' });
      return;
    }
    /* A close while the handshake is still running fails and the socket opens anyway (community reports of
       "closeSocket:fail WebSocket is not connected" when closing before onOpen). */
    if (this.state === 'closed' || this.state === 'connecting') {
      finish(option, false, { errMsg: 'closeSocket:fail WebSocket is not connected' });
      return;
    }
    const wasDead = this.state === 'dead';
    this.state = 'closed';
    finish(option, true, { errMsg: 'closeSocket:ok' });
    /* A dead socket never reports; offline, uni-app's close never completes (dcloudio/uni-app#2144). */
    if (wasDead || this.platform.offline) return;
    later(() => this.fire('close', { code, reason: option.reason ?? '' }));
  }

  fire(kind: keyof FakeSocketTask['listeners'], result: unknown) {
    for (const l of [...this.listeners[kind]]) l(result);
  }

  /** The server accepted: onOpen fires, then (late) the connectSocket `success`. */
  accept() {
    this.state = 'open';
    this.fire('open', { header: {} });
    finish(this.connectCallbacks, true, { errMsg: 'connectSocket:ok' });
  }
  /** The server sends a frame. */
  serverSend(data: string | ArrayBuffer) {
    if (this.platform.family === 'alipay' && data instanceof ArrayBuffer) {
      this.fire('message', { data: Buffer.from(data).toString('base64'), isBuffer: true });
    } else this.fire('message', { data });
  }
  /** The server closes the connection. */
  serverClose(code = 1000, reason = 'server closed') {
    this.state = 'closed';
    this.fire('close', { code, reason });
  }
  /** A network error: onError, then onClose, as the platforms report it. */
  networkError() {
    this.state = 'closed';
    this.fire('error', { errMsg: 'network error' });
    this.fire('close', { code: 1006, reason: 'abnormal closure' });
  }
  /** The system kills the socket in the background: no SocketTask event at all. */
  dieSilently() {
    this.state = 'dead';
  }
  /** The connectSocket call was refused (fail), and the task never opens. */
  refuse(errMsg: string) {
    this.state = 'closed';
    /* Alipay's fail result is { error, errorMessage } (my.connectSocket documentation), not { errMsg }. */
    finish(this.connectCallbacks, false, this.platform.family === 'alipay' ? { error: 2, errorMessage: errMsg } : { errMsg });
  }
}

/** How the fake platform behaves beyond its defaults. */
export interface FakeOptions {
  maxSockets?: number;
  /** Fire onOpen from the first microtask after connectSocket (to catch late listener registration). */
  openImmediately?: boolean;
}

/** A fake `wx`/`uni`/`my`/`tt`: `api` is the platform object, the rest drives it. */
export class FakeMiniProgram {
  readonly tasks: FakeSocketTask[] = [];
  readonly appListeners = { show: new Set<Listener>(), hide: new Set<Listener>(), network: new Set<Listener>() };
  offline = false;
  sendSucceedsWhenDead = true;
  readonly maxSockets: number;

  constructor(
    readonly family: Family,
    private readonly options: FakeOptions = {},
  ) {
    this.maxSockets = options.maxSockets ?? 5;
  }

  get liveTasks(): FakeSocketTask[] {
    return this.tasks.filter((t) => t.state === 'connecting' || t.state === 'open');
  }
  get lastTask(): FakeSocketTask {
    const t = this.tasks[this.tasks.length - 1];
    if (!t) throw new Error('no task');
    return t;
  }
  get listenerCount(): number {
    return this.appListeners.show.size + this.appListeners.hide.size + this.appListeners.network.size;
  }

  /** The platform object as the adapter sees it. */
  readonly api = {
    connectSocket: (option: { url: string; multiple?: boolean } & Callbacks): unknown => {
      const hasCallback = !!(option.success || option.fail || option.complete);
      const task = new FakeSocketTask(this, option.url, option);
      this.tasks.push(task);
      if (this.liveTasks.length > this.maxSockets) {
        task.refuse('connectSocket:fail exceed max task count');
      } else if (this.options.openImmediately) {
        void Promise.resolve().then(() => task.accept());
      }
      if (this.family === 'uni' && !hasCallback) return Promise.resolve(task);
      if (this.family === 'alipay' && option.multiple !== true) return undefined;
      return task;
    },
    onAppShow: (l: Listener) => void this.appListeners.show.add(l),
    offAppShow: (l?: Listener) => (l ? void this.appListeners.show.delete(l) : this.appListeners.show.clear()),
    onAppHide: (l: Listener) => void this.appListeners.hide.add(l),
    offAppHide: (l?: Listener) => (l ? void this.appListeners.hide.delete(l) : this.appListeners.hide.clear()),
    onNetworkStatusChange: (l: Listener) => void this.appListeners.network.add(l),
    offNetworkStatusChange: (l?: Listener) =>
      l ? void this.appListeners.network.delete(l) : this.appListeners.network.clear(),
  };

  appShow() {
    for (const l of [...this.appListeners.show]) l({ path: 'pages/index/index', scene: 1001 });
  }
  appHide() {
    for (const l of [...this.appListeners.hide]) l({});
  }
  setNetwork(isConnected: boolean, networkType = isConnected ? 'wifi' : 'none') {
    this.offline = !isConnected;
    for (const l of [...this.appListeners.network]) l({ isConnected, networkType });
  }
}
