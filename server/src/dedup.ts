import { DedupWindow as SharedDedupWindow } from '../../src/dedup-window';

/**
 * C2S de-duplication (MobileIMSDK `QoS4ReciveDaemonC2S`): remembers each (sender, fp) for `ttlMs` so a
 * retransmitted C2S message is ACKed again but handed to the application once. Bounded by `max`
 * entries (the oldest go first) so a flood of fingerprints cannot grow it without limit.
 */
export class DedupWindow extends SharedDedupWindow {
  /** Records the key; true when it was already seen within the window. */
  override checkAndAdd(key: string, now: number = Date.now()): boolean {
    return super.checkAndAdd(key, now);
  }
}
