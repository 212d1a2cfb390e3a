import type { ServerContext } from './context';
import { forwardReceipt } from './receipts';
import type { Session } from './session';

/** A device receipt waiting for its sender's ACK to be written. */
interface DueReceipt {
  readonly receiver: string;
  readonly fp: string;
  /** When the receiver's ACK came (ms since the epoch). */
  readonly atMs: number;
}

/**
 * The receipts waiting on each sender's session, only until the end of the turn they were made in
 * (kept here rather than on every session: an idle connection pays nothing for it).
 */
const waiting = new Map<Session, DueReceipt[]>();

/**
 * Receipts that follow their sender's ACK in the same socket write.
 *
 * A receiver's ACK that settles a held put (its message not yet committed: sqlite-store.ts) also
 * releases the sender's own ACK, which the sender's frame handler writes in this turn's microtasks. The
 * receipt must not overtake that ACK, so it used to go in a turn of its own: a second write to the
 * sender's socket, and a system call, for every such message (at 8,600 msg/s with SDK clients about an
 * eighth of the server's CPU: bench/README.md). Now the receipt waits on the sender's session and the
 * handler writes it right after the ACK ({@link sendReceiptDue}), so both leave in one write. One whose
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
  const list = waiting.get(s);
  if (list) list.push(due);
  else waiting.set(s, [due]);
  setImmediate(sendIfStillDue, ctx, s, sender, due);
}

/**
 * Called after writing `sender`'s ACK of message `fp` to `receiver` on `s`: its receipt, when one waits
 * there ({@link receiptAfterAck}), goes now, into the same write.
 */
export function sendReceiptDue(ctx: ServerContext, s: Session, sender: string, receiver: string, fp: string): void {
  if (waiting.size === 0) return;
  const list = waiting.get(s);
  if (!list) return;
  for (let i = 0; i < list.length; i++) {
    const due = list[i];
    if (due.fp !== fp || due.receiver !== receiver) continue;
    take(s, list, i);
    void forwardReceipt(ctx, sender, receiver, fp, due.atMs);
    return;
  }
}

function sendIfStillDue(ctx: ServerContext, s: Session, sender: string, due: DueReceipt): void {
  const list = waiting.get(s);
  const i = list ? list.indexOf(due) : -1;
  if (i === -1) return;
  take(s, list as DueReceipt[], i);
  void forwardReceipt(ctx, sender, due.receiver, due.fp, due.atMs);
}

function take(s: Session, list: DueReceipt[], i: number): void {
  if (list.length === 1) waiting.delete(s);
  else list.splice(i, 1);
}

/** Receipts waiting on `s` now (for tests). */
export function receiptsDueOn(s: Session): number {
  return waiting.get(s)?.length ?? 0;
}
