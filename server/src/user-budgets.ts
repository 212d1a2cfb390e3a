import type { FrameBudget, ResolvedRateLimit } from './rate-limit';

/** Users whose last session's rate budget is remembered at most (the oldest is forgotten first). */
export const MAX_REMEMBERED_BUDGETS = 100_000;

/**
 * The rate budget a user's session left when it closed, handed to that user's next login so reconnecting
 * does not refill the buckets. An entry is kept only as long as its buckets take to refill completely
 * (`retainMs`, 10 s with the default limits): after that a fresh budget is the same thing. Bounded by
 * `maxEntries`; entries leave in the order they came, so expiry and eviction are O(1) amortised.
 */
export class UserBudgets {
  private readonly byUser = new Map<string, { budget: FrameBudget; untilMs: number }>();
  /** How long an ended session's budget is remembered. */
  readonly retainMs: number;

  constructor(rate: ResolvedRateLimit, readonly maxEntries = MAX_REMEMBERED_BUDGETS) {
    this.retainMs = Math.ceil(Math.max(rate.burst / rate.perSecond, rate.controlBurst / rate.controlPerSecond) * 1000);
  }

  /** Users remembered. */
  get size(): number {
    return this.byUser.size;
  }

  /** Remembers what a user's session left as it ends. */
  put(userId: string, budget: FrameBudget, now: number = Date.now()): void {
    this.sweep(now);
    this.byUser.delete(userId);
    this.byUser.set(userId, { budget, untilMs: now + this.retainMs });
    if (this.byUser.size > this.maxEntries) this.byUser.delete(this.byUser.keys().next().value as string);
  }

  /** Lowers a newly logged-in session's budget to what the user's last session left, and forgets that. */
  carryInto(userId: string, budget: FrameBudget, now: number = Date.now()): void {
    this.sweep(now);
    const left = this.byUser.get(userId);
    if (!left) return;
    this.byUser.delete(userId);
    budget.inherit(left.budget, now);
  }

  private sweep(now: number): void {
    for (const [userId, e] of this.byUser) {
      if (e.untilMs > now) return;
      this.byUser.delete(userId);
    }
  }
}
