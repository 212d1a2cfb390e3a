/**
 * A de-duplication window: remembers each key for `ttlMs` (MobileIMSDK keeps fingerprints 10 minutes)
 * and at most `max` keys, the oldest going first. Used by the client for received QoS messages (the
 * server has its own, server/src/dedup.ts).
 *
 * Keys are also kept in arrival order in a queue with a moving head, so expiring or evicting the oldest
 * costs the same whatever the window's size (walking a `Set` from its front instead slows down as
 * deleted entries pile up in V8's table). The times live only in that queue (an array of doubles): a
 * `Map` from key to time would box each time in a heap number of its own.
 */
export class DedupWindow {
  private readonly _at = new Set<string>();
  private _keys: string[] = [];
  private _times: number[] = [];
  private _head = 0;

  constructor(private readonly _ttlMs: number, private readonly _max: number) {}

  /** Records `key` at time `now`; returns true when it was already seen within the window. */
  checkAndAdd(key: string, now: number): boolean {
    while (this._head < this._keys.length && now - this._times[this._head] >= this._ttlMs) this._dropOldest();
    if (this._at.has(key)) return true;
    this._at.add(key);
    this._keys.push(key);
    this._times.push(now);
    while (this._at.size > this._max) this._dropOldest();
    return false;
  }

  /** How many keys are remembered. */
  get size(): number {
    return this._at.size;
  }

  /** Forgets everything. */
  clear(): void {
    this._at.clear();
    this._keys = [];
    this._times = [];
    this._head = 0;
  }

  private _dropOldest(): void {
    // A key leaves the queue and the set together, so the queue's oldest key is always in the set.
    this._at.delete(this._keys[this._head++]);
    // Drop the spent part of the queue once it is the larger half: amortised constant time.
    if (this._head > 1024 && this._head * 2 > this._keys.length) {
      this._keys = this._keys.slice(this._head);
      this._times = this._times.slice(this._head);
      this._head = 0;
    }
  }
}
