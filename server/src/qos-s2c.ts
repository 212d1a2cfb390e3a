import type { Protocal } from '../../src/protocol';

/** Timings of the server's QoS send daemon (MobileIMSDK `QoS4SendDaemonS2C`: 5000 / 2000 / 1). */
export interface QosOptions {
  /** How often pending messages are checked. */
  checkIntervalMs: number;
  /** A message is not retransmitted while it is younger than this. */
  resendAfterMs: number;
  /** Retransmissions before the message is declared lost. */
  maxRetries: number;
}

/** How a tracked message ended. */
export type QosOutcome = 'delivered' | 'lost';

interface Entry {
  frame: Protocal;
  firstSentMs: number;
  retries: number;
  waiters: Array<(outcome: QosOutcome) => void>;
}

/**
 * Tracks every QoS frame the server writes to a client until that client ACKs it.
 *
 *   enrol ──> [pending] ──check: older than resendAfterMs──> resend (retries+1)
 *                 │                      └─check: retries >= maxRetries──> lost (onLost)
 *                 └── ack(to, fp) ──> delivered
 *
 * Entries are keyed by receiver and fp, so one user cannot settle another's message.
 */
export class QosSendDaemon {
  private readonly pending = new Map<string, Entry>();
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly opts: QosOptions,
    private readonly resend: (frame: Protocal) => void,
    private readonly onLost: (frames: Protocal[]) => void,
    /** Called on each ACK of a tracked message with the time since it was (re)written first. */
    private readonly onAcked?: (ageMs: number) => void,
  ) {}

  /** Starts the periodic check; the first runs at once, as MobileIMSDK's does. */
  start(): void {
    if (this.timer) return;
    this.check();
  }

  /** Stops checking and settles every waiter as lost (the stored copies stay for the next start). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const entries = [...this.pending.values()];
    this.pending.clear();
    for (const e of entries) for (const w of e.waiters) w('lost');
  }

  /**
   * Tracks a frame just written to its receiver. `restart` resets the timings of an entry already
   * tracked (a replay after re-login); otherwise an existing entry keeps its timings.
   */
  enrol(frame: Protocal, restart = false, waiter?: (outcome: QosOutcome) => void): void {
    const key = pairKey(frame.to, frame.fp);
    const existing = this.pending.get(key);
    if (existing) {
      existing.frame = frame;
      if (restart) {
        existing.firstSentMs = Date.now();
        existing.retries = 0;
      }
      if (waiter) existing.waiters.push(waiter);
      return;
    }
    this.pending.set(key, { frame, firstSentMs: Date.now(), retries: 0, waiters: waiter ? [waiter] : [] });
  }

  /** Settles the message `fp` sent to `to` as delivered; the frame it settled, or null when none was tracked. */
  ack(to: string, fp: string): Protocal | null {
    const key = pairKey(to, fp);
    const e = this.pending.get(key);
    if (!e) return null;
    this.pending.delete(key);
    this.onAcked?.(Date.now() - e.firstSentMs);
    for (const w of e.waiters) w('delivered');
    return e.frame;
  }

  /** Whether the message is still waiting for its ACK. */
  has(to: string, fp: string): boolean {
    return this.pending.has(pairKey(to, fp));
  }

  /** Whether the message is waiting for an ACK and was first written at or after `sinceMs`. */
  sentSince(to: string, fp: string, sinceMs: number): boolean {
    const e = this.pending.get(pairKey(to, fp));
    return !!e && e.firstSentMs >= sinceMs;
  }

  /** Number of messages waiting for an ACK. */
  get size(): number {
    return this.pending.size;
  }

  private check(): void {
    const now = Date.now();
    const lost: Protocal[] = [];
    for (const [key, e] of this.pending) {
      if (e.retries >= this.opts.maxRetries) {
        this.pending.delete(key);
        lost.push({ ...e.frame });
        for (const w of e.waiters) w('lost');
      } else if (now - e.firstSentMs > this.opts.resendAfterMs) {
        e.retries++;
        this.resend(e.frame);
      }
    }
    if (lost.length > 0) this.onLost(lost);
    this.timer = setTimeout(() => this.check(), this.opts.checkIntervalMs);
  }
}

/** A key for (receiver, fp) that no other pair shares, whatever characters either holds. */
export function pairKey(a: string | null, b: string | null): string {
  const first = a ?? '';
  return `${first.length}:${first}${b ?? ''}`;
}
