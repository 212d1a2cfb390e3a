import type { Protocal } from '../../src/protocol';
import { entryBytes, frameBytes, tupleKey } from './bounds';
import { FlatMap } from './flat-map';

/** Timings of the server's QoS send daemon (MobileIMSDK `QoS4SendDaemonS2C`: 5000 / 2000 / 1). */
export interface QosOptions {
  /** How often pending messages are checked. */
  checkIntervalMs: number;
  /** A message is not retransmitted while it is younger than this. */
  resendAfterMs: number;
  /** Retransmissions before the message is declared lost. */
  maxRetries: number;
  /** Most messages waiting for an ACK, server-wide; beyond it a new message is refused (error 321). */
  maxEntries: number;
  /** Most bytes (frames and keys, as charged by `entryBytes`) waiting for an ACK, server-wide. */
  maxBytes: number;
  /** Most messages waiting for one receiver's ACK: a receiver that never ACKs blocks only itself (321). */
  maxEntriesPerReceiver: number;
  /** Most bytes waiting for one receiver's ACK, charged as for `maxBytes`. */
  maxBytesPerReceiver: number;
}

/**
 * What a tracked message holds beyond its encoded frame's bytes and its key's `entryBytes`: the decoded
 * frame object and its strings' headers, the entry, its waiters array and its table slots. Measured: a
 * message with 100 characters of content took 540–570 bytes of heap against 410 charged without this
 * (test/server/heap-flood.test.ts checks that a full table holds no more heap than its `maxBytes`).
 */
const TRACKED_FRAME_OVERHEAD_BYTES = 256;

/** How a tracked message ended. */
export type QosOutcome = 'delivered' | 'lost';

interface Entry {
  key: string;
  /** The receiver whose share the entry is charged to. */
  to: string;
  frame: Protocal;
  bytes: number;
  firstSentMs: number;
  retries: number;
  waiters: Array<(outcome: QosOutcome) => void>;
  /** When it was tracked, in a running count: checks act in this order. */
  order: number;
}

/**
 * Tracks every QoS frame the server writes to a client until that client ACKs it.
 *
 *   enrol ──> [pending] ──check: older than resendAfterMs──> resend (retries+1)
 *                 │                      └─check: retries >= maxRetries──> lost (onLost)
 *                 └── ack(to, fp) ──> delivered
 *
 * Entries are keyed by receiver, sender and fp: one user cannot settle another's message, and two
 * senders that pick the same fp for one receiver do not share an entry. The table is bounded in entries
 * and bytes, server-wide and per receiver (so one receiver that never ACKs fills only its own share):
 * {@link QosSendDaemon.hasRoom} says whether a new message may be written, and a live
 * {@link QosSendDaemon.enrol} beyond the bounds is refused. Replays (`restart`) are bounded by each
 * session's replay window instead, so they may go past the bounds by at most that much.
 */
export class QosSendDaemon {
  private readonly pending = new FlatMap<Entry>();
  private tracked = 0;
  private charged = 0;
  /** Entries and bytes charged to each receiver with at least one entry. */
  private readonly shares = new FlatMap<{ entries: number; bytes: number }>();
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
    const entries: Entry[] = [];
    this.pending.forEach((e) => entries.push(e));
    entries.sort(byOrder);
    this.pending.clear();
    this.charged = 0;
    this.shares.clear();
    for (const e of entries) for (const w of e.waiters) w('lost');
  }

  /**
   * Whether one more message of `bytes` encoded bytes fits the table's server-wide bounds and, when
   * `to` is given, that receiver's share.
   */
  hasRoom(bytes: number, to?: string): boolean {
    const cost = charge(bytes);
    if (this.pending.size >= this.opts.maxEntries || this.charged + cost > this.opts.maxBytes) return false;
    if (to === undefined) return true;
    const share = this.shares.get(to);
    return !share || (share.entries < this.opts.maxEntriesPerReceiver && share.bytes + cost <= this.opts.maxBytesPerReceiver);
  }

  /**
   * Tracks a frame just written to its receiver; false (nothing tracked, the waiter untouched) when a new
   * entry would break the bounds. `restart` resets the timings of an entry already tracked (a replay
   * after re-login) and is always accepted; otherwise an existing entry keeps its timings.
   */
  enrol(frame: Protocal, restart = false, waiter?: (outcome: QosOutcome) => void): boolean {
    const to = frame.to ?? '';
    const key = qosKey(to, frame.from, frame.fp);
    const existing = this.pending.get(key);
    if (existing) {
      existing.frame = frame;
      if (restart) {
        existing.firstSentMs = Date.now();
        existing.retries = 0;
      }
      if (waiter) existing.waiters.push(waiter);
      return true;
    }
    const size = frameBytes(frame);
    if (!restart && !this.hasRoom(size, to)) return false;
    const bytes = charge(size, key);
    this.charged += bytes;
    const share = this.shares.get(to);
    if (share) {
      share.entries++;
      share.bytes += bytes;
    } else this.shares.set(to, { entries: 1, bytes });
    this.pending.set(key, { key, to, frame, bytes, firstSentMs: Date.now(), retries: 0, waiters: waiter ? [waiter] : [], order: this.tracked++ });
    return true;
  }

  /** Settles the message `fp` that `from` sent to `to` as delivered; false when it was not tracked. */
  ack(to: string, from: string, fp: string): boolean {
    const key = qosKey(to, from, fp);
    const e = this.pending.get(key);
    if (!e) return false;
    this.remove(key, e);
    this.onAcked?.(Date.now() - e.firstSentMs);
    for (const w of e.waiters) w('delivered');
    return true;
  }

  /** Whether the message is still waiting for its ACK. */
  has(to: string, from: string, fp: string): boolean {
    return this.pending.has(qosKey(to, from, fp));
  }

  /** Whether the message is waiting for an ACK and was first written at or after `sinceMs`. */
  sentSince(to: string, from: string, fp: string, sinceMs: number): boolean {
    const e = this.pending.get(qosKey(to, from, fp));
    return !!e && e.firstSentMs >= sinceMs;
  }

  /** Number of messages waiting for an ACK. */
  get size(): number {
    return this.pending.size;
  }

  /** The bytes the waiting messages are charged. */
  get bytes(): number {
    return this.charged;
  }

  private remove(key: string, e: Entry): void {
    this.pending.delete(key);
    this.charged -= e.bytes;
    const share = this.shares.get(e.to);
    if (share && --share.entries === 0) this.shares.delete(e.to);
    else if (share) share.bytes -= e.bytes;
  }

  private check(): void {
    const now = Date.now();
    const due: Entry[] = [];
    this.pending.forEach((e) => {
      if (e.retries >= this.opts.maxRetries || now - e.firstSentMs > this.opts.resendAfterMs) due.push(e);
    });
    // In the order they were tracked, so a receiver gets its retransmissions in the order sent.
    due.sort(byOrder);
    const lost: Protocal[] = [];
    for (const e of due) {
      if (this.pending.get(e.key) !== e) continue;
      if (e.retries >= this.opts.maxRetries) {
        this.remove(e.key, e);
        lost.push({ ...e.frame });
        for (const w of e.waiters) w('lost');
      } else {
        e.retries++;
        this.resend(e.frame);
      }
    }
    if (lost.length > 0) this.onLost(lost);
    this.timer = setTimeout(() => this.check(), this.opts.checkIntervalMs);
  }
}

/** What a message of `bytes` encoded bytes is charged in the table (`key` unknown yet: its fixed part only). */
function charge(bytes: number, key?: string): number {
  return bytes + entryBytes(key) + TRACKED_FRAME_OVERHEAD_BYTES;
}

function byOrder(a: Entry, b: Entry): number {
  return a.order - b.order;
}

/** A key for (receiver, sender, fp) that no other triple shares, whatever characters they hold. */
export function qosKey(to: string | null, from: string | null, fp: string | null): string {
  return tupleKey(to, from, fp);
}
