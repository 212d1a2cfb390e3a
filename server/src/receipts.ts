import { createFrame, parseObject, readInt, type Protocal } from '../../src/protocol';
import { entryBytes, MAX_FP_LENGTH } from './bounds';
import { isPromise, type MaybePromise } from './maybe-promise';
import type { Routing } from './routing';
import type { Session } from './session';

/**
 * Device receipts, a wire extension MobileIMSDK peers never see. A client that puts `"caps": 1` in its
 * login payload is told so in the login response, and from then on gets a frame of type
 * {@link RECEIPT_TYPE} when the receiver's own device ACKs one of its C2C QoS messages, live or replayed
 * from the store days later:
 *
 *   sender ──data fp──> server ──stored, ACK (✓)──> sender
 *                          └──data fp──> receiver ──ACK fp──> server ──type 60 {fp, at} (✓✓)──> sender
 *
 * A sender offline at that moment gets its receipts at its next login (if that login asks for them),
 * from a backlog bounded in entries and bytes; a receipt displaced by newer ones, past the backlog's TTL,
 * or waiting through a server restart is dropped (the message itself is never affected).
 */

/** The frame type of a device receipt (unused by MobileIMSDK v6, whose server types stop at 54). */
export const RECEIPT_TYPE = 60;
/** Capability bit: the client wants device receipts. */
export const CAP_RECEIPTS = 1;
/**
 * Capability bit, with {@link CAP_RECEIPTS}: a receipt due when its sender's ACK is written rides in that
 * ACK (type 4, `typeu` {@link RECEIPT_TYPE}, `sm` the receipt's time) instead of a frame of its own.
 */
export const CAP_RECEIPT_IN_ACK = 2;
/** Every capability bit this server grants. */
export const SUPPORTED_CAPS = CAP_RECEIPTS | CAP_RECEIPT_IN_ACK;


/** Bounds of the receipts waiting for offline senders. */
export interface ReceiptBacklogLimits {
  /** Receipts kept for one sender; the oldest give way (default 1000). */
  maxPerSender: number;
  /** Receipts kept in all (default 100000). */
  maxTotal: number;
  /** Bytes of user ids and fps kept in all (default 16 MiB). */
  maxBytes: number;
  /** How long a receipt waits for its sender to log in (default 7 days). */
  ttlMs: number;
}

/** A receipt handed to its sender at login. */
export interface WaitingReceipt {
  fp: string;
  receiver: string;
  atMs: number;
}

/**
 * Where receipts wait for their offline senders: this process's {@link ReceiptBacklog}, or in a cluster
 * one shared by every node (receipts-redis.ts), so a sender gets them at whatever node it logs in.
 */
export interface ReceiptKeeper {
  /** Keeps a receipt for `sender`, making room by dropping the oldest; false when it cannot be kept at all. */
  add(sender: string, receiver: string, fp: string, atMs: number): MaybePromise<boolean>;
  /** Removes and returns what waits for `sender`, oldest first, without what outlived the TTL. */
  take(sender: string, nowMs: number): MaybePromise<WaitingReceipt[]>;
}

/** One receipt waiting for its sender. */
interface Pending {
  sender: string;
  fp: string;
  receiver: string;
  atMs: number;
  bytes: number;
  /** Taken by its sender or dropped: the queue skips it. */
  gone: boolean;
}

/** The capability bits a login payload asks for, or null when it has no `caps` key (a MobileIMSDK client). */
export function requestedCaps(loginPayload: string | null): number | null {
  try {
    const o = parseObject(loginPayload, 'login info');
    if (!('caps' in o)) return null;
    const caps = readInt(o, 'caps');
    return caps >= 0 && caps <= 0x7fffffff ? caps : 0;
  } catch {
    return 0;
  }
}

/** The type-60 frame telling `sender` that `receiver`'s device has message `fp`. */
export function receiptFrame(sender: string, receiver: string, fp: string, atMs: number): Protocal {
  return createFrame({ type: RECEIPT_TYPE, dataContent: JSON.stringify({ fp, at: atMs }), from: receiver, to: sender });
}

/**
 * Receipts for senders who were offline when their receiver's device ACKed, bounded in count and bytes.
 * Every receipt is also in one queue in arrival order, so making room (the oldest receipt of anyone gives
 * way, one past its TTL first) costs O(1) however full the backlog is.
 */
export class ReceiptBacklog implements ReceiptKeeper {
  private readonly bySender = new Map<string, Pending[]>();
  /** Every receipt kept, oldest first; entries already taken or displaced are skipped (`gone`). */
  private queue: Pending[] = [];
  private head = 0;
  private total = 0;
  private bytes = 0;
  /** Receipts dropped because a bound was reached (not counting those that outlived the TTL). */
  dropped = 0;

  constructor(private readonly limits: ReceiptBacklogLimits) {}

  /** Number of receipts waiting. */
  get size(): number {
    return this.total;
  }

  /** Keeps a receipt for `sender`, making room by dropping the oldest; false when it cannot be kept at all. */
  add(sender: string, receiver: string, fp: string, atMs: number): boolean {
    const bytes = entryBytes(sender, receiver, fp);
    if (fp.length > MAX_FP_LENGTH || bytes > this.limits.maxBytes) {
      this.dropped++;
      return false;
    }
    this.expire(atMs);
    while (this.total >= this.limits.maxTotal || this.bytes + bytes > this.limits.maxBytes) {
      this.dropOldest();
      this.dropped++;
    }
    let list = this.bySender.get(sender);
    if (!list) this.bySender.set(sender, (list = []));
    if (list.length >= this.limits.maxPerSender) {
      this.forget(list.shift() as Pending);
      this.dropped++;
    }
    const p: Pending = { sender, fp, receiver, atMs, bytes, gone: false };
    list.push(p);
    this.queue.push(p);
    this.total++;
    this.bytes += bytes;
    return true;
  }

  /** Removes and returns what waits for `sender`, oldest first, without what outlived the TTL. */
  take(sender: string, nowMs: number): WaitingReceipt[] {
    const list = this.bySender.get(sender);
    if (!list) return [];
    this.bySender.delete(sender);
    for (const p of list) this.forget(p);
    return list.filter((p) => nowMs - p.atMs < this.limits.ttlMs);
  }

  /** Drops the receipts at the front of the queue that outlived the TTL. */
  private expire(nowMs: number): void {
    for (let p = this.peek(); p && nowMs - p.atMs >= this.limits.ttlMs; p = this.peek()) this.dropOldest();
  }

  /** The oldest receipt still kept, skipping those already gone. */
  private peek(): Pending | undefined {
    while (this.head < this.queue.length && this.queue[this.head].gone) this.head++;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return this.queue[this.head];
  }

  /** Drops the oldest receipt: it is also the oldest of its sender's list, which is in arrival order too. */
  private dropOldest(): void {
    const p = this.peek();
    if (!p) return;
    const list = this.bySender.get(p.sender) as Pending[];
    list.shift();
    if (list.length === 0) this.bySender.delete(p.sender);
    this.forget(p);
  }

  private forget(p: Pending): void {
    p.gone = true;
    this.total--;
    this.bytes -= p.bytes;
  }
}

/** What forwarding a receipt needs of the server. */
export interface ReceiptContext {
  readonly routing: Pick<Routing, 'sendReceipt'>;
  readonly receipts: ReceiptKeeper;
  readonly io: { send(s: Session, p: Protocal): boolean };
}

/**
 * `receiver`'s device ACKed message `fp` from `sender`: routing tells the sender now if it is online
 * (a session that did not ask for receipts drops it: a MobileIMSDK client must never see a type-60
 * frame); a sender offline gets it kept for its next login, as does one routing failed for. A promise only
 * when routing answers with one; it never rejects.
 */
export function forwardReceipt(ctx: ReceiptContext, sender: string, receiver: string, fp: string, atMs: number): Promise<void> | undefined {
  const routed = ctx.routing.sendReceipt(sender, receiver, fp, atMs);
  if (isPromise(routed)) {
    return routed.then(
      (ok) => void (ok || ctx.receipts.add(sender, receiver, fp, atMs)),
      () => void ctx.receipts.add(sender, receiver, fp, atMs),
    );
  }
  if (!routed) ctx.receipts.add(sender, receiver, fp, atMs);
  return undefined;
}

/**
 * Hands a sender who just logged in (asking for receipts) what waited for it; others' backlog is dropped.
 * A shared keeper answers later: the session gets them then, if it is still open.
 */
export function flushReceipts(ctx: ReceiptContext, s: Session, userId: string, nowMs: number): void {
  const waiting = ctx.receipts.take(userId, nowMs);
  if (isPromise(waiting)) void waiting.then((w) => sendWaiting(ctx, s, userId, w));
  else sendWaiting(ctx, s, userId, waiting);
}

function sendWaiting(ctx: ReceiptContext, s: Session, userId: string, waiting: WaitingReceipt[]): void {
  if (!(s.caps & CAP_RECEIPTS) || s.closed) return;
  for (const r of waiting) if (!ctx.io.send(s, receiptFrame(userId, r.receiver, r.fp, r.atMs))) return;
}
