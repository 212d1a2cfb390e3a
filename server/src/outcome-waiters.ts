import type { QosOutcome } from './qos-s2c';
import type { QosWaiter } from './routing';
import { unref, type StoreClock } from './store-expiry';

/** A waiter and when it is told 'lost' (ms, on the waiters' clock). */
interface Waiting {
  waiter: QosWaiter;
  deadline: number;
}

/**
 * The QoS messages this node routed to another node and waits to hear the outcome of (for
 * `sendToUser`'s answer), by id: at most `max` at once (beyond, a waiter is told 'lost' at once), each
 * told 'lost' when no report comes within `timeoutMs`. One timer serves them all: every waiter gets the
 * same timeout, so the map's insertion order is the order of their deadlines, and the timer is armed for
 * the oldest one only (a timer per routed message cost an allocation and two timer-list operations each).
 */
export class OutcomeWaiters {
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;
  private timer: unknown = null;

  constructor(
    private readonly max: number,
    private readonly timeoutMs: number,
    private readonly clock: Pick<StoreClock, 'setTimeout' | 'clearTimeout'>,
  ) {}

  /** Deadlines are on the monotonic clock, as the timer is: a step of the system clock moves none. */
  private now(): number {
    return performance.now();
  }

  /** Registers `waiter`; its id goes with the routed frame. 0 when the table is full (told 'lost' at once). */
  expect(waiter: QosWaiter): number {
    if (this.waiting.size >= this.max) {
      waiter('lost');
      return 0;
    }
    const id = this.nextId++;
    this.waiting.set(id, { waiter, deadline: this.now() + this.timeoutMs });
    if (this.timer === null) this.arm(this.timeoutMs);
    return id;
  }

  /** Tells a waiter how its message ended; an unknown id (timed out already, or a forged report) is ignored. */
  settle(id: number, outcome: QosOutcome): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    w.waiter(outcome === 'delivered' ? 'delivered' : 'lost');
  }

  /** Drops a waiter without telling it (its message went to this node's own sessions instead). */
  forget(id: number): void {
    this.waiting.delete(id);
  }

  /** Tells every waiter 'lost' (the node is closing). */
  settleAll(): void {
    for (const id of [...this.waiting.keys()]) this.settle(id, 'lost');
    this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  /** Number of waiters now. */
  get size(): number {
    return this.waiting.size;
  }

  /** Tells the waiters whose deadline has come 'lost' (oldest first), then waits for the next one. */
  private expire(): void {
    this.timer = null;
    const now = this.now();
    for (const [id, w] of this.waiting) {
      if (w.deadline > now) return this.arm(w.deadline - now);
      this.settle(id, 'lost');
    }
  }

  private arm(ms: number): void {
    this.timer = this.clock.setTimeout(() => this.expire(), ms);
    unref(this.timer);
  }
}
