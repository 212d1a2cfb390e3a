import { describe, expect, it } from 'vitest';
import type { ServerContext } from '../../server/src/context';
import { createFrame, type Protocal } from '../../src/protocol';
import { receiptAfterAck, receiptsDueOn, sendAckWithReceiptDue } from '../../server/src/receipt-after-ack';
import { Session, type Link } from '../../server/src/session';

/** A session of `userId` on a link that only counts, and a context whose routing records each receipt sent. */
function world() {
  const link: Link = { transport: 'ws', remote: '127.0.0.1', write: () => true, close: () => undefined };
  const alice = new Session(link, null, 'test');
  alice.userId = 'alice';
  const sent: string[] = [];
  const kept: string[] = [];
  const written: Protocal[] = [];
  let writes = true;
  const ctx = {
    io: { send: (_s: Session, p: Protocal) => (written.push(p), writes) },
    sessions: { current: (uid: string) => (uid === 'alice' ? alice : undefined) },
    routing: { sendReceipt: (sender: string, receiver: string, fp: string) => (sent.push(`${sender}<-${receiver}:${fp}`), sender === 'alice') },
    receipts: { add: (sender: string, receiver: string, fp: string) => void kept.push(`${sender}<-${receiver}:${fp}`) },
  } as unknown as ServerContext;
  return { ctx, alice, sent, kept, written, failWrites: () => void (writes = false) };
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Alice's QoS message `fp` to `to`, as sent or as a hook passed it on. */
const c2c = (to: string, fp: string): Protocal => createFrame({ type: 2, from: 'alice', to, fp, QoS: true, dataContent: 'hi' });

describe('receipts that follow their sender ACK', () => {
  it('goes when the sender ACK is written, once, and only the one for that message and receiver', async () => {
    const { ctx, alice, sent, written } = world();
    alice.caps = 1;
    receiptAfterAck(ctx, 'alice', 'bob', 'f1', 1);
    receiptAfterAck(ctx, 'alice', 'bob', 'f2', 2);
    receiptAfterAck(ctx, 'alice', 'carol', 'f1', 3);
    expect(sent).toEqual([]);
    sendAckWithReceiptDue(ctx, alice, 'alice', c2c('bob', 'f2'), c2c('bob', 'f2'));
    expect(sent).toEqual(['alice<-bob:f2']);
    sendAckWithReceiptDue(ctx, alice, 'alice', c2c('bob', 'f2'), c2c('bob', 'f2'));
    sendAckWithReceiptDue(ctx, alice, 'alice', c2c('dave', 'f1'), c2c('dave', 'f1'));
    expect(sent).toEqual(['alice<-bob:f2']);
    sendAckWithReceiptDue(ctx, alice, 'alice', c2c('carol', 'f1'), c2c('carol', 'f1'));
    expect(sent).toEqual(['alice<-bob:f2', 'alice<-carol:f1']);
    // Every ACK was written, each a plain MobileIMSDK ACK (this client asked for receipts only).
    expect(written.map((p) => [p.type, p.dataContent, p.from, p.to, p.typeu, p.sm])).toEqual([
      [4, 'f2', 'bob', 'alice', -1, -1],
      [4, 'f2', 'bob', 'alice', -1, -1],
      [4, 'f1', 'dave', 'alice', -1, -1],
      [4, 'f1', 'carol', 'alice', -1, -1],
    ]);
    // The one whose ACK was not written in this turn goes at the next, and nothing goes twice.
    await nextTurn();
    expect(sent).toEqual(['alice<-bob:f2', 'alice<-carol:f1', 'alice<-bob:f1']);
    expect(receiptsDueOn(alice)).toBe(0);
  });

  it('rides in the ACK for a client that asked for that (caps 3), unless the message was rewritten or the ACK is not written', async () => {
    const { ctx, alice, sent, kept, written, failWrites } = world();
    alice.caps = 3;
    receiptAfterAck(ctx, 'alice', 'bob', 'f1', 1001);
    sendAckWithReceiptDue(ctx, alice, 'alice', c2c('bob', 'f1'), c2c('bob', 'f1'));
    expect(written.map((p) => [p.type, p.dataContent, p.from, p.to, p.typeu, p.sm])).toEqual([[4, 'f1', 'bob', 'alice', 60, 1001]]);
    expect(sent).toEqual([]);
    // A hook sent it on as another message (or to another user): the ACK names the sender's, the receipt the one delivered.
    receiptAfterAck(ctx, 'alice', 'bob', 'f2-rewritten', 1002);
    sendAckWithReceiptDue(ctx, alice, 'alice', c2c('bob', 'f2'), c2c('bob', 'f2-rewritten'));
    receiptAfterAck(ctx, 'alice', 'carol', 'f3', 1003);
    sendAckWithReceiptDue(ctx, alice, 'alice', c2c('bob', 'f3'), c2c('carol', 'f3'));
    expect(written.slice(1).map((p) => [p.type, p.dataContent, p.from, p.typeu, p.sm])).toEqual([[4, 'f2', 'bob', -1, -1], [4, 'f3', 'bob', -1, -1]]);
    expect(sent).toEqual(['alice<-bob:f2-rewritten', 'alice<-carol:f3']);
    // The combined frame could not be written: a plain ACK is tried, and the receipt goes the usual way, through routing.
    failWrites();
    receiptAfterAck(ctx, 'alice', 'bob', 'f4', 1004);
    sendAckWithReceiptDue(ctx, alice, 'alice', c2c('bob', 'f4'), c2c('bob', 'f4'));
    expect(written.slice(-2).map((p) => [p.type, p.dataContent, p.typeu, p.sm])).toEqual([[4, 'f4', 60, 1004], [4, 'f4', -1, -1]]);
    expect(sent.at(-1)).toBe('alice<-bob:f4');
    await nextTurn();
    expect(sent).toHaveLength(3);
    expect(kept).toEqual([]);
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
