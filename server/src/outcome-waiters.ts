import type { QosOutcome } from './qos-s2c';
import type { QosWaiter } from './routing';
import { unref, type StoreClock } from './store-expiry';

/**
 * The QoS messages this node routed to another node and waits to hear the outcome of (for
 * `sendToUser`'s answer), by id: at most `max` at once (beyond, a waiter is told 'lost' at once), each
 * told 'lost' when no report comes within `timeoutMs`.
 */
export class OutcomeWaiters {
  private readonly waiting = new Map<number, { waiter: QosWaiter; timer: unknown }>();
  private nextId = 1;

  constructor(
    private readonly max: number,
    private readonly timeoutMs: number,
    private readonly clock: Pick<StoreClock, 'setTimeout' | 'clearTimeout'>,
  ) {}

  /** Registers `waiter`; its id goes with the routed frame. 0 when the table is full (told 'lost' at once). */
  expect(waiter: QosWaiter): number {
    if (this.waiting.size >= this.max) {
      waiter('lost');
      return 0;
    }
    const id = this.nextId++;
    const timer = this.clock.setTimeout(() => this.settle(id, 'lost'), this.timeoutMs);
    unref(timer);
    this.waiting.set(id, { waiter, timer });
    return id;
  }

  /** Tells a waiter how its message ended; an unknown id (timed out already, or a forged report) is ignored. */
  settle(id: number, outcome: QosOutcome): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    this.clock.clearTimeout(w.timer);
    w.waiter(outcome === 'delivered' ? 'delivered' : 'lost');
  }

  /** Drops a waiter without telling it (its message went to this node's own sessions instead). */
  forget(id: number): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    this.clock.clearTimeout(w.timer);
  }

  /** Tells every waiter 'lost' (the node is closing). */
  settleAll(): void {
    for (const id of [...this.waiting.keys()]) this.settle(id, 'lost');
  }

  /** Number of waiters now. */
  get size(): number {
    return this.waiting.size;
  }
}
