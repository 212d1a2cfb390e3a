import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Socket } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { OfflineStoreError, silentLogger, SqliteOfflineStore, type SqliteStoreOptions } from '../../server/src/index';
import { parseCli } from '../../server/src/cli-args';
import { ackFrame, dataFrame, errorOf, login, loginFrame, loginWithCaps, startServer, useServers } from './helpers';

const { setup } = useServers();
const dirs: string[] = [];
const stores: SqliteOfflineStore[] = [];
afterEach(() => {
  vi.useRealTimers();
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function openStore(holdMs?: number, extra: Omit<SqliteStoreOptions, 'holdMs' | 'logger'> = {}): { store: SqliteOfflineStore; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'im-hold-'));
  dirs.push(dir);
  const store = new SqliteOfflineStore(dir, { holdMs, logger: silentLogger, ...extra });
  stores.push(store);
  return { store, dir };
}

/** A store holding puts 10 ms whose messages expire 1000 ms after they are stored (swept every 100 ms), and the fps it reports expired. */
function openExpiringStore(): { store: SqliteOfflineStore; expired: string[] } {
  const expired: string[] = [];
  const { store } = openStore(10, { ttlMs: 1000, sweepIntervalMs: 100, onExpired: (m) => void expired.push(...m.map((x) => x.fp)) });
  return { store, expired };
}

/** Rows ever inserted into the store's table (AUTOINCREMENT's counter survives deletes): 0 = never written. */
function insertsEver(dir: string): number {
  const db = new Database(join(dir, 'offline.db'), { readonly: true });
  try {
    const row = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'pending'").get() as { seq: number } | undefined;
    return row?.seq ?? 0;
  } finally {
    db.close();
  }
}

/** Settles once `p` did, or reports that it has not within this turn's microtasks. */
async function settledYet<T>(p: Promise<T>): Promise<{ value: T } | 'pending'> {
  const marker = Symbol('pending');
  const r = await Promise.race([p, Promise.resolve().then(() => Promise.resolve(marker))]);
  return r === marker ? 'pending' : { value: r as T };
}

describe('held puts: a message its receiver ACKs before the commit is never written', () => {
  it('settles a held put and its removal together without writing anything', async () => {
    const { store, dir } = openStore(10);
    const put = store.putHeld('bob', 'alice', 'fp1', '{"x":1}');
    expect(store.count('bob')).toBe(1);
    expect(store.remove('bob', 'alice', 'fp1')).toBe(true);
    expect(await put).toBe(true);
    expect(store.count('bob')).toBe(0);
    expect(store.total()).toBe(0);
    expect(insertsEver(dir)).toBe(0);
  });

  it('commits a held put when the hold ends and not a millisecond before; a removal after that deletes the row', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { store, dir } = openStore(10);
    const put = store.putHeld('bob', 'alice', 'fp1', '{"x":1}');
    await vi.advanceTimersByTimeAsync(9);
    expect(await settledYet(put)).toBe('pending');
    expect(insertsEver(dir)).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(await settledYet(put)).toEqual({ value: true });
    expect(insertsEver(dir)).toBe(1);
    expect(store.list('bob', 0, 10).map((m) => m.fp)).toEqual(['fp1']);
    const removal = store.remove('bob', 'alice', 'fp1');
    expect(removal).toBeInstanceOf(Promise);
    await vi.advanceTimersByTimeAsync(10);
    expect(await removal).toBe(true);
    expect(store.total()).toBe(0);
  });

  it('answers a second ACK of a committed held put as a duplicate: false, at once once the row is gone', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { store } = openStore(10);
    const put = store.putHeld('bob', 'alice', 'fp1', '{"x":1}');
    await vi.advanceTimersByTimeAsync(10);
    expect(await put).toBe(true);
    // Two ACKs before the removal is committed: the row is deleted once, and only the first says so.
    const first = store.remove('bob', 'alice', 'fp1');
    const second = store.remove('bob', 'alice', 'fp1');
    await vi.advanceTimersByTimeAsync(10);
    expect([await first, await second]).toEqual([true, false]);
    // A third after that commit: nothing to delete, answered without waiting for another commit.
    expect(store.remove('bob', 'alice', 'fp1')).toBe(false);
    expect(store.total()).toBe(0);
  });

  it('answers false for the ACK of a committed held put whose row expired before the ACK came', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { store, expired } = openExpiringStore();
    const put = store.putHeld('bob', 'alice', 'fp1', '{"x":1}');
    await vi.advanceTimersByTimeAsync(10);
    expect(await put).toBe(true);
    await vi.advanceTimersByTimeAsync(1200);
    expect(expired).toEqual(['fp1']);
    // Nothing left to delete, answered at once as for any duplicate: the receiver's next frames do not wait.
    expect(store.remove('bob', 'alice', 'fp1')).toBe(false);
    expect(store.total()).toBe(0);
  });

  it('answers true for the ACK of a held put even when the row committed before it expired before the deletion', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { store, expired } = openExpiringStore();
    const first = store.putHeld('bob', 'alice', 'fp1', '{"n":1}');
    await vi.advanceTimersByTimeAsync(10);
    expect(await first).toBe(true);
    // t = 1090: a retransmission, held; t = 1095: bob ACKs it, and the deletion of the first row is queued.
    await vi.advanceTimersByTimeAsync(1080);
    const again = store.putHeld('bob', 'alice', 'fp1', '{"n":1}');
    await vi.advanceTimersByTimeAsync(5);
    const removal = store.remove('bob', 'alice', 'fp1');
    expect(await again).toBe(true);
    // t = 1100: the sweeper removes the first row (stored at t = 10) before the deletion commits at t = 1105.
    await vi.advanceTimersByTimeAsync(10);
    expect(expired).toEqual(['fp1']);
    expect(await removal).toBe(true);
    expect(store.total()).toBe(0);
  });

  it('deletes the committed row of a held put when its retransmission, held again, is ACKed', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { store, dir } = openStore(10);
    const first = store.putHeld('bob', 'alice', 'fp1', '{"n":1}');
    await vi.advanceTimersByTimeAsync(10);
    expect(await first).toBe(true);
    const again = store.putHeld('bob', 'alice', 'fp1', '{"n":1}');
    const removal = store.remove('bob', 'alice', 'fp1');
    expect(await again).toBe(true);
    await vi.advanceTimersByTimeAsync(10);
    expect(await removal).toBe(true);
    expect(store.total()).toBe(0);
    expect(insertsEver(dir)).toBe(1);
    // The row is gone, and so is what the store knew of it: a later duplicate is answered at once.
    expect(store.remove('bob', 'alice', 'fp1')).toBe(false);
  });

  it('forgets a committed put whose row a removal in the same commit deleted (an ACK that came before its message)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { store } = openStore(10);
    // bob has a put waiting, so an ACK of a message not seen yet is queued rather than answered at once.
    const other = store.putHeld('bob', 'carol', 'fp9', '{"n":9}');
    const early = store.remove('bob', 'alice', 'fp1');
    const late = store.putHeld('bob', 'alice', 'fp1', '{"n":1}');
    await vi.advanceTimersByTimeAsync(10);
    // One transaction inserts both, then deletes fp1.
    expect([await other, await late, await early]).toEqual([true, true, true]);
    expect(store.list('bob', 0, 10).map((m) => m.fp)).toEqual(['fp9']);
    // No row of fp1: its ACK is answered at once, as a duplicate.
    expect(store.remove('bob', 'alice', 'fp1')).toBe(false);
  });

  it('deletes the row of every committed held put its receiver ACKs, also beyond the 4,096 it remembers as committed lately', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { store } = openStore(10);
    const n = 4096 + 50;
    const puts = Array.from({ length: n }, (_, i) => store.putHeld('bob', 'alice', `fp${i}`, `{"n":${i}}`));
    await vi.advanceTimersByTimeAsync(10);
    expect(new Set(await Promise.all(puts))).toEqual(new Set([true]));
    expect(store.total()).toBe(n);
    // The oldest 50 are no longer remembered as committed lately: their rows are looked up instead.
    const removals = Array.from({ length: n }, (_, i) => store.remove('bob', 'alice', `fp${i}`));
    await vi.advanceTimersByTimeAsync(10);
    expect(new Set(await Promise.all(removals))).toEqual(new Set([true]));
    expect(store.total()).toBe(0);
    expect(store.list('bob', 0, 10)).toEqual([]);
  });

  it('holds each put for holdMs from when it was made: a later one is not committed with an earlier one, and its ACK still spares it', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { store, dir } = openStore(10);
    const first = store.putHeld('bob', 'alice', 'fp1', '{"n":1}');
    await vi.advanceTimersByTimeAsync(6);
    const second = store.putHeld('bob', 'alice', 'fp2', '{"n":2}');
    const third = store.putHeld('carol', 'alice', 'fp3', '{"n":3}');
    await vi.advanceTimersByTimeAsync(4);
    // t = 10: the first's hold has ended; the others were made at t = 6.
    expect(await settledYet(first)).toEqual({ value: true });
    expect(insertsEver(dir)).toBe(1);
    expect(await settledYet(second)).toBe('pending');
    expect(store.count('bob')).toBe(2);
    await vi.advanceTimersByTimeAsync(2);
    // t = 12: the second's receiver ACKs it within its own hold: never written.
    expect(store.remove('bob', 'alice', 'fp2')).toBe(true);
    expect(await second).toBe(true);
    await vi.advanceTimersByTimeAsync(3);
    expect(await settledYet(third)).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    // t = 16: the third's hold has ended.
    expect(await settledYet(third)).toEqual({ value: true });
    expect(insertsEver(dir)).toBe(2);
    expect(store.list('carol', 0, 10).map((m) => m.fp)).toEqual(['fp3']);
    expect(store.count('bob')).toBe(1);
  });

  it('ends every hold at the next timer when the clock went back', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { store, dir } = openStore(10);
    const put = store.putHeld('bob', 'alice', 'fp1', '{"n":1}');
    vi.setSystemTime(Date.now() - 3_600_000);
    await vi.advanceTimersByTimeAsync(10);
    expect(await settledYet(put)).toEqual({ value: true });
    expect(insertsEver(dir)).toBe(1);
  });

  it('commits held puts at once with a put someone waits for, in the order they were made', async () => {
    const { store, dir } = openStore(1000);
    const held = store.putHeld('bob', 'alice', 'fp1', '{"n":1}');
    const plain = store.put('bob', 'alice', 'fp2', '{"n":2}');
    expect(await Promise.all([held, plain])).toEqual([true, true]);
    expect(insertsEver(dir)).toBe(2);
    expect(store.list('bob', 0, 10).map((m) => m.fp)).toEqual(['fp1', 'fp2']);
  });

  it('commits held puts before a listing (a replay sees them) and at close', async () => {
    const { store } = openStore(1000);
    const put = store.putHeld('bob', 'alice', 'fp1', '{"n":1}');
    expect(store.list('bob', 0, 10).map((m) => m.fp)).toEqual(['fp1']);
    expect(await put).toBe(true);
    const { store: other, dir } = openStore(1000);
    const late = other.putHeld('carol', 'alice', 'fp9', '{"n":9}');
    other.close();
    expect(await late).toBe(true);
    const reopened = new SqliteOfflineStore(dir, { logger: silentLogger });
    stores.push(reopened);
    expect(reopened.list('carol', 0, 10).map((m) => m.fp)).toEqual(['fp9']);
  });

  it('deletes a second put of a held message too when the receiver ACKs (a retransmission queued meanwhile)', async () => {
    const { store, dir } = openStore(1000);
    const first = store.putHeld('bob', 'alice', 'fp1', '{"n":1}');
    const again = store.putHeld('bob', 'alice', 'fp1', '{"n":1}');
    const removal = store.remove('bob', 'alice', 'fp1');
    expect(removal).toBeInstanceOf(Promise);
    store.total();
    expect(await first).toBe(true);
    expect(await again).toBe(true);
    expect(await removal).toBe(true);
    expect(store.total()).toBe(0);
    expect(insertsEver(dir)).toBe(1);
  });

  it('deletes the committed row of a message when its receiver ACKs a held put of it (a retransmission after the row was committed)', async () => {
    const { store } = openStore(1000);
    expect(await store.put('bob', 'alice', 'fp1', '{"n":1}')).toBe(true);
    const again = store.putHeld('bob', 'alice', 'fp1', '{"n":1}');
    expect(await store.remove('bob', 'alice', 'fp1')).toBe(true);
    expect(await again).toBe(true);
    expect(store.count('bob')).toBe(0);
    expect(store.list('bob', 0, 10)).toEqual([]);
    expect(store.total()).toBe(0);
  });

  it('refuses at once, by throwing, when the store is full or closed', async () => {
    const { store } = openStore(10, { maxRows: 1 });
    await store.put('bob', 'alice', 'fp1', '{}');
    expect(() => store.putHeld('bob', 'alice', 'fp2', '{}')).toThrow(expect.objectContaining({ reason: 'quota' }));
    store.close();
    let thrown: unknown = null;
    try {
      void store.putHeld('bob', 'alice', 'fp3', '{}');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(OfflineStoreError);
    expect((thrown as OfflineStoreError).reason).toBe('unavailable');
  });

  it('with holdMs 0 commits a held put in the turn it was made', async () => {
    const { store, dir } = openStore(0);
    const put = store.putHeld('bob', 'alice', 'fp1', '{}');
    await new Promise((r) => setImmediate(r));
    expect(await settledYet(put)).toEqual({ value: true });
    expect(insertsEver(dir)).toBe(1);
    expect(store.remove('bob', 'alice', 'fp1')).toBeInstanceOf(Promise);
  });

  it('validates holdMs, storeHoldMs and --store-hold-ms', async () => {
    expect(() => openStore(-1)).toThrow(/holdMs must be a whole number 0–1000/);
    expect(() => openStore(1.5)).toThrow(/holdMs/);
    await expect(startServer({ storeHoldMs: 1001 })).rejects.toThrow(/storeHoldMs must be at most 1000/);
    await expect(startServer({ storeHoldMs: -1 })).rejects.toThrow(/storeHoldMs/);
    expect(parseCli(['--store-hold-ms', '0'], {}).options).toMatchObject({ storeHoldMs: 0 });
    expect(parseCli([], { IM_STORE_HOLD_MS: '25' }).options).toMatchObject({ storeHoldMs: 25 });
    expect(() => parseCli(['--store-hold-ms', '1001'], {})).toThrow(/--store-hold-ms/);
  });
});

describe('held puts through the server', () => {
  /** A server on its own data directory, with alice and bob logged in (asking for receipts with `caps`). */
  async function pairOnDisk(storeHoldMs: number, caps: boolean | number = false) {
    const dir = mkdtempSync(join(tmpdir(), 'im-hold-srv-'));
    dirs.push(dir);
    const { ws, udp, server } = await setup({ dataDir: dir, storeHoldMs });
    const alice = await ws();
    const bob = await ws();
    for (const [c, uid] of [[alice, 'alice'], [bob, 'bob']] as const) await (caps ? loginWithCaps(c, uid, caps === true ? 1 : caps) : login(c, uid));
    return { dir, alice, bob, server, ws, udp };
  }

  it('ACKs the sender once the receiver ACKed, writes nothing, and sends the receipt after that ACK', async () => {
    const { dir, alice, bob, server } = await pairOnDisk(1000, true);
    for (let i = 0; i < 5; i++) {
      const fp = `fp-${i}`;
      const sentAt = Date.now();
      alice.send(dataFrame('alice', 'bob', `hi ${i}`, fp));
      expect((await bob.nextOfType(2)).fp).toBe(fp);
      bob.send(ackFrame('bob', 'alice', fp));
      const first = await alice.next((f) => f.type === 4 || f.type === 60);
      const second = await alice.next((f) => f.type === 4 || f.type === 60);
      expect([first.type, first.dataContent]).toEqual([4, fp]);
      expect(second.type).toBe(60);
      expect(JSON.parse(second.dataContent as string).fp).toBe(fp);
      // Settled by bob's ACK, well before the 1000 ms hold ended.
      expect(Date.now() - sentAt).toBeLessThan(900);
    }
    expect(insertsEver(dir)).toBe(0);
    expect(await server.prometheusMetrics()).toMatch(/^mobileimsdk_store_writes_spared_total 5$/m);
  });

  it('puts the receipt in the sender ACK itself for a sender that asked for that (caps 3), and sends it apart when the ACK went first', async () => {
    const { alice, bob } = await pairOnDisk(1000, 3);
    for (let i = 0; i < 3; i++) {
      const fp = `fp-in-${i}`;
      alice.send(dataFrame('alice', 'bob', `hi ${i}`, fp));
      expect((await bob.nextOfType(2)).fp).toBe(fp);
      const ackedAt = Date.now();
      bob.send(ackFrame('bob', 'alice', fp));
      const ack = await alice.nextOfType(4);
      expect([ack.dataContent, ack.from, ack.to, ack.typeu]).toEqual([fp, 'bob', 'alice', 60]);
      expect(ack.sm).toBeGreaterThanOrEqual(ackedAt);
      expect(ack.sm).toBeLessThanOrEqual(Date.now());
    }
    expect((await alice.quiet(150)).filter((f) => f.type === 60 || f.type === 4)).toEqual([]);
    // Bob never sees the extension in what alice's messages bring him.
    expect(bob.frames.filter((f) => f.type === 60 || (f.type === 4 && f.typeu !== -1))).toEqual([]);
  });

  it('sends the receipt as a frame of its own, after a plain ACK, when the ACK went before the receiver ACKed (caps 3)', async () => {
    const { alice, bob } = await pairOnDisk(0, 3);
    alice.send(dataFrame('alice', 'bob', 'hi', 'fp-apart'));
    expect((await bob.nextOfType(2)).fp).toBe('fp-apart');
    const ack = await alice.nextOfType(4);
    expect([ack.dataContent, ack.typeu, ack.sm]).toEqual(['fp-apart', -1, -1]);
    bob.send(ackFrame('bob', 'alice', 'fp-apart'));
    expect(JSON.parse((await alice.nextOfType(60)).dataContent as string).fp).toBe('fp-apart');
    expect(alice.frames.filter((f) => f.type === 4)).toHaveLength(1);
  });

  it('puts a receipt in an ACK only for a UDP sender whose login response said so (a short login gets it shrunk to MobileIMSDK keys), and sends it once', async () => {
    const { bob, udp } = await pairOnDisk(1000, true);
    const carol = await udp();
    // Our SDK's login with a short token: the full answer is larger than the login, so an unproven UDP
    // address gets it shrunk to MobileIMSDK's keys.
    carol.send({ type: 0, dataContent: JSON.stringify({ loginUserId: 'carol', loginToken: 't', firstLoginTime: 0, caps: 3 }), from: 'carol', to: '0' });
    const res = JSON.parse((await carol.nextOfType(50)).dataContent as string) as Record<string, number>;
    expect([res.code, res.maxMessageBytes]).toEqual([0, undefined]);
    const granted = (res.caps ?? 0) & 3;
    // Two keep-alives prove the address: from then on any frame fits.
    for (let i = 0; i < 2; i++) {
      carol.send({ type: 1, dataContent: '{}', from: 'carol', to: '0' });
      await carol.nextOfType(51);
    }
    carol.send(dataFrame('carol', 'bob', 'hi', 'fp-udp'));
    expect((await bob.nextOfType(2)).fp).toBe('fp-udp');
    bob.send(ackFrame('bob', 'carol', 'fp-udp'));
    const ack = await carol.nextOfType(4);
    expect(ack.dataContent).toBe('fp-udp');
    const frames = await carol.quiet(150);
    const apart = [...frames, ack].filter((f) => f.type === 60).map((f) => JSON.parse(f.dataContent as string).fp);
    // In the ACK only when the client was told it may read it there; else apart: once either way.
    expect([ack.typeu === 60, apart]).toEqual(granted === 3 ? [true, []] : [false, ['fp-udp']]);
  });

  it('acts on the caps its last answer granted when a connection repeats its login with other caps', async () => {
    const { alice, bob } = await pairOnDisk(1000, 3);
    // Each repeated login on the same connection is answered with what it asked: the client honours that answer.
    for (const [caps, inAck, apart] of [[1, false, true], [3, true, false], [null, false, false]] as const) {
      const fp = `fp-again-${caps}`;
      if (caps === null) {
        alice.send(loginFrame('alice'));
        expect((await alice.nextOfType(50)).dataContent).toMatch(/^\{"code":0,"firstLoginTime":\d+\}$/);
      } else expect(await loginWithCaps(alice, 'alice', caps)).toMatchObject({ code: 0, caps });
      alice.send(dataFrame('alice', 'bob', 'hi', fp));
      expect((await bob.nextOfType(2)).fp).toBe(fp);
      bob.send(ackFrame('bob', 'alice', fp));
      const ack = await alice.nextOfType(4);
      const receipts = (await alice.quiet(150)).filter((f) => f.type === 60).map((f) => JSON.parse(f.dataContent as string).fp);
      expect([caps, ack.dataContent, ack.typeu === 60, receipts]).toEqual([caps, fp, inAck, apart ? [fp] : []]);
    }
  });

  it('does not hold a receiver\'s next frames for the hold when it ACKs a message twice (nothing left to remove)', async () => {
    const { alice, bob } = await pairOnDisk(1000);
    alice.send(dataFrame('alice', 'bob', 'hi', 'fp-twice'));
    expect((await bob.nextOfType(2)).fp).toBe('fp-twice');
    bob.send(ackFrame('bob', 'alice', 'fp-twice'));
    expect((await alice.nextOfType(4)).dataContent).toBe('fp-twice');
    // The duplicate settles nothing and finds no row; bob's next message must not wait for the next commit.
    const sentAt = Date.now();
    bob.send(ackFrame('bob', 'alice', 'fp-twice'));
    bob.send(dataFrame('bob', 'alice', 'after', 'fp-after'));
    expect((await alice.nextOfType(2)).fp).toBe('fp-after');
    expect(Date.now() - sentAt).toBeLessThan(500);
  });

  it('writes the receipt of a message its receiver ACKed while held in the same socket write as the sender ACK, right after it', async () => {
    const { alice, bob } = await pairOnDisk(1000, true);
    // What each socket write of this process carries (the clients' frames are masked: only the server's read as text).
    type Chunk = { chunk: Buffer | string };
    const proto = Socket.prototype as unknown as { _writev(data: Chunk[], cb: () => void): void; _write(chunk: Buffer | string, enc: string, cb: () => void): void };
    const writev = vi.spyOn(proto, '_writev');
    const write = vi.spyOn(proto, '_write');
    const text = (chunks: Array<Buffer | string | undefined>) => chunks.map((c) => (typeof c === 'string' ? c : (c?.toString('latin1') ?? ''))).join('');
    try {
      for (let i = 0; i < 3; i++) {
        const fp = `fp-w${i}`;
        alice.send(dataFrame('alice', 'bob', `hi ${i}`, fp));
        expect((await bob.nextOfType(2)).fp).toBe(fp);
        writev.mockClear();
        write.mockClear();
        bob.send(ackFrame('bob', 'alice', fp));
        expect(JSON.parse((await alice.nextOfType(60)).dataContent as string).fp).toBe(fp);
        const writes = [...writev.mock.calls.map(([data]) => text(data.map((d) => d.chunk))), ...write.mock.calls.map(([chunk]) => text([chunk]))];
        const withReceipt = writes.filter((w) => w.includes('"type":60'));
        expect(withReceipt).toHaveLength(1);
        const ackAt = withReceipt[0].indexOf(`"type":4,"dataContent":"${fp}"`);
        expect(ackAt).toBeGreaterThanOrEqual(0);
        expect(ackAt).toBeLessThan(withReceipt[0].indexOf('"type":60'));
      }
    } finally {
      writev.mockRestore();
      write.mockRestore();
    }
  });

  it("neither a sender's ACK nor its receipt waits for an earlier message of that sender still held for another receiver", async () => {
    const { alice, bob, ws } = await pairOnDisk(400, true);
    const carol = await ws();
    await login(carol, 'carol');
    // carol never ACKs: alice's first message is committed when its hold ends, 400 ms after it was made.
    alice.send(dataFrame('alice', 'carol', 'first', 'fp-c'));
    alice.send(dataFrame('alice', 'bob', 'second', 'fp-b'));
    expect((await carol.nextOfType(2)).fp).toBe('fp-c');
    expect((await bob.nextOfType(2)).fp).toBe('fp-b');
    const ackedAt = Date.now();
    bob.send(ackFrame('bob', 'alice', 'fp-b'));
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      const f = await alice.next((x) => x.type === 4 || x.type === 60);
      const what = f.type === 60 ? `receipt ${JSON.parse(f.dataContent as string).fp}` : `ack ${f.dataContent}`;
      seen.push(`${what} ${Date.now() - ackedAt < 300 ? 'at once' : 'after the hold'}`);
    }
    expect(seen).toEqual(['ack fp-b at once', 'receipt fp-b at once', 'ack fp-c after the hold']);
  });

  /**
   * Alice's message to bob is stored (bob offline) and ACKed; bob logs in and gets it replayed; alice,
   * whose ACK was lost, retransmits it after the c2c window (1 ms here; under load, past its 100000
   * entries) forgot it, so it is held again beside its committed row; then bob ACKs. `from`: the first
   * of alice's frames after her retransmission.
   */
  async function heldRetransmissionOfStored(caps: number | null) {
    const { ws } = await setup({ storeHoldMs: 1000, c2cDedup: { ttlMs: 1 } });
    const alice = await ws();
    await (caps === null ? login(alice, 'alice') : loginWithCaps(alice, 'alice', caps));
    alice.send(dataFrame('alice', 'bob', 'hi', 'fp-again'));
    expect((await alice.nextOfType(4)).dataContent).toBe('fp-again');
    await new Promise((r) => setTimeout(r, 20));
    const bob = await ws();
    await login(bob, 'bob');
    expect((await bob.nextOfType(2)).fp).toBe('fp-again');
    const from = alice.frames.length;
    alice.send(dataFrame('alice', 'bob', 'hi', 'fp-again'));
    await new Promise((r) => setTimeout(r, 50));
    bob.send(ackFrame('bob', 'alice', 'fp-again'));
    return { ws, alice, bob, from };
  }

  it('sends the receipt after the sender ACK also when the receiver ACK settles a held retransmission of a stored message', async () => {
    for (const caps of [1, 3]) {
      const { alice, from } = await heldRetransmissionOfStored(caps);
      await alice.next((f) => f.type === 4 && alice.frames.indexOf(f) >= from);
      await alice.quiet(150);
      const after = alice.frames.slice(from).map((f) => (f.type === 60 ? [60, JSON.parse(f.dataContent as string).fp] : [f.type, f.dataContent, f.typeu]));
      expect(after).toEqual(caps === 1 ? [[4, 'fp-again', -1], [60, 'fp-again']] : [[4, 'fp-again', 60]]);
    }
  });

  it('does not replay at the next login a stored message whose retransmission the receiver ACKed while it was held', async () => {
    // The retransmission was on its way while the replayed copy was (not written twice).
    const { ws, alice, bob } = await heldRetransmissionOfStored(null);
    expect((await alice.nextOfType(4)).dataContent).toBe('fp-again');
    expect((await bob.quiet(100)).filter((f) => f.type === 2)).toEqual([]);
    bob.close();
    await bob.closed;
    const bobLater = await ws();
    await login(bobLater, 'bob');
    expect((await bobLater.quiet(300)).filter((f) => f.type === 2)).toEqual([]);
  });

  it('while the last commit failed, refuses a message to an online receiver with error 325 before writing it to anyone', async () => {
    const { dir, alice, bob } = await pairOnDisk(50);
    // A commit that fails (as on a full disk) for messages whose fp starts with "bad".
    const db = new Database(join(dir, 'offline.db'));
    db.exec("CREATE TRIGGER fail_bad BEFORE INSERT ON pending WHEN NEW.fp LIKE 'bad%' BEGIN SELECT RAISE(ABORT, 'injected write failure'); END");
    db.close();
    // Written while stored, the commit fails after the hold: neither ACK nor refusal (documented).
    alice.send(dataFrame('alice', 'bob', 'one', 'bad-1'));
    expect((await bob.nextOfType(2)).fp).toBe('bad-1');
    expect((await alice.quiet(300)).filter((f) => f.type === 4 || f.type === 52)).toEqual([]);
    // The store knows it cannot write: the next message is refused at once and reaches no one.
    alice.send(dataFrame('alice', 'bob', 'two', 'bad-2'));
    const answer = await alice.next((f) => f.type === 4 || f.type === 52);
    expect(answer.type).toBe(52);
    expect(errorOf(answer).errorCode).toBe(325);
    expect((await bob.quiet(100)).filter((f) => f.type === 2)).toEqual([]);
    // A message that can be written is committed before it goes out, and writes go on as before.
    alice.send(dataFrame('alice', 'bob', 'three', 'ok-3'));
    expect((await bob.nextOfType(2)).fp).toBe('ok-3');
    expect((await alice.nextOfType(4)).dataContent).toBe('ok-3');
    alice.send(dataFrame('alice', 'bob', 'four', 'ok-4'));
    expect((await bob.nextOfType(2)).fp).toBe('ok-4');
    bob.send(ackFrame('bob', 'alice', 'ok-4'));
    expect((await alice.nextOfType(4)).dataContent).toBe('ok-4');
  });

  it('ACKs the sender after the commit when the receiver does not ACK, and the message waits in the store', async () => {
    const { dir, alice, bob } = await pairOnDisk(200, true);
    const sentAt = Date.now();
    alice.send(dataFrame('alice', 'bob', 'hi', 'fp-slow'));
    expect((await bob.nextOfType(2)).fp).toBe('fp-slow');
    expect((await alice.nextOfType(4)).dataContent).toBe('fp-slow');
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(190);
    expect(insertsEver(dir)).toBe(1);
  });
});
