import { Timer, type Clock } from './clock';
import { DEV } from './dev';
import { IMError } from './errors';
import type { Protocal } from './protocol';

/** A message the application sent, as reported in `delivered` and `lost` events. */
export interface OutgoingMessage {
  fp: string | null;
  from: string;
  to: string;
  content: string;
  typeu: number;
  qos: boolean;
}

/** What a successful `send()` resolves with. */
export interface SendReceipt {
  /** The fingerprint (null for a message sent without QoS and without an explicit fp). */
  fp: string | null;
  to: string;
  /** True when an ACK confirmed delivery; false when a non-QoS message was written to the socket. */
  acked: boolean;
}

/** Timings and bounds of the send side of QoS, all in milliseconds. */
export interface OutboxOptions {
  checkIntervalMs: number;
  resendAfterMs: number;
  maxRetries: number;
  maxPending: number;
  deliverTimeoutMs: number;
}

/** What the outbox needs from the client. */
export interface OutboxIO {
  /** Writes a frame to the live link; false when it could not be written. */
  _write(frame: Protocal): boolean;
  _delivered(message: OutgoingMessage): void;
  _lost(message: OutgoingMessage, error: IMError): void;
  /** The set of QoS messages changed (one was queued or settled); used to persist the outbox. */
  _changed(): void;
}

/** A QoS message as kept by an {@link OutboxStore}: its frame, fingerprint included, and when it was queued. */
export interface StoredMessage {
  frame: Protocal;
  enqueuedAt: number;
}

/**
 * Keeps unacknowledged QoS messages across a page reload or an app restart. `save` receives the whole
 * set after each change (an empty list when nothing is pending); `load` returns it at the next login.
 */
export interface OutboxStore {
  load(userId: string): StoredMessage[] | Promise<StoredMessage[]>;
  save(userId: string, messages: StoredMessage[]): void | Promise<void>;
}

interface Entry {
  frame: Protocal;
  enqueuedAt: number;
  /** When it was first written on the current link; null while it waits for a link. */
  _sentAt: number | null;
  _retries: number;
  _promise: Promise<SendReceipt>;
  _resolve(receipt: SendReceipt): void;
  _reject(error: IMError): void;
}

/**
 * The send side of QoS.
 *
 * ```
 *  send() ──> waiting ── link up (in order) ──> in flight ── ACK (type 4) ──> delivered
 *                ^                                 │  each check, older than resendAfterMs:
 *                └──────── link down ──────────────┤      retransmit, same fp (maxRetries times)
 *                                                  └─ no ACK after maxRetries ──> lost
 *  waiting or in flight for deliverTimeoutMs ──> lost
 * ```
 *
 * Retransmission follows MobileIMSDK's `QoS4SendDaemon` (check every 5 s, resend what is older than
 * 3 s, lost after 2 retransmissions), but only while a link is up: a message sent while offline waits,
 * bounded by `maxPending`, and goes out in order after the next login, so it is reported lost only if
 * it cannot be delivered within `deliverTimeoutMs`.
 */
export class QosOutbox {
  private readonly _entries = new Map<string, Entry>();
  private readonly _checkTimer: Timer;
  private readonly _deadlineTimer: Timer;
  // Unset until first needed (_online only tested for truth; _deadlineAt read only while its timer is
  // armed): fewer assignments in the minified bundle.
  private _online?: boolean;
  /** When the deadline timer fires: the earliest queued message's delivery deadline. */
  private _deadlineAt!: number;
  private _seq = 0;

  constructor(private readonly _clock: Clock, private readonly _opts: OutboxOptions, private readonly _io: OutboxIO) {
    this._checkTimer = new Timer(this._clock, () => this._check());
    this._deadlineTimer = new Timer(this._clock, () => this._expire());
  }

  /** Messages waiting or in flight. */
  get _size(): number {
    return this._entries.size;
  }

  /**
   * Queues a frame; QoS frames settle on their ACK or loss, others once written. `enqueuedAt` is given
   * for a message restored from storage, whose delivery deadline runs from when it was first queued.
   */
  _enqueue(frame: Protocal, enqueuedAt: number = this._clock.now()): Promise<SendReceipt> {
    const key = frame.QoS && frame.fp != null ? frame.fp : '#' + ++this._seq;
    const existing = this._entries.get(key);
    if (existing) {
      const same = existing.frame.to === frame.to && existing.frame.dataContent === frame.dataContent;
      if (!same) throw new TypeError(DEV ? `fp ${key} belongs to another message that is still pending; use a fresh fp` : `fp ${key} in use`);
      return existing._promise;
    }
    if (this._entries.size >= this._opts.maxPending) {
      return Promise.reject(new IMError('OUTBOX_FULL', `outbox full: ${this._opts.maxPending} messages wait`));
    }
    let resolve!: Entry['_resolve'];
    let reject!: Entry['_reject'];
    const promise = new Promise<SendReceipt>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const entry: Entry = { frame, enqueuedAt, _sentAt: null, _retries: 0, _promise: promise, _resolve: resolve, _reject: reject };
    this._entries.set(key, entry);
    if (frame.QoS) this._io._changed();
    // Only a message restored from storage can fall due before the one the timer waits for.
    const due = enqueuedAt + this._opts.deliverTimeoutMs;
    if (!this._deadlineTimer._armed || due < this._deadlineAt) this._armDeadline(this._clock.now());
    if (this._online) this._transmit(key, entry);
    return promise;
  }

  /** The QoS messages not yet settled, in the order they were queued. */
  _snapshot(): StoredMessage[] {
    const out: StoredMessage[] = [];
    this._entries.forEach((e) => {
      if (e.frame.QoS) out.push({ frame: e.frame, enqueuedAt: e.enqueuedAt });
    });
    return out;
  }

  /** The link is up: send everything waiting, in the order it was queued. */
  _linkUp(): void {
    this._online = true;
    for (const [key, entry] of Array.from(this._entries)) {
      if (!this._online) return;
      if (entry._sentAt === null && this._entries.get(key) === entry) this._transmit(key, entry);
    }
  }

  /** The link is down: everything in flight waits again, with a fresh retry budget for the next link. */
  _linkDown(): void {
    this._online = false;
    this._checkTimer._cancel();
    this._entries.forEach((e) => {
      e._sentAt = null;
      e._retries = 0;
    });
  }

  /** An ACK for `fp` arrived: it settles our QoS message `fp`, if there is one. */
  _ack(fp: string): void {
    const entry = this._entries.get(fp);
    if (!entry || !entry.frame.QoS) return;
    this._remove(fp);
    entry._resolve({ fp, to: entry.frame.to as string, acked: true });
    this._io._delivered(toMessage(entry.frame));
  }

  /** The server refused QoS message `fp` (an error frame naming it): it is lost at once with `error`. */
  _refuse(fp: string, error: IMError): boolean {
    const entry = this._entries.get(fp);
    if (entry) this._fail(fp, entry, error);
    return !!entry;
  }

  /** Removes every message and returns them, so the caller can report them lost after its own teardown. */
  _drain(): Array<{ message: OutgoingMessage; _reject(error: IMError): void }> {
    const all = Array.from(this._entries.values()).map((e) => ({ message: toMessage(e.frame), _reject: e._reject }));
    this._entries.clear();
    this._checkTimer._cancel();
    this._deadlineTimer._cancel();
    this._online = false;
    return all;
  }

  private _transmit(key: string, entry: Entry): void {
    if (this._io._write(entry.frame)) {
      if (!entry.frame.QoS) {
        this._remove(key);
        return entry._resolve({ fp: entry.frame.fp, to: entry.frame.to as string, acked: false });
      }
      entry._sentAt = this._clock.now();
    }
    // Written and waiting for its ACK, or not written (the next check tries again while the link is up).
    if (!this._checkTimer._armed) this._checkTimer._arm(this._opts.checkIntervalMs);
  }

  private _check(): void {
    const now = this._clock.now();
    let inFlight = false;
    for (const [key, entry] of Array.from(this._entries)) {
      if (!this._online) return;
      if (this._entries.get(key) !== entry) continue;
      if (entry._sentAt === null) {
        this._transmit(key, entry);
        inFlight = true;
        continue;
      }
      if (entry._retries >= this._opts.maxRetries) {
        this._fail(key, entry, `no ACK after ${entry._retries} retransmissions`);
        continue;
      }
      if (now - entry._sentAt > this._opts.resendAfterMs && this._io._write(entry.frame)) entry._retries++;
      inFlight = true;
    }
    if (inFlight && this._online) this._checkTimer._arm(this._opts.checkIntervalMs);
  }

  private _expire(): void {
    const now = this._clock.now();
    for (const [key, entry] of Array.from(this._entries)) {
      if (now - entry.enqueuedAt >= this._opts.deliverTimeoutMs && this._entries.get(key) === entry) {
        this._fail(key, entry, `not delivered within ${this._opts.deliverTimeoutMs} ms`);
      }
    }
    this._armDeadline(now);
  }

  private _fail(key: string, entry: Entry, why: string | IMError): void {
    this._remove(key);
    const name = entry.frame.fp == null ? 'message' : `message ${entry.frame.fp}`;
    const error = typeof why === 'string' ? new IMError('SEND_TIMEOUT', `${name} lost: ${why}`) : why;
    entry._reject(error);
    this._io._lost(toMessage(entry.frame), error);
  }

  private _remove(key: string): void {
    const entry = this._entries.get(key);
    this._entries.delete(key);
    if (entry && entry.frame.QoS) this._io._changed();
    if (this._entries.size === 0) {
      this._checkTimer._cancel();
      this._deadlineTimer._cancel();
    }
  }

  private _armDeadline(now: number): void {
    let earliest = Infinity;
    this._entries.forEach((e) => (earliest = Math.min(earliest, e.enqueuedAt)));
    if (earliest === Infinity) return this._deadlineTimer._cancel();
    this._deadlineAt = earliest + this._opts.deliverTimeoutMs;
    this._deadlineTimer._arm(this._deadlineAt - now);
  }
}

function toMessage(p: Protocal): OutgoingMessage {
  return {
    fp: p.fp,
    from: p.from as string,
    to: p.to as string,
    content: p.dataContent || '',
    typeu: p.typeu,
    qos: p.QoS,
  };
}
