import { Timer, type Clock } from './clock';
import type { Logger } from './logger';
import type { BroadcastChannelConstructor, BroadcastChannelLike, LockManagerLike, WireMessage } from './tab-shared-wire';

/** What the tab-shared client needs on top of the `IMClient` options. */
export interface TabSharing {
  locks: LockManagerLike;
  BroadcastChannel: BroadcastChannelConstructor;
  /** Prefix of the lock and channel names; the URL and the user id follow it. */
  name: string;
  /** How long an ending leader waits for the other tabs to acknowledge before it lets the lock go. */
  endHoldMs: number;
}

/**
 * One tab's plumbing: the BroadcastChannel of the user's tabs and the Web Lock that makes a tab the leader.
 *
 * ```
 *  requestLock ── queued (abort on stop) ── granted ──> held until unlock(), or holdThenRelease():
 *                                                        kept until every peer acknowledged the end, at most endHoldMs
 * ```
 */
export class TabLink {
  private _channel: BroadcastChannelLike | null = null;
  private _name = '';
  private _abort: { abort(): void } | null = null;
  private _release: (() => void) | null = null;
  private _hold: { ack(tab: string): void; finish(): void } | null = null;

  constructor(
    private readonly _sharing: TabSharing,
    private readonly _clock: Clock,
    private readonly _logger: Logger,
    private readonly _onMessage: (message: WireMessage) => void,
  ) {}

  /** Opens the channel `name` (the lock has the same name); an open channel of that name is kept. */
  open(name: string): void {
    if (this._channel && this._name === name) return;
    this.close();
    this._name = name;
    const channel = new this._sharing.BroadcastChannel(name);
    channel.onmessage = (event) => {
      try {
        this._onMessage(event.data as WireMessage);
      } catch (error) {
        this._logger.error('tab-shared: internal error handling a message from another tab', error);
      }
    };
    this._channel = channel;
  }

  /** Closes the channel. */
  close(): void {
    const channel = this._channel;
    this._channel = null;
    if (!channel) return;
    channel.onmessage = null;
    try {
      channel.close();
    } catch (error) {
      this._logger.warn('tab-shared: BroadcastChannel.close failed', error);
    }
  }

  /** Posts to every other tab; a closed channel drops it. */
  post(message: WireMessage): void {
    if (!this._channel) return;
    try {
      this._channel.postMessage(message);
    } catch (error) {
      this._logger.warn('tab-shared: BroadcastChannel.postMessage failed', error);
    }
  }

  /**
   * Queues for the lock. Once granted, `lead()` runs and the lock is held until {@link unlock} or
   * {@link holdThenRelease}; a grant that comes when `current()` is false is given back at once.
   */
  requestLock(current: () => boolean, lead: () => void, refused: (error: unknown) => void): void {
    const AC = (globalThis as unknown as { AbortController?: new () => { signal: unknown; abort(): void } }).AbortController;
    const controller = AC ? new AC() : null;
    this._abort = controller;
    const granted = (): Promise<void> => {
      if (!current()) return Promise.resolve();
      return new Promise<void>((release) => {
        this._abort = null;
        this._release = release;
        lead();
      });
    };
    this._sharing.locks.request(this._name, controller ? { signal: controller.signal } : {}, granted).catch((error: unknown) => {
      if (current()) refused(error);
    });
  }

  /** Whether this tab holds the lock (not counting an end hold). */
  get holding(): boolean {
    return this._release !== null;
  }

  /** Gives the lock back, or leaves the queue; `keepHeld` leaves a held lock for {@link holdThenRelease}. */
  unlock(keepHeld = false): void {
    const release = this._release;
    const abort = this._abort;
    this._abort = null;
    if (release && keepHeld) return;
    this._release = null;
    if (release) release();
    else if (abort) abort.abort();
  }

  /** After an end: keeps the lock until every tab in `peers` acknowledged it ({@link ack}), at most endHoldMs. */
  holdThenRelease(peers: Set<string>): void {
    const release = this._release;
    this._release = null;
    this._abort = null;
    if (!release) return;
    const waiting = new Set(peers);
    if (waiting.size === 0) return release();
    const timer = new Timer(this._clock, () => finish());
    const finish = (): void => {
      timer._cancel();
      if (this._hold === hold) this._hold = null;
      release();
    };
    const hold = {
      ack: (tab: string): void => {
        waiting.delete(tab);
        if (waiting.size === 0) finish();
      },
      finish,
    };
    this._hold = hold;
    timer._arm(this._sharing.endHoldMs);
  }

  /** Tab `tab` acknowledged the end (or left). */
  ack(tab: string): void {
    if (this._hold) this._hold.ack(tab);
  }

  /** Ends an end hold at once (this tab is going away). */
  finishHold(): void {
    if (this._hold) this._hold.finish();
  }
}
