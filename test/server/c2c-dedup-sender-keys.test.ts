import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteOfflineStore } from '../../server/src/index';
import { ackFrame, dataFrame, login, useServers } from './helpers';

const { setup } = useServers();

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Resolves with 'pending' if `p` has not settled within `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  return Promise.race([p, new Promise<'pending'>((r) => setTimeout(() => r('pending'), ms))]);
}

describe('C2C de-duplication of (sender, fp)', () => {
  it('ACKs a retry after the receiver ACKed, without relaying it again', async () => {
    const { ws } = await setup();
    const a = await ws();
    const b = await ws();
    await login(a, 'a');
    await login(b, 'b');
    a.send(dataFrame('a', 'b', 'once', 'fp-r1'));
    expect((await a.nextOfType(4)).dataContent).toBe('fp-r1');
    expect((await b.nextOfType(2)).fp).toBe('fp-r1');
    b.send(ackFrame('b', 'a', 'fp-r1'));
    await b.quiet(50);
    a.send(dataFrame('a', 'b', 'once', 'fp-r1'));
    expect((await a.nextOfType(4)).dataContent).toBe('fp-r1');
    expect(await b.quiet(150)).toEqual([]);
  });

  it('does not store a retry again for an offline receiver, so its next login brings nothing twice', async () => {
    const { ws, server } = await setup();
    const a = await ws();
    await login(a, 'a');
    a.send(dataFrame('a', 'b', 'hello', 'fp-o1'));
    expect((await a.nextOfType(4)).dataContent).toBe('fp-o1');
    let b = await ws();
    await login(b, 'b');
    expect((await b.nextOfType(2)).fp).toBe('fp-o1');
    b.send(ackFrame('b', 'a', 'fp-o1'));
    await expect.poll(() => server.metrics().offlinePending).toBe(0);
    b.close();
    await expect.poll(() => server.onlineUsers()).toEqual(['a']);
    a.send(dataFrame('a', 'b', 'hello', 'fp-o1'));
    expect((await a.nextOfType(4)).dataContent).toBe('fp-o1');
    expect(server.metrics().offlinePending).toBe(0);
    b = await ws();
    await login(b, 'b');
    expect(await b.quiet(150)).toEqual([]);
  });

  it('is bounded: past c2cDedup.max the oldest (sender, fp) is forgotten, the newest still recognised', async () => {
    const { ws } = await setup({ c2cDedup: { max: 3 } });
    const a = await ws();
    const b = await ws();
    await login(a, 'a');
    await login(b, 'b');
    for (const fp of ['d1', 'd2', 'd3', 'd4']) {
      a.send(dataFrame('a', 'b', fp, fp));
      await a.nextOfType(4);
      expect((await b.nextOfType(2)).fp).toBe(fp);
      b.send(ackFrame('b', 'a', fp));
    }
    a.send(dataFrame('a', 'b', 'd4', 'd4'));
    await a.nextOfType(4);
    a.send(dataFrame('a', 'b', 'd1', 'd1'));
    await a.nextOfType(4);
    expect((await b.quiet(150)).filter((f) => f.type === 2).map((f) => f.fp)).toEqual(['d1']);
  });

  it('keys by sender: another user with the same fp is not a duplicate', async () => {
    const { ws } = await setup();
    const [a, m, b] = [await ws(), await ws(), await ws()];
    await login(a, 'alice');
    await login(m, 'mallory');
    await login(b, 'bob');
    m.send(dataFrame('mallory', 'bob', 'first', 'fp-same'));
    await m.nextOfType(4);
    a.send(dataFrame('alice', 'bob', 'second', 'fp-same'));
    await a.nextOfType(4);
    expect((await b.quiet(150)).filter((f) => f.type === 2).map((f) => f.dataContent)).toEqual(['first', 'second']);
  });
});

describe('stored and tracked messages are keyed by sender as well', () => {
  it("Mallory storing fp X first for offline Bob does not shadow Alice's genuine message with fp X", async () => {
    const { ws, server } = await setup();
    const a = await ws();
    const m = await ws();
    await login(a, 'alice');
    await login(m, 'mallory');
    m.send(dataFrame('mallory', 'bob', 'fake', 'fp-x'));
    await m.nextOfType(4);
    a.send(dataFrame('alice', 'bob', 'genuine', 'fp-x'));
    await a.nextOfType(4);
    expect(server.metrics().offlinePending).toBe(2);
    const b = await ws();
    await login(b, 'bob');
    const got = [await b.nextOfType(2), await b.nextOfType(2)];
    expect(got.map((f) => [f.from, f.dataContent])).toEqual([
      ['mallory', 'fake'],
      ['alice', 'genuine'],
    ]);
    // Bob's ACK of Mallory's message leaves Alice's stored; his ACK of Alice's removes it.
    b.send(ackFrame('bob', 'mallory', 'fp-x'));
    await expect.poll(() => server.metrics().offlinePending).toBe(1);
    b.send(ackFrame('bob', 'alice', 'fp-x'));
    await expect.poll(() => server.metrics().offlinePending).toBe(0);
  });

  it("an ACK of another sender's message with the same fp does not settle the server's push", async () => {
    const { ws, server } = await setup();
    const m = await ws();
    const b = await ws();
    await login(m, 'mallory');
    await login(b, 'bob');
    m.send(dataFrame('mallory', 'bob', 'decoy', 'fp-p'));
    await b.nextOfType(2);
    const push = server.sendToUser('bob', 'from the server', { fp: 'fp-p' });
    expect((await b.nextOfType(2)).from).toBe('0');
    b.send(ackFrame('bob', 'mallory', 'fp-p'));
    expect(await within(push, 200)).toBe('pending');
    b.send(ackFrame('bob', '0', 'fp-p'));
    expect(await push).toEqual({ fp: 'fp-p', status: 'delivered' });
  });

  it('migrates a database from before the sender was part of the key, keeping order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'offline-migrate-'));
    dirs.push(dir);
    const old = new Database(join(dir, 'offline.db'));
    old.exec(`CREATE TABLE pending (seq INTEGER PRIMARY KEY AUTOINCREMENT, to_uid TEXT NOT NULL, fp TEXT NOT NULL,
      frame TEXT NOT NULL, created_ms INTEGER NOT NULL, UNIQUE (to_uid, fp))`);
    old.exec('CREATE INDEX pending_by_user ON pending (to_uid, seq)');
    // Stored now: rows older than the message TTL would (rightly) not be listed.
    const ins = old.prepare('INSERT INTO pending (to_uid, fp, frame, created_ms) VALUES (?, ?, ?, ?)');
    ins.run('bob', 'fp-1', JSON.stringify({ type: 2, dataContent: 'one', from: 'alice', to: 'bob', fp: 'fp-1', QoS: true }), Date.now());
    ins.run('bob', 'fp-2', 'not json', Date.now());
    old.close();

    const store = new SqliteOfflineStore(dir);
    try {
      expect(store.list('bob', 0, 10).map((r) => [r.seq, r.from, r.fp])).toEqual([
        [1, 'alice', 'fp-1'],
        [2, '', 'fp-2'],
      ]);
      expect(await store.put('bob', 'mallory', 'fp-1', '{}')).toBe(true);
      expect(await store.put('bob', 'alice', 'fp-1', '{}')).toBe(false);
      expect(store.list('bob', 2, 10).map((r) => [r.seq, r.from])).toEqual([[3, 'mallory']]);
      expect(await store.remove('bob', 'alice', 'fp-1')).toBe(true);
      expect(store.count('bob')).toBe(2);
    } finally {
      store.close();
    }
    // Opening it again finds the new schema and changes nothing.
    const again = new SqliteOfflineStore(dir);
    expect(again.total()).toBe(2);
    again.close();
  });
});
