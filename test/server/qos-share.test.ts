import { describe, expect, it } from 'vitest';
import { ServerErrorCode } from '../../server/src/index';
import { resolveOptions } from '../../server/src/options';
import { ackFrame, dataFrame, errorOf, login, useServers, type Frame, type RawClient } from './helpers';

const { setup } = useServers();

/** Sends a C2C message and answers with what the sender heard about it: 'ack' or the error code. */
async function sendC2C(c: RawClient, from: string, to: string, fp: string, content = fp): Promise<'ack' | number> {
  c.send(dataFrame(from, to, content, fp));
  const f = await c.next((x: Frame) => (x.type === 4 && x.dataContent === fp) || (x.type === 52 && JSON.parse(x.dataContent as string).fp === fp));
  return f.type === 4 ? 'ack' : errorOf(f).errorCode;
}

/** Sends `n` messages to an ACKing receiver one by one; answers with what the sender heard of each. */
async function sendToAcking(sender: RawClient, from: string, receiver: RawClient, to: string, prefix: string, n: number): Promise<Array<'ack' | number>> {
  const results: Array<'ack' | number> = [];
  for (let i = 0; i < n; i++) {
    const fp = `${prefix}${i}`;
    const r = await sendC2C(sender, from, to, fp);
    results.push(r);
    if (r !== 'ack') continue;
    expect((await receiver.next((f) => f.type === 2 && f.fp === fp)).dataContent).toBe(fp);
    receiver.send(ackFrame(to, from, fp));
  }
  return results;
}

describe('each receiver has a bounded share of the QoS table', () => {
  it('a receiver that never ACKs fills only its own share: messages to others are all delivered, its own get 321', async () => {
    // The whole table holds 6; A's share is 3, so A flooded with 6 cannot fill the table for everyone.
    const { ws, server } = await setup({ qos: { maxEntries: 6, maxEntriesPerReceiver: 3 } });
    const [s, a, b, u] = [await ws(), await ws(), await ws(), await ws()];
    await login(s, 's');
    await login(a, 'a');
    await login(b, 'b');
    await login(u, 'u');
    const flood: Array<'ack' | number> = [];
    for (let i = 0; i < 6; i++) flood.push(await sendC2C(s, 's', 'a', `fa${i}`));
    expect(flood).toEqual(['ack', 'ack', 'ack', ServerErrorCode.SERVER_BUSY, ServerErrorCode.SERVER_BUSY, ServerErrorCode.SERVER_BUSY]);
    // Only the accepted ones reached A, and only they are stored (a refusal is neither relayed nor stored).
    expect((await a.quiet(100)).filter((f) => f.type === 2).map((f) => f.fp)).toEqual(['fa0', 'fa1', 'fa2']);
    expect(server.metrics().offlinePending).toBe(3);
    // A's share stays full (A never ACKs); every message to B, from the flooder and from anyone else, is delivered.
    expect(await sendToAcking(u, 'u', b, 'b', 'ub', 10)).toEqual(Array(10).fill('ack'));
    expect(await sendToAcking(s, 's', b, 'b', 'sb', 10)).toEqual(Array(10).fill('ack'));
    // A push to A is refused the same way; to B it is written.
    expect(await server.sendToUser('a', 'push', { fp: 'pa' })).toEqual({ fp: 'pa', status: 'busy' });
    const pushB = server.sendToUser('b', 'push', { fp: 'pb' });
    expect((await b.next((f) => f.type === 2 && f.fp === 'pb')).dataContent).toBe('push');
    b.send(ackFrame('b', '0', 'pb'));
    expect(await pushB).toEqual({ fp: 'pb', status: 'delivered' });
    // Another sender's message to A is refused too: the share is A's, whoever fills it.
    expect(await sendC2C(u, 'u', 'a', 'ua0')).toBe(ServerErrorCode.SERVER_BUSY);
    expect(await a.quiet(100)).toEqual([]);
    // One ACK from A frees one place in its share, and the refused fp may be sent anew.
    a.send(ackFrame('a', 's', 'fa0'));
    await expect.poll(() => server.metrics().offlinePending).toBe(2);
    expect(await sendC2C(s, 's', 'a', 'fa3')).toBe('ack');
    expect((await a.nextOfType(2)).fp).toBe('fa3');
    expect(await sendC2C(s, 's', 'a', 'fa4')).toBe(ServerErrorCode.SERVER_BUSY);
  });

  it('is bounded in bytes per receiver too', async () => {
    const { ws } = await setup({ qos: { maxBytes: 8000, maxBytesPerReceiver: 2600 } });
    const [s, a, b] = [await ws(), await ws(), await ws()];
    await login(s, 's');
    await login(a, 'a');
    await login(b, 'b');
    const big = 'x'.repeat(1200);
    expect(await sendC2C(s, 's', 'a', 'big1', big)).toBe('ack');
    expect(await sendC2C(s, 's', 'a', 'big2', big)).toBe(ServerErrorCode.SERVER_BUSY);
    expect(await sendC2C(s, 's', 'a', 'big3', big)).toBe(ServerErrorCode.SERVER_BUSY);
    // B is not held to A's bytes: one big message to B (not yet ACKed) and then another after its ACK.
    expect(await sendC2C(s, 's', 'b', 'bb1', big)).toBe('ack');
    expect((await b.nextOfType(2)).fp).toBe('bb1');
    b.send(ackFrame('b', 's', 'bb1'));
    expect(await sendC2C(s, 's', 'b', 'bb2', big)).toBe('ack');
  });

  it('the server-wide bound still holds when no single receiver is at its share', async () => {
    const { ws, server } = await setup({ qos: { maxEntries: 4, maxEntriesPerReceiver: 3 } });
    const [s, a, b, c] = [await ws(), await ws(), await ws(), await ws()];
    for (const [cl, id] of [[s, 's'], [a, 'a'], [b, 'b'], [c, 'c']] as const) await login(cl, id);
    expect([await sendC2C(s, 's', 'a', 'a0'), await sendC2C(s, 's', 'a', 'a1'), await sendC2C(s, 's', 'b', 'b0'), await sendC2C(s, 's', 'b', 'b1')]).toEqual(['ack', 'ack', 'ack', 'ack']);
    // Nobody is at a share of 3, but the table holds 4: C, with nothing waiting, is refused as well.
    expect(await sendC2C(s, 's', 'c', 'c0')).toBe(ServerErrorCode.SERVER_BUSY);
    expect(await sendC2C(s, 's', 'a', 'a2')).toBe(ServerErrorCode.SERVER_BUSY);
    expect(await c.quiet(100)).toEqual([]);
    expect(server.metrics().offlinePending).toBe(4);
    // A receiver that is offline is not tracked: its messages are stored whatever the table holds.
    expect(await sendC2C(s, 's', 'nobody', 'n0')).toBe('ack');
  });

  it('validates the per-receiver options and defaults them to 1000 messages and 1 MiB', () => {
    expect(resolveOptions({}).qos).toMatchObject({ maxEntriesPerReceiver: 1000, maxBytesPerReceiver: 1024 * 1024 });
    expect(() => resolveOptions({ qos: { maxEntriesPerReceiver: 0 } })).toThrow(/qos\.maxEntriesPerReceiver/);
    expect(() => resolveOptions({ qos: { maxEntriesPerReceiver: Number.NaN } })).toThrow(/qos\.maxEntriesPerReceiver/);
    expect(() => resolveOptions({ qos: { maxBytesPerReceiver: -1 } })).toThrow(/qos\.maxBytesPerReceiver/);
    expect(resolveOptions({ qos: { maxEntriesPerReceiver: 1, maxBytesPerReceiver: 1 } }).qos.maxEntriesPerReceiver).toBe(1);
  });
});
