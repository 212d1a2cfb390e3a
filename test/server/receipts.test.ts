import { describe, expect, it } from 'vitest';
import { forwardReceipt, ReceiptBacklog } from '../../server/src/receipts';
import { ackFrame, dataFrame, loginFrame, loginWithCaps, useServers, type Frame } from './helpers';

const { setup } = useServers();


const receiptOf = (f: Frame) => ({ from: f.from, to: f.to, ...(JSON.parse(f.dataContent as string) as { fp: string; at: number }) });

describe('device receipts (type 60) and the login capabilities', () => {
  it('answers a login with caps with the granted caps and the message limit; a MobileIMSDK login gets the exact MobileIMSDK response', async () => {
    const { ws } = await setup({ maxMessageBytes: 4000 });
    const ours = await ws();
    expect(await loginWithCaps(ours, 'alice')).toEqual({ code: 0, firstLoginTime: expect.any(Number), caps: 1, maxMessageBytes: 4000 });
    const unknownBits = await ws();
    expect(await loginWithCaps(unknownBits, 'carol', 7)).toMatchObject({ code: 0, caps: 3 });
    const inAck = await ws();
    expect(await loginWithCaps(inAck, 'dave', 3)).toMatchObject({ code: 0, caps: 3 });
    const java = await ws();
    java.send(loginFrame('bob'));
    const text = (await java.nextOfType(50)).dataContent as string;
    expect(text).toMatch(/^\{"code":0,"firstLoginTime":\d+\}$/);
  });

  it('forwards the receiver device ACK of a live C2C message to a sender that asked, after the server ACK', async () => {
    const { ws } = await setup();
    const alice = await ws();
    const bob = await ws();
    await loginWithCaps(alice, 'alice');
    await loginWithCaps(bob, 'bob');
    alice.send(dataFrame('alice', 'bob', 'hi', 'fp-live'));
    expect((await alice.nextOfType(4)).dataContent).toBe('fp-live');
    expect((await bob.nextOfType(2)).fp).toBe('fp-live');
    expect(await alice.quiet(100)).toEqual([]);
    const before = Date.now();
    bob.send(ackFrame('bob', 'alice', 'fp-live'));
    const r = receiptOf(await alice.nextOfType(60));
    expect(r).toEqual({ from: 'bob', to: 'alice', fp: 'fp-live', at: expect.any(Number) });
    expect(r.at).toBeGreaterThanOrEqual(before);
    // A repeated ACK settles nothing more and draws no second receipt.
    bob.send(ackFrame('bob', 'alice', 'fp-live'));
    expect((await alice.quiet(150)).filter((f) => f.type === 60)).toEqual([]);
  });

  it('never sends a type-60 frame to a sender that did not ask (a MobileIMSDK client)', async () => {
    const { ws } = await setup();
    const alice = await ws();
    const bob = await ws();
    alice.send(loginFrame('alice'));
    await alice.nextOfType(50);
    await loginWithCaps(bob, 'bob');
    alice.send(dataFrame('alice', 'bob', 'hi', 'fp-java'));
    await alice.nextOfType(4);
    await bob.nextOfType(2);
    bob.send(ackFrame('bob', 'alice', 'fp-java'));
    expect((await alice.quiet(200)).map((f) => f.type)).toEqual([]);
  });

  it('a message stored while the receiver was offline produces its receipt when the receiver logs in and ACKs it', async () => {
    const { ws } = await setup();
    const alice = await ws();
    await loginWithCaps(alice, 'alice');
    alice.send(dataFrame('alice', 'bob', 'while you were away', 'fp-stored'));
    await alice.nextOfType(4);
    expect(await alice.quiet(100)).toEqual([]);
    const bob = await ws();
    bob.send(loginFrame('bob'));
    expect((await bob.nextOfType(2)).fp).toBe('fp-stored');
    bob.send(ackFrame('bob', 'alice', 'fp-stored'));
    expect(receiptOf(await alice.nextOfType(60))).toMatchObject({ from: 'bob', fp: 'fp-stored' });
  });

  it('keeps the receipt for a sender offline when the receiver ACKs, and hands it over at its next login that asks', async () => {
    const { ws } = await setup();
    const alice = await ws();
    await loginWithCaps(alice, 'alice');
    alice.send(dataFrame('alice', 'bob', 'later', 'fp-later'));
    await alice.nextOfType(4);
    alice.close();
    await alice.closed;
    const bob = await ws();
    await loginWithCaps(bob, 'bob');
    expect((await bob.nextOfType(2)).fp).toBe('fp-later');
    bob.send(ackFrame('bob', 'alice', 'fp-later'));
    await bob.quiet(100);
    const again = await ws();
    await loginWithCaps(again, 'alice');
    expect(receiptOf(await again.nextOfType(60))).toMatchObject({ from: 'bob', to: 'alice', fp: 'fp-later' });
    // Handed over once.
    const third = await ws();
    await loginWithCaps(third, 'alice');
    expect((await third.quiet(150)).filter((f) => f.type === 60)).toEqual([]);
  });

  it('an ACK for a message the receiver never got draws no receipt', async () => {
    const { ws } = await setup();
    const alice = await ws();
    const mallory = await ws();
    await loginWithCaps(alice, 'alice');
    await loginWithCaps(mallory, 'mallory');
    mallory.send(ackFrame('mallory', 'alice', 'fp-never-sent'));
    expect(await alice.quiet(150)).toEqual([]);
  });
});

describe('forwardReceipt', () => {
  const limits = { maxPerSender: 3, maxTotal: 5, maxBytes: 1 << 20, ttlMs: 1000 };
  const io = { send: () => true };

  it('keeps the receipt for the sender\'s next login when routing rejects, refuses it, or finds no session; never rejects itself', async () => {
    const receipts = new ReceiptBacklog(limits);
    const answers = [Promise.reject(new Error('redis down')), Promise.resolve(false), false, Promise.resolve(true), true];
    let i = 0;
    const ctx = { receipts, io, routing: { sendReceipt: () => answers[i++] } };
    for (const fp of ['fp-rejected', 'fp-refused', 'fp-offline', 'fp-routed', 'fp-here']) await forwardReceipt(ctx, 'alice', 'bob', fp, 5);
    expect(receipts.take('alice', 5).map((r) => r.fp)).toEqual(['fp-rejected', 'fp-refused', 'fp-offline']);
  });
});

describe('the backlog of receipts for offline senders', () => {
  const limits = { maxPerSender: 3, maxTotal: 5, maxBytes: 1 << 20, ttlMs: 1000 };

  it('keeps at most maxPerSender per sender, the newest', () => {
    const b = new ReceiptBacklog(limits);
    for (let i = 0; i < 4; i++) b.add('alice', 'bob', `fp${i}`, 0);
    expect(b.take('alice', 0).map((r) => r.fp)).toEqual(['fp1', 'fp2', 'fp3']);
    expect(b.size).toBe(0);
    expect(b.dropped).toBe(1);
  });

  it('beyond maxTotal and maxBytes the oldest receipt of anyone gives way, one past its TTL first', () => {
    const b = new ReceiptBacklog(limits);
    for (let i = 0; i < 5; i++) expect(b.add(`s${i}`, 'bob', 'fp', i * 100)).toBe(true);
    expect(b.add('late', 'bob', 'fp', 999)).toBe(true);
    expect(b.size).toBe(5);
    expect(b.take('s0', 999)).toEqual([]);
    expect(b.take('s1', 999).map((r) => r.atMs)).toEqual([100]);
    expect(b.dropped).toBe(1);
    // At 1100, s2 (stored at 200) has outlived the 1000 ms TTL; s3 (300) has not.
    const c = new ReceiptBacklog(limits);
    c.add('old', 'bob', 'fp', 0);
    c.add('young', 'bob', 'fp', 500);
    c.add('new', 'bob', 'fp', 1000);
    expect(c.size).toBe(2);
    expect(c.take('old', 1000)).toEqual([]);
    expect(c.dropped).toBe(0);
    const small = new ReceiptBacklog({ ...limits, maxBytes: 200 });
    expect(small.add('a', 'b', 'x'.repeat(20), 0)).toBe(true);
    expect(small.add('a', 'b', 'y'.repeat(20), 0)).toBe(true);
    expect(small.take('a', 0).map((r) => r.fp)).toEqual(['y'.repeat(20)]);
    expect(small.add('a', 'b', 'x'.repeat(120), 0)).toBe(false);
  });

  it('keeps making room at the same cost when full: 100,000 adds past the bound each displace one receipt', () => {
    const b = new ReceiptBacklog({ maxPerSender: 1000, maxTotal: 1000, maxBytes: 1 << 30, ttlMs: 1e12 });
    for (let i = 0; i < 101000; i++) b.add(`s${i % 5000}`, 'bob', `fp${i}`, i);
    expect(b.size).toBe(1000);
    expect(b.dropped).toBe(100000);
    // The last 1000 are kept: i = 100000..100999, from senders s0..s999.
    expect(b.take('s999', 101000).map((r) => r.fp)).toEqual(['fp100999']);
    expect(b.take('s1000', 101000)).toEqual([]);
  });

  it('drops receipts older than the TTL at take (both sides of the boundary) and refuses over-long fps', () => {
    const b = new ReceiptBacklog(limits);
    b.add('alice', 'bob', 'old', 0);
    b.add('alice', 'bob', 'new', 1);
    expect(b.take('alice', 1000).map((r) => r.fp)).toEqual(['new']);
    expect(b.add('alice', 'bob', 'x'.repeat(129), 0)).toBe(false);
  });
});
