import type { Logger } from './logger';

/** The time source and timers of the store (tests pass a fake one). */
export interface StoreClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Date.now and the global timers, looked up at each call (so fake timers installed later apply). */
export const realClock: StoreClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** Lets a real Node timer not keep the process alive (fake timers may not have unref). */
export function unref(handle: unknown): void {
  (handle as { unref?: () => void } | null)?.unref?.();
}

/** What the sweeper needs from a store: remove up to `limit` rows stored at or before `cutoffMs`. */
export interface ExpiryTarget<Row> {
  removeExpired(cutoffMs: number, limit: number): Row[];
  /** The rows one batch removed (never called with none). */
  removed(rows: Row[]): void;
}

/**
 * Removes expired rows in the background: every `intervalMs` (a re-arming timer) it deletes rows older
 * than `ttlMs` in batches of `batch`, one transaction each. A full batch means more may be left: the next
 * one runs from setImmediate, after the event loop has handled what was waiting, so a large backlog of
 * expired rows never blocks it for longer than one batch.
 */
export class ExpirySweeper<Row> {
  private timer: unknown = null;
  private immediate: ReturnType<typeof setImmediate> | null = null;
  private stopped = false;

  constructor(
    private readonly target: ExpiryTarget<Row>,
    private readonly o: { clock: StoreClock; ttlMs: number; intervalMs: number; batch: number; logger: Logger },
  ) {
    this.arm();
  }

  /** Stops for good; no timer or immediate is left behind. */
  stop(): void {
    this.stopped = true;
    this.o.clock.clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = this.immediate = null;
  }

  private arm(): void {
    this.timer = this.o.clock.setTimeout(() => this.sweep(), this.o.intervalMs);
    unref(this.timer);
  }

  private sweep(): void {
    this.timer = this.immediate = null;
    if (this.stopped) return;
    let rows: Row[];
    try {
      rows = this.target.removeExpired(this.o.clock.now() - this.o.ttlMs, this.o.batch);
    } catch (err) {
      this.o.logger.error('offline store: removing expired messages failed', err);
      this.arm();
      return;
    }
    if (rows.length > 0) this.target.removed(rows);
    if (rows.length >= this.o.batch) this.immediate = setImmediate(() => this.sweep());
    else this.arm();
  }
}
