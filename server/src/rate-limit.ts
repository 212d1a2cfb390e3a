import { MsgType } from '../../src/protocol';
import { ServerErrorCode } from './errors';

/** Per-connection frame rate limits: token buckets refilled continuously, judged against the clock. */
export interface RateLimitOptions {
  /** Frames a connection may originate at once (data, echo, login, logout). */
  burst: number;
  /** Frames per second a connection may originate, sustained. */
  perSecond: number;
  /** Keep-alives and ACKs beyond the frames the server wrote to the connection, at once (default 100). */
  controlBurst?: number;
  /** Keep-alives and such ACKs per second, sustained (default 10). */
  controlPerSecond?: number;
}

/** {@link RateLimitOptions} with the control bucket's defaults filled in. */
export type ResolvedRateLimit = Required<RateLimitOptions>;

/**
 * Most ACKs a connection may have "owed" to it: each QoS frame the server writes to it allows one ACK
 * that costs nothing. Far above anything in flight to one receiver (replay window, QoS retransmissions),
 * it only stops a connection banking credit from a long session to spend on junk ACKs later.
 */
export const MAX_ACK_CREDIT = 10000;

/** Fills in the control bucket's defaults. */
export function resolveRateLimit(o: RateLimitOptions): ResolvedRateLimit {
  return { controlBurst: 100, controlPerSecond: 10, ...o };
}

/** A token bucket judged against the clock, so it needs no timer. */
export class TokenBucket {
  private tokens: number;
  private lastMs: number;

  constructor(private readonly opts: { burst: number; perSecond: number }, now: number = Date.now()) {
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

  /** Lowers this bucket to `other`'s level when that is lower (both refilled to `now` first). */
  lowerTo(other: TokenBucket, now: number = Date.now()): void {
    this.refill(now);
    other.refill(now);
    this.tokens = Math.min(this.tokens, other.tokens);
  }

  private refill(now: number): void {
    const elapsed = Math.max(0, now - this.lastMs);
    this.lastMs = Math.max(this.lastMs, now);
    this.tokens = Math.min(this.opts.burst, this.tokens + (elapsed * this.opts.perSecond) / 1000);
  }
}

/** Why a frame was refused by a {@link FrameBudget}: the error code and message to send. */
export interface BudgetRefusal {
  code: number;
  message: string;
}

/**
 * What one connection (or one UDP peer) may send, by what the frame is:
 *
 *   data, echo, login, logout, unknown ──> originate bucket (burst / perSecond) ──empty──> error 315
 *   ACK, while ACK credit > 0 ──────────> free (credit − 1); each QoS frame written to it gives credit + 1
 *   ACK beyond credit, keep-alive ──────> control bucket (controlBurst / controlPerSecond) ──empty──> 332
 *
 * A busy receiver's ACKs answer frames the server sent it, so they never cost it its connection; a
 * legitimate client's keep-alives come every few seconds at most, far inside the control bucket.
 */
export class FrameBudget {
  private readonly originate: TokenBucket;
  private readonly control: TokenBucket;
  private ackCredit = 0;

  constructor(opts: ResolvedRateLimit, now: number = Date.now()) {
    this.originate = new TokenBucket(opts, now);
    this.control = new TokenBucket({ burst: opts.controlBurst, perSecond: opts.controlPerSecond }, now);
  }

  /** Charges one received frame of `type`; null when it is allowed, otherwise why it is refused. */
  admit(type: number, now: number = Date.now()): BudgetRefusal | null {
    if (type === MsgType.ACK && this.ackCredit > 0) {
      this.ackCredit--;
      return null;
    }
    if (type === MsgType.ACK || type === MsgType.KEEP_ALIVE) {
      return this.control.take(now)
        ? null
        : { code: ServerErrorCode.CONTROL_RATE_LIMITED, message: 'too many keep-alives, or ACKs for messages this connection was not sent' };
    }
    return this.originate.take(now) ? null : { code: ServerErrorCode.RATE_LIMITED, message: 'too many frames: rate limit exceeded' };
  }

  /**
   * Takes over what an earlier session of the same user left in its buckets, when that is less than this
   * one holds: reconnecting buys no fresh burst. The ACK credit stays this connection's own.
   */
  inherit(earlier: FrameBudget, now: number = Date.now()): void {
    this.originate.lowerTo(earlier.originate, now);
    this.control.lowerTo(earlier.control, now);
  }

  /** Records a QoS frame written to the connection: its ACK will cost nothing. */
  sentQos(): void {
    if (this.ackCredit < MAX_ACK_CREDIT) this.ackCredit++;
  }
}
