import type { Clock } from './clock';

/**
 * The receive side of QoS: remembers the fingerprints already delivered to the application, for
 * `ttlMs` (MobileIMSDK keeps them 10 minutes) and at most `max` of them (the oldest go first), so a
 * retransmitted message is acknowledged again but shown once.
 */
export class QosInbox {
  private readonly _seenAt = new Map<string, number>();

  constructor(private readonly _clock: Clock, private readonly _ttlMs: number, private readonly _max: number) {}

  /** Records `fp`; returns true when it was already seen inside the window (a duplicate). */
  isDuplicate(fp: string): boolean {
    const now = this._clock.now();
    // Entries are in insertion order, which is also time order: expire from the front.
    for (const [key, at] of this._seenAt) {
      if (now - at < this._ttlMs) break;
      this._seenAt.delete(key);
    }
    if (this._seenAt.has(fp)) return true;
    this._seenAt.set(fp, now);
    if (this._seenAt.size > this._max) this._seenAt.delete(this._seenAt.keys().next().value as string);
    return false;
  }

  /** How many fingerprints are remembered. */
  get size(): number {
    return this._seenAt.size;
  }

  /** Forgets everything. */
  clear(): void {
    this._seenAt.clear();
  }
}
