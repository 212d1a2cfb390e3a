/**
 * C2S de-duplication (MobileIMSDK `QoS4ReciveDaemonC2S`): remembers each (sender, fp) for `ttlMs` so a
 * retransmitted C2S message is ACKed again but handed to the application once. Bounded by `max`
 * entries (the oldest go first) so a flood of fingerprints cannot grow it without limit.
 */
export class DedupWindow {
  private readonly seen = new Map<string, number>();

  constructor(private readonly ttlMs: number, private readonly max: number) {}

  /** Records the key; true when it was already seen within the window. */
  checkAndAdd(key: string, now: number = Date.now()): boolean {
    const at = this.seen.get(key);
    if (at !== undefined && now - at < this.ttlMs) return true;
    if (at !== undefined) this.seen.delete(key);
    this.seen.set(key, now);
    this.evict(now);
    return false;
  }

  /** Number of keys held. */
  get size(): number {
    return this.seen.size;
  }

  private evict(now: number): void {
    for (const [key, at] of this.seen) {
      if (this.seen.size <= this.max && now - at < this.ttlMs) break;
      this.seen.delete(key);
    }
  }
}
