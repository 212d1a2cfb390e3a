import { backoffDelay } from './backoff';
import { Timer } from './clock';
import { DEV } from './dev';
import { IMError } from './errors';
import type { ResolvedOptions } from './options';

/** What the reconnector asks of the client. */
export interface ReconnectHost {
  /** Whether an attempt may run now (the client is still reconnecting). */
  _due(): boolean;
  /** Opens a new link; `token` is a fresh one from `getToken`, or null to reuse the last. */
  _open(token: string | null): void;
  /** `getToken` failed or timed out: report it and wait for the next attempt. */
  _tokenFailed(error: IMError): void;
}

/**
 * Automatic re-login: counts attempts, waits a full-jitter backoff (or a given delay) between them, and
 * fetches a fresh token before each when `getToken` is set.
 *
 * ```
 *  schedule() ── delay ──> attempt() ── getToken? ──> token (within loginTimeoutMs) ──> host._open(token)
 *                              │                   └─> error / not a string / timeout ──> host._tokenFailed()
 *                              └── no getToken ──> host._open(null)
 * ```
 */
export class Reconnect {
  /** Attempts since the last successful login. */
  _attempts = 0;
  private readonly _timer: Timer;
  private readonly _tokenTimer: Timer;
  /** Set before the token timer is armed, the only time it runs. */
  private _tokenTimeout!: () => void;
  /** Bumped by every attempt and every cancel, so a token that arrives late is dropped. */
  private _fetch = 0;

  constructor(private readonly _o: ResolvedOptions, private readonly _host: ReconnectHost) {
    this._timer = new Timer(_o._clock, () => this._attempt());
    this._tokenTimer = new Timer(_o._clock, () => this._tokenTimeout());
  }

  /** Whether `maxAttempts` attempts were made without a login. */
  get _exhausted(): boolean {
    return this._attempts >= this._o._reconnect.maxAttempts;
  }

  /** Arms the next attempt after `delayMs`, or after the backoff for this attempt; returns the delay. */
  _schedule(delayMs?: number): number {
    const r = this._o._reconnect;
    const ms = delayMs === undefined ? backoffDelay(this._attempts, r.minDelayMs, r.maxDelayMs, this._o._random) : delayMs;
    this._timer._arm(ms);
    return ms;
  }

  /** Stops the wait before the next attempt (the attempt runs on a later `attempt()` call). */
  _pause(): void {
    this._timer._cancel();
  }

  /** Stops everything: the wait and a token fetch in flight. */
  _cancel(): void {
    this._timer._cancel();
    this._tokenTimer._cancel();
    this._fetch++;
  }

  /** Makes an attempt now. */
  _attempt(): void {
    this._timer._cancel();
    if (!this._host._due()) return;
    this._attempts++;
    const fetch = ++this._fetch;
    const getToken = this._o._getToken;
    const timeoutMs = this._o.loginTimeoutMs;
    if (!getToken) return this._host._open(null);
    const stale = (): boolean => fetch !== this._fetch || !this._host._due();
    const fail = (error: unknown, message: string): void => {
      if (stale()) return;
      this._cancel();
      this._host._tokenFailed(new IMError('TOKEN_ERROR', message, undefined, error));
    };
    // Waiting for a token counts against the login timeout, so a token endpoint that hangs cannot
    // leave the client waiting for ever.
    this._tokenTimer._arm(timeoutMs);
    this._tokenTimeout = () => fail(undefined, `getToken() did not answer within ${timeoutMs} ms`);
    Promise.resolve()
      .then(getToken)
      .then(
        (token) => {
          if (stale()) return;
          if (typeof token !== 'string') return fail(token, DEV ? 'getToken() must resolve with a string' : 'invalid token');
          this._tokenTimer._cancel();
          this._host._open(token);
        },
        (error: unknown) => fail(error, 'getToken() failed'),
      );
  }
}
