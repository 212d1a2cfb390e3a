/** The one place the core touches the host's timers and wall clock; tests inject a fake. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Schedules `fn` once after `ms`; returns a handle for {@link Clock.clearTimeout}. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a handle returned by {@link Clock.setTimeout}; unknown or spent handles are ignored. */
  clearTimeout(handle: unknown): void;
}

declare const setTimeout: (fn: () => void, ms: number) => unknown;
declare const clearTimeout: (handle: unknown) => void;

/** The host's `Date.now`, `setTimeout` and `clearTimeout`, looked up when called (so fake timers apply). */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle),
};

/** A single re-armable timer on a {@link Clock}: arming it again replaces the previous schedule. */
export class Timer {
  private _handle: unknown = null;

  constructor(private readonly _clock: Clock, private readonly _fn: () => void) {}

  /** Whether the timer is scheduled. */
  get _armed(): boolean {
    return this._handle !== null;
  }

  /** Runs the callback after `ms`, cancelling any earlier schedule. */
  _arm(ms: number): void {
    this._cancel();
    this._handle = this._clock.setTimeout(() => {
      this._handle = null;
      this._fn();
    }, Math.max(0, ms));
  }

  /** Cancels the schedule, if any. */
  _cancel(): void {
    if (this._handle !== null) {
      this._clock.clearTimeout(this._handle);
      this._handle = null;
    }
  }
}
