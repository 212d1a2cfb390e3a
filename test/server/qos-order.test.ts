import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Protocal } from '../../src/protocol';
import { QosSendDaemon } from '../../server/src/qos-s2c';

const opts = {
  checkIntervalMs: 5000,
  resendAfterMs: 2000,
  maxRetries: 1,
  maxEntries: 10_000,
  maxBytes: 10_000_000,
  maxEntriesPerReceiver: 10_000,
  maxBytesPerReceiver: 10_000_000,
};

function frame(to: string, from: string, fp: string): Protocal {
  return { bridge: false, type: 2, dataContent: 'hi', from, to, fp, QoS: true, typeu: -1, sm: -1 };
}

describe('server QoS daemon: order', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('retransmits, reports lost and settles at stop in the order the messages were tracked, whatever their keys', () => {
    const resent: string[] = [];
    const lost: string[] = [];
    const daemon = new QosSendDaemon(opts, (f) => resent.push(f.fp as string), (fs) => lost.push(...fs.map((f) => f.fp as string)));
    // Enough entries, under several receivers and senders, that the table's own order is not theirs.
    const fps: string[] = [];
    for (let i = 0; i < 300; i++) {
      const fp = `fp-${(i * 7919) % 1000}-${i}`;
      fps.push(fp);
      expect(daemon.enrol(frame(`to-${i % 3}`, `from-${i % 5}`, fp))).toBe(true);
    }
    daemon.start();
    // An ACK in between: settled, so neither retransmitted nor lost.
    expect(daemon.ack('to-1', 'from-1', fps[1])).toBe(true);
    const expected = fps.filter((_, i) => i !== 1);
    vi.advanceTimersByTime(2001);
    expect(resent).toEqual([]);
    vi.advanceTimersByTime(5000 - 2001);
    expect(resent).toEqual(expected);
    expect(lost).toEqual([]);
    vi.advanceTimersByTime(5000);
    expect(lost).toEqual(expected);
    expect(daemon.size).toBe(0);

    const outcomes: string[] = [];
    for (let i = 0; i < 50; i++) {
      const fp = `again-${(i * 31) % 50}-${i}`;
      daemon.enrol(frame('to-0', 'from-0', fp), false, (o) => outcomes.push(`${fp}:${o}`));
    }
    daemon.stop();
    expect(outcomes).toEqual(Array.from({ length: 50 }, (_, i) => `again-${(i * 31) % 50}-${i}:lost`));
  });
});
