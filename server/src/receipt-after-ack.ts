import { createFrame, MsgType, type Protocal } from '../../src/protocol';
import type { ServerContext } from './context';
import { FlatMap } from './flat-map';
import { CAP_RECEIPT_IN_ACK, CAP_RECEIPTS, forwardReceipt, RECEIPT_TYPE } from './receipts';
import type { Session } from './session';

const RECEIPT_IN_ACK = CAP_RECEIPTS | CAP_RECEIPT_IN_ACK;

/** A device receipt waiting for its sender's ACK to be written. */
interface DueReceipt {
  readonly receiver: string;
  readonly fp: string;
  /** When the receiver's ACK came (ms since the epoch). */
  readonly atMs: number;
}

/**
 * The receipts waiting on each sender's session, by session id, only until the end of the turn they
 * were made in (kept here rather than on every session: an idle connection pays nothing for it). A
 * FlatMap, not a `Map`: the table gains and loses an entry per message, and a `Map` in the old generation
 * allocates each table it rehashes to there (flat-map.ts). At 13,000 msg/s those tables were 37% of
 * what a mark-compact under load found dead, and the mark-compacts went from a median of 14 to 2 in
 * 20 s without them (bench/README.md).
 */
const waiting = new FlatMap<DueReceipt[]>();

/**
 * Receipts that follow their sender's ACK in the same socket write.
 *
 * A receiver's ACK that settles a held put (its message not yet committed: group-commit.ts) also
 * releases the sender's own ACK, which the sender's frame handler writes in this turn's microtasks. The
 * receipt must not overtake that ACK, so it used to go in a turn of its own: a second write to the
 * sender's socket, and a system call, for every such message (at 8,600 msg/s with SDK clients about an
 * eighth of the server's CPU: bench/README.md). Now the receipt waits on the sender's session and the
 * handler writes it with the ACK ({@link sendAckWithReceiptDue}): in one write, or in the ACK itself. One whose
 * ACK was not written in this turn's microtasks (it waits behind an earlier message of that sender)
 * goes at the next turn as before, whatever happens to its ACK: a receipt is never held longer.
 */
export function receiptAfterAck(ctx: ServerContext, sender: string, receiver: string, fp: string, atMs: number): void {
  const s = ctx.sessions.current(sender);
  if (!s || s.closed) {
    setImmediate(forwardReceipt, ctx, sender, receiver, fp, atMs);
    return;
  }
  const due: DueReceipt = { receiver, fp, atMs };
  const key = String(s.id);
  const list = waiting.get(key);
  if (list) list.push(due);
  else waiting.set(key, [due]);
  setImmediate(sendIfStillDue, ctx, s, sender, due);
}

/** Writes a plain ACK (MobileIMSDK's type 4) of message `fp` to `to`, naming `from` as its sender. */
export function sendAck(ctx: ServerContext, s: Session, fp: string, from: string, to: string): void {
  ctx.io.send(s, createFrame({ type: MsgType.ACK, dataContent: fp, from, to }));
}

/**
 * Writes `sender`'s ACK of the QoS message it sent (`sent`) on `s`, with the receipt of the message that
 * went on (`delivered`: `sent` itself unless a `beforeC2C` hook rewrote it) when one waits there
 * ({@link receiptAfterAck}): inside the ACK when both name the same message and the client asked for
 * that ({@link CAP_RECEIPT_IN_ACK}: one frame fewer per message), else as a frame of its own right after
 * the ACK, in the same write.
 */
export function sendAckWithReceiptDue(ctx: ServerContext, s: Session, sender: string, sent: Protocal, delivered: Protocal): void {
  const ackFp = sent.fp as string;
  const ackFrom = sent.to as string;
  const { fp } = delivered;
  const receiver = delivered.to as string;
  const due = fp === null ? null : takeDue(s, receiver, fp);
  if (due && fp === ackFp && receiver === ackFrom && (s.caps & RECEIPT_IN_ACK) === RECEIPT_IN_ACK) {
    const both = createFrame({ type: MsgType.ACK, dataContent: ackFp, from: ackFrom, to: sender, typeu: RECEIPT_TYPE, sm: due.atMs });
    if (ctx.io.send(s, both)) return;
    // Not written (a closing session; a UDP peer short of byte credit for the longer frame): as apart.
  }
  sendAck(ctx, s, ackFp, ackFrom, sender);
  if (due) void forwardReceipt(ctx, sender, receiver, due.fp, due.atMs);
}

/** Takes the receipt of message `fp` to `receiver` waiting on `s`, if one does. */
function takeDue(s: Session, receiver: string, fp: string): DueReceipt | null {
  if (waiting.size === 0) return null;
  const key = String(s.id);
  const list = waiting.get(key);
  if (!list) return null;
  for (let i = 0; i < list.length; i++) {
    const due = list[i];
    if (due.fp !== fp || due.receiver !== receiver) continue;
    take(key, list, i);
    return due;
  }
  return null;
}

function sendIfStillDue(ctx: ServerContext, s: Session, sender: string, due: DueReceipt): void {
  const key = String(s.id);
  const list = waiting.get(key);
  const i = list ? list.indexOf(due) : -1;
  if (i === -1) return;
  take(key, list as DueReceipt[], i);
  void forwardReceipt(ctx, sender, due.receiver, due.fp, due.atMs);
}

/** Takes entry `i` out of the list waiting under `key` (a session id), and the list once empty. */
function take(key: string, list: DueReceipt[], i: number): void {
  if (list.length === 1) waiting.delete(key);
  else list.splice(i, 1);
}

/** Receipts waiting on `s` now (for tests). */
export function receiptsDueOn(s: Session): number {
  return waiting.get(String(s.id))?.length ?? 0;
}
