import { describe, expect, it } from 'vitest';
import type { ServerContext } from '../../server/src/context';
import { receiptAfterAck, receiptsDueOn, sendReceiptDue } from '../../server/src/receipt-after-ack';
import { Session, type Link } from '../../server/src/session';

/** A session of `userId` on a link that only counts, and a context whose routing records each receipt sent. */
function world() {
  const link: Link = { transport: 'ws', remote: '127.0.0.1', write: () => true, close: () => undefined };
  const alice = new Session(link, null);
  alice.userId = 'alice';
  const sent: string[] = [];
  const kept: string[] = [];
  const ctx = {
    sessions: { current: (uid: string) => (uid === 'alice' ? alice : undefined) },
    routing: { sendReceipt: (sender: string, receiver: string, fp: string) => (sent.push(`${sender}<-${receiver}:${fp}`), sender === 'alice') },
    receipts: { add: (sender: string, receiver: string, fp: string) => void kept.push(`${sender}<-${receiver}:${fp}`) },
  } as unknown as ServerContext;
  return { ctx, alice, sent, kept };
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('receipts that follow their sender ACK', () => {
  it('goes when the sender ACK is written, once, and only the one for that message and receiver', async () => {
    const { ctx, alice, sent } = world();
    receiptAfterAck(ctx, 'alice', 'bob', 'f1', 1);
    receiptAfterAck(ctx, 'alice', 'bob', 'f2', 2);
    receiptAfterAck(ctx, 'alice', 'carol', 'f1', 3);
    expect(sent).toEqual([]);
    sendReceiptDue(ctx, alice, 'alice', 'bob', 'f2');
    expect(sent).toEqual(['alice<-bob:f2']);
    sendReceiptDue(ctx, alice, 'alice', 'bob', 'f2');
    sendReceiptDue(ctx, alice, 'alice', 'dave', 'f1');
    expect(sent).toEqual(['alice<-bob:f2']);
    sendReceiptDue(ctx, alice, 'alice', 'carol', 'f1');
    expect(sent).toEqual(['alice<-bob:f2', 'alice<-carol:f1']);
    // The one whose ACK was not written in this turn goes at the next, and nothing goes twice.
    await nextTurn();
    expect(sent).toEqual(['alice<-bob:f2', 'alice<-carol:f1', 'alice<-bob:f1']);
    expect(receiptsDueOn(alice)).toBe(0);
  });

  it('for a sender with no open session here, goes at the next turn and is kept when no session takes it', async () => {
    const { ctx, alice, sent, kept } = world();
    receiptAfterAck(ctx, 'erin', 'bob', 'f1', 1);
    alice.closed = true;
    receiptAfterAck(ctx, 'alice', 'bob', 'f2', 2);
    expect(sent).toEqual([]);
    expect(receiptsDueOn(alice)).toBe(0);
    await nextTurn();
    expect(sent).toEqual(['erin<-bob:f1', 'alice<-bob:f2']);
    expect(kept).toEqual(['erin<-bob:f1']);
  });
});
