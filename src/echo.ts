import { Timer, type Clock } from './clock';
import { IMError } from './errors';

interface Pending {
  _sentAt: number;
  _timer: Timer;
  _resolve(value: { rttMs: number }): void;
  _reject(error: IMError): void;
}

/**
 * The echo requests in flight (type 5 out, type 53 back): each waits for the reply carrying its token,
 * for `timeoutMs` at most, and fails when the link closes first.
 */
export class EchoRequests {
  private readonly _pending = new Map<string, Pending>();

  constructor(private readonly _clock: Clock, private readonly _timeoutMs: number) {}

  /** Waits for the reply to `token`; resolves with the round-trip time, rejects with `ECHO_TIMEOUT`. */
  _wait(token: string): Promise<{ rttMs: number }> {
    return new Promise((resolve, reject) => {
      const timer = new Timer(this._clock, () => {
        this._pending.delete(token);
        reject(new IMError('ECHO_TIMEOUT', `no echo reply within ${this._timeoutMs} ms`));
      });
      this._pending.set(token, { _sentAt: this._clock.now(), _timer: timer, _resolve: resolve, _reject: reject });
      timer._arm(this._timeoutMs);
    });
  }

  /** A reply (type 53) arrived; a token nobody waits for is ignored. */
  _reply(token: string | null): void {
    const pending = this._pending.get(token as string);
    if (!pending) return;
    this._pending.delete(token as string);
    pending._timer._cancel();
    pending._resolve({ rttMs: this._clock.now() - pending._sentAt });
  }

  /** The link closed: every request fails with `CONNECTION_LOST`. */
  _failAll(): void {
    this._pending.forEach((p) => {
      p._timer._cancel();
      p._reject(new IMError('CONNECTION_LOST', 'link closed before the echo reply'));
    });
    this._pending.clear();
  }
}
