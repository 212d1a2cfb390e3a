import { describe, expect, it } from 'vitest';
import { DedupWindow } from '../../server/src/dedup';
import { systemClock } from '../../src/clock';
import { QosInbox } from '../../src/qos-inbox';

// A flood of distinct fingerprints fills a de-duplication window; from then on every new message evicts
// the oldest entry. Both windows keep their entries in a Map used as a FIFO (delete the oldest, then
// look at the front again). V8 leaves deleted Map entries as holes until the table is rehashed, and
// every walk from the front steps over all of them, so the cost of one message grows with the window:
// a flood of C2S fingerprints makes every later C2S message on the server about a hundred times dearer.
// These tests compare the cost per new fingerprint at a full large window with a full small one. A
// constant-time window (a ring of (fp, time) beside a Set, say) measured 1.7× (10,000 vs 100) and 3.4×
// (100,000 vs 100, cache misses) on the benchmark machine; the Map FIFO measures about 20×, so the
// bound of 8× separates the two with room for noise.

/** Mean nanoseconds per call of `add` for `n` new keys, after filling the window with `fill` keys. */
function costPerNewKey(add: (key: string) => unknown, fill: number, n: number): number {
  let k = 0;
  for (; k < fill; k++) add(`user\nfp-${k}`);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) add(`user\nfp-${k++}`);
  return Number(process.hrtime.bigint() - t0) / n;
}

describe('de-duplication windows under a flood of distinct fingerprints', () => {
  it('server C2S window: a new fingerprint costs about the same at 100,000 entries as at 100', () => {
    const small = new DedupWindow(600000, 100);
    const large = new DedupWindow(600000, 100000);
    const smallNs = costPerNewKey((key) => small.checkAndAdd(key), 100, 80000);
    const largeNs = costPerNewKey((key) => large.checkAndAdd(key), 100000, 80000);
    console.log(`server DedupWindow: ${(smallNs / 1000).toFixed(2)} µs per new fp at 100 entries, ${(largeNs / 1000).toFixed(2)} µs at 100,000`);
    expect(largeNs / smallNs).toBeLessThan(8);
  });

  it('client QoS inbox: a new fingerprint costs about the same at 10,000 entries as at 100', () => {
    const small = new QosInbox(systemClock, 600000, 100);
    const large = new QosInbox(systemClock, 600000, 10000);
    const smallNs = costPerNewKey((key) => small.isDuplicate(key), 100, 50000);
    const largeNs = costPerNewKey((key) => large.isDuplicate(key), 10000, 50000);
    console.log(`client QosInbox: ${(smallNs / 1000).toFixed(2)} µs per new fp at 100 entries, ${(largeNs / 1000).toFixed(2)} µs at 10,000`);
    expect(largeNs / smallNs).toBeLessThan(8);
  });
});
