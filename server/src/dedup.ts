import { entryBytes } from './bounds';

/**
 * A de-duplication window of (sender, fp) keys (MobileIMSDK `QoS4ReciveDaemonC2S`, and the same for
 * C2C): a retransmitted message is ACKed again but handed on once. Bounded by `ttlMs`, by `max` keys
 * and by `maxBytes`, the oldest going first, so a flood of fingerprints cannot grow it without limit
 * (an evicted key only means a late duplicate may pass once more).
 *
 * Keys are also kept in arrival order in a queue with a moving head, so expiring or evicting the oldest
 * costs the same whatever the window's size.
 */
export class DedupWindow {
  private readonly at = new Map<string, number>();
  private keys: string[] = [];
  private times: number[] = [];
  private head = 0;
  private charged = 0;

  /** `max` keys and `maxBytes` (as charged by {@link entryBytes}) at most, each for `ttlMs`. */
  constructor(
    private readonly ttlMs: number,
    private readonly max: number,
    private readonly maxBytes: number = Number.POSITIVE_INFINITY,
  ) {}

  /** Records the key; true when it was already seen within the window. */
  checkAndAdd(key: string, now: number = Date.now()): boolean {
    if (this.has(key, now)) return true;
    this.add(key, now);
    return false;
  }

  /** Whether the key was seen within the window (expired keys are dropped first). */
  has(key: string, now: number = Date.now()): boolean {
    while (this.head < this.keys.length && now - this.times[this.head] >= this.ttlMs) this.dropOldest();
    return this.at.has(key);
  }

  /** Records a key not yet in the window, evicting the oldest while a bound is exceeded. */
  add(key: string, now: number = Date.now()): void {
    if (this.at.has(key)) return;
    this.at.set(key, now);
    this.keys.push(key);
    this.times.push(now);
    this.charged += entryBytes(key);
    while (this.at.size > this.max || (this.charged > this.maxBytes && this.at.size > 0)) this.dropOldest();
  }

  /** How many keys are remembered. */
  get size(): number {
    return this.at.size;
  }

  /** The bytes the remembered keys are charged. */
  get bytes(): number {
    return this.charged;
  }

  private dropOldest(): void {
    // A key leaves the queue and the map together, so the queue's oldest key is always in the map.
    const key = this.keys[this.head++];
    this.at.delete(key);
    this.charged -= entryBytes(key);
    // Drop the spent part of the queue once it is the larger half: amortised constant time.
    if (this.head > 1024 && this.head * 2 > this.keys.length) {
      this.keys = this.keys.slice(this.head);
      this.times = this.times.slice(this.head);
      this.head = 0;
    }
  }
}
