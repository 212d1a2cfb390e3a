import type { Logger } from './logger';
import type { SocketAdapter } from './transport';

/** What the client does when the app or the network changes. */
export interface LifecycleHost {
  /** The network went away (`offline: true`) or the app went to the background: stop retrying. */
  _pause(offline: boolean): void;
  /** Network and foreground are both back: check the link or reconnect at once. */
  _resume(): void;
}

/**
 * Follows the adapter's lifecycle events while the client runs. It remembers whether the network is
 * down and whether the app is in the background; the client is `paused` while either holds, and resumes
 * only when both are over.
 */
export class Lifecycle {
  // Unset until the first watch (each only tested for truth): fewer assignments in the minified bundle.
  private _stop?: (() => void) | null;
  private _offline?: boolean;
  private _background?: boolean;

  constructor(private readonly _adapter: SocketAdapter, private readonly _logger: Logger, private readonly _host: LifecycleHost) {}

  /** Whether reconnecting waits for the network or the foreground. */
  get _paused(): boolean | undefined {
    return this._offline || this._background;
  }

  /** Starts listening (once; a second call while listening does nothing). */
  _watch(): void {
    const watch = this._adapter.watchLifecycle;
    if (!watch || this._stop) return;
    this._stop = watch.call(this._adapter, (event) => {
      try {
        const offline = event === 'offline';
        if (offline || event === 'online') this._offline = offline;
        else this._background = event === 'background';
        if (offline || event === 'background') return this._host._pause(offline);
        if (!this._paused) this._host._resume();
      } catch (error) {
        this._logger.error('lifecycle handler threw', error);
      }
    });
  }

  /** Stops listening and forgets the network and foreground state. */
  _unwatch(): void {
    const stop = this._stop;
    this._stop = null;
    this._offline = this._background = false;
    try {
      if (stop) stop();
    } catch (error) {
      this._logger.warn('lifecycle stop threw', error);
    }
  }
}
