import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { OutcomeWaiters } from '../../server/src/outcome-waiters';
import type { QosOutcome } from '../../server/src/qos-s2c';

/** The routed messages a cluster node waits to hear the outcome of: reports, the timeout, the bound. */

const clock = { setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms), clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout) };

beforeEach(() => void vi.useFakeTimers());
afterEach(() => void vi.useRealTimers());

function recorder(): { told: QosOutcome[]; waiter: (o: QosOutcome) => void } {
  const told: QosOutcome[] = [];
  return { told, waiter: (o) => void told.push(o) };
}

describe('OutcomeWaiters', () => {
  it("tells a waiter its report once, and 'lost' at the timeout, not a millisecond before", () => {
    const w = new OutcomeWaiters(10, 1000, clock);
    const a = recorder();
    const b = recorder();
    const ida = w.expect(a.waiter);
    const idb = w.expect(b.waiter);
    w.settle(ida, 'delivered');
    w.settle(ida, 'lost');
    expect(a.told).toEqual(['delivered']);
    vi.advanceTimersByTime(999);
    expect(b.told).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(b.told).toEqual(['lost']);
    // A report after the timeout is ignored.
    w.settle(idb, 'delivered');
    expect(b.told).toEqual(['lost']);
    expect(w.size).toBe(0);
  });

  it("tells each waiter 'lost' at its own deadline, not at the first one's, and keeps the later ones waiting", () => {
    const w = new OutcomeWaiters(10, 1000, clock);
    const r = [recorder(), recorder(), recorder()];
    w.expect(r[0].waiter);
    vi.advanceTimersByTime(300);
    const id1 = w.expect(r[1].waiter);
    vi.advanceTimersByTime(300);
    w.expect(r[2].waiter);
    vi.advanceTimersByTime(399);
    expect(r.map((x) => x.told.length)).toEqual([0, 0, 0]);
    vi.advanceTimersByTime(1);
    expect(r.map((x) => x.told.length)).toEqual([1, 0, 0]);
    // The middle one is settled by a report: the last one still times out at its own deadline (t = 1600).
    w.settle(id1, 'delivered');
    vi.advanceTimersByTime(599);
    expect(r.map((x) => x.told)).toEqual([['lost'], ['delivered'], []]);
    vi.advanceTimersByTime(1);
    expect(r[2].told).toEqual(['lost']);
    expect(w.size).toBe(0);
    // Empty again: a new waiter gets a full timeout of its own.
    const later = recorder();
    w.expect(later.waiter);
    vi.advanceTimersByTime(999);
    expect(later.told).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(later.told).toEqual(['lost']);
  });

  it("times each waiter by elapsed time, not the wall clock: a step of the system clock neither delays nor hastens 'lost'", () => {
    const w = new OutcomeWaiters(10, 1000, clock);
    const back = recorder();
    w.expect(back.waiter);
    vi.advanceTimersByTime(500);
    // The system clock is stepped back an hour (NTP, a VM resumed): the waiter still times out at 1000 ms.
    vi.setSystemTime(Date.now() - 3_600_000);
    vi.advanceTimersByTime(499);
    expect(back.told).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(back.told).toEqual(['lost']);
    const ahead = [recorder(), recorder()];
    w.expect(ahead[0].waiter);
    vi.advanceTimersByTime(500);
    w.expect(ahead[1].waiter);
    // Stepped forward an hour: the second waiter is not told 'lost' with the first, 500 ms early.
    vi.setSystemTime(Date.now() + 3_600_000);
    vi.advanceTimersByTime(500);
    expect(ahead.map((x) => x.told)).toEqual([['lost'], []]);
    vi.advanceTimersByTime(499);
    expect(ahead[1].told).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(ahead[1].told).toEqual(['lost']);
  });

  it("holds at most `max` waiters: the next is told 'lost' at once and gets no id", () => {
    const w = new OutcomeWaiters(2, 1000, clock);
    const r = [recorder(), recorder(), recorder()];
    expect(w.expect(r[0].waiter)).toBeGreaterThan(0);
    expect(w.expect(r[1].waiter)).toBeGreaterThan(0);
    expect(w.expect(r[2].waiter)).toBe(0);
    expect(r[2].told).toEqual(['lost']);
    expect(w.size).toBe(2);
  });

  it('forgets a waiter without telling it, and settleAll tells every other one lost', () => {
    const w = new OutcomeWaiters(10, 1000, clock);
    const a = recorder();
    const b = recorder();
    w.forget(w.expect(a.waiter));
    w.expect(b.waiter);
    w.settleAll();
    vi.advanceTimersByTime(5000);
    expect(a.told).toEqual([]);
    expect(b.told).toEqual(['lost']);
    expect(w.size).toBe(0);
  });
});
