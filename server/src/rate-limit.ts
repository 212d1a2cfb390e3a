/** Per-connection frame rate limit: a token bucket of `burst` frames refilled at `perSecond`. */
export interface RateLimitOptions {
  /** Frames a connection may send at once. */
  burst: number;
  /** Frames per second the bucket refills with. */
  perSecond: number;
}

/** A token bucket judged against the clock, so it needs no timer. */
export class TokenBucket {
  private tokens: number;
  private lastMs: number;

  constructor(private readonly opts: RateLimitOptions, now: number = Date.now()) {
    this.tokens = opts.burst;
    this.lastMs = now;
  }

  /** Takes one token; false when the bucket is empty. */
  take(now: number = Date.now()): boolean {
    const elapsed = Math.max(0, now - this.lastMs);
    this.lastMs = now;
    this.tokens = Math.min(this.opts.burst, this.tokens + (elapsed * this.opts.perSecond) / 1000);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
