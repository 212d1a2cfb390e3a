import { Timer, type Clock } from './clock';

/**
 * Keep-alive with a wall-clock deadline. A beat goes out every `intervalMs`; the link is dead when
 * nothing arrived from the server for `timeoutMs`. Each wake-up compares `now()` with the stored times
 * rather than counting ticks, so a timer that fires late (a throttled background tab, a suspended
 * mini-program) still finds a dead link at once.
 */
export class KeepAlive {
  private readonly _timer: Timer;
  // Set by _start() before any read, or read only for truth (_running, _probeDeadline): the minified
  // bundle spares their initial assignments.
  private _lastHeardAt!: number;
  private _nextBeatAt!: number;
  private _probeDeadline?: number;
  private _running?: boolean;

  constructor(
    private readonly _clock: Clock,
    private readonly _intervalMs: number,
    private readonly _timeoutMs: number,
    private readonly _beat: () => void,
    private readonly _onDead: (reason: 'keepalive-timeout' | 'probe-timeout') => void,
  ) {
    this._timer = new Timer(this._clock, () => this._tick());
  }

  /** Starts beating: the first beat one interval from now, as MobileIMSDK does. */
  _start(): void {
    const now = this._clock.now();
    this._lastHeardAt = now;
    this._nextBeatAt = now + this._intervalMs;
    this._probeDeadline = 0;
    this._running = true;
    this._schedule(now);
  }

  /** Notes that a frame arrived from the server: the link is alive. */
  _heard(): void {
    this._lastHeardAt = this._clock.now();
    this._probeDeadline = 0;
  }

  /** Beats now and declares the link dead unless something arrives within `timeoutMs`. */
  _probe(timeoutMs: number): void {
    if (!this._running) return;
    const now = this._clock.now();
    this._probeDeadline = now + timeoutMs;
    this._nextBeatAt = now + this._intervalMs;
    this._beat();
    this._schedule(now);
  }

  /** Stops every timer. */
  _stop(): void {
    this._running = false;
    this._timer._cancel();
    this._probeDeadline = 0;
  }

  private _tick(): void {
    const now = this._clock.now();
    if (now - this._lastHeardAt >= this._timeoutMs) return this._die('keepalive-timeout');
    if (this._probeDeadline && now >= this._probeDeadline) return this._die('probe-timeout');
    if (now >= this._nextBeatAt) {
      this._nextBeatAt = now + this._intervalMs;
      this._beat();
    }
    this._schedule(now);
  }

  private _die(reason: 'keepalive-timeout' | 'probe-timeout'): void {
    this._stop();
    this._onDead(reason);
  }

  private _schedule(now: number): void {
    // A beat may have failed and stopped us synchronously; never re-arm a stopped keep-alive.
    if (!this._running) return;
    let at = Math.min(this._nextBeatAt, this._lastHeardAt + this._timeoutMs);
    if (this._probeDeadline) at = Math.min(at, this._probeDeadline);
    this._timer._arm(at - now);
  }
}
