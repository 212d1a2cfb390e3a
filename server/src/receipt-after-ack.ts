import type { ServerContext } from './context';
import { forwardReceipt } from './receipts';
import type { DueReceipt, Session } from './session';

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
  (s.receiptsDue ??= []).push(due);
  setImmediate(sendIfStillDue, ctx, s, sender, due);
}

/**
 * Called after writing `sender`'s ACK of message `fp` to `receiver` on `s`: its receipt, when one waits
 * there ({@link receiptAfterAck}), goes now, into the same write.
 */
export function sendReceiptDue(ctx: ServerContext, s: Session, sender: string, receiver: string, fp: string): void {
  const waiting = s.receiptsDue;
  if (waiting === null) return;
  for (let i = 0; i < waiting.length; i++) {
    const due = waiting[i];
    if (due.fp !== fp || due.receiver !== receiver) continue;
    take(s, i);
    void forwardReceipt(ctx, sender, receiver, fp, due.atMs);
    return;
  }
}

function sendIfStillDue(ctx: ServerContext, s: Session, sender: string, due: DueReceipt): void {
  const i = s.receiptsDue === null ? -1 : s.receiptsDue.indexOf(due);
  if (i === -1) return;
  take(s, i);
  void forwardReceipt(ctx, sender, due.receiver, due.fp, due.atMs);
}

function take(s: Session, i: number): void {
  const waiting = s.receiptsDue as DueReceipt[];
  if (waiting.length === 1) s.receiptsDue = null;
  else waiting.splice(i, 1);
}
