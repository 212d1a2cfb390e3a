import { describe, expect, it } from 'vitest';
import { enqueue, MAX_OVERLAPPING, type Work, type WorkRunner } from '../../server/src/frame-queue';
import { Session } from '../../server/src/session';

/**
 * The per-connection frame queue with a runner whose units finish when the test says: units run in
 * arrival order, one waiting for a promise holds back the rest, and units with an overlap key start
 * beside earlier ones with keys (not beside one with the same key, nor past the cap, nor a unit without one).
 */

interface Unit {
  name: string;
  key: string | null;
  async: boolean;
}

function harness() {
  const s = new Session({ transport: 'ws', remote: 'test', write: () => true, close: () => undefined }, null, 'test');
  const started: string[] = [];
  const finish = new Map<string, () => void>();
  const runner: WorkRunner = {
    run: (_s, work) => {
      const u = (work as unknown as { unit: Unit }).unit;
      started.push(u.name);
      if (!u.async) return undefined;
      return new Promise<void>((resolve) => finish.set(u.name, resolve));
    },
    failed: () => undefined,
    overlapKey: (_s, work) => (work as unknown as { unit: Unit }).unit.key,
  };
  const add = (name: string, key: string | null, async = true) => enqueue(s, { unit: { name, key, async } } as unknown as Work, 1, runner);
  const done = async (name: string) => {
    finish.get(name)?.();
    await new Promise((r) => setImmediate(r));
  };
  return { s, started, add, done };
}

describe('frame queue', () => {
  it('starts keyed units beside each other, in order, and holds a unit without a key until all before it are done', async () => {
    const { s, started, add, done } = harness();
    add('a', 'fa');
    add('b', 'fb');
    add('c', null);
    add('d', 'fd');
    // a and b overlap; c must wait for both; d waits behind c (arrival order).
    expect(started).toEqual(['a', 'b']);
    await done('b');
    expect(started).toEqual(['a', 'b']);
    await done('a');
    expect(started).toEqual(['a', 'b', 'c']);
    await done('c');
    expect(started).toEqual(['a', 'b', 'c', 'd']);
    await done('d');
    expect(s.queued).toBe(0);
    expect(s.active).toBe(0);
  });

  it('holds a unit whose key is still active (a retransmission waits for its original), and what comes after it', async () => {
    const { started, add, done } = harness();
    add('a', 'same');
    add('b', 'same');
    add('c', 'other');
    expect(started).toEqual(['a']);
    await done('a');
    expect(started).toEqual(['a', 'b', 'c']);
  });

  it(`starts at most ${MAX_OVERLAPPING} keyed units at once`, async () => {
    const { started, add, done } = harness();
    for (let i = 0; i <= MAX_OVERLAPPING; i++) add(`u${i}`, `f${i}`);
    expect(started.length).toBe(MAX_OVERLAPPING);
    await done('u0');
    expect(started.length).toBe(MAX_OVERLAPPING + 1);
  });

  it('does not let a keyed unit start beside an active unit without a key, nor run anything at once inside a unit that runs synchronously', async () => {
    const { started, add, done } = harness();
    add('login', null);
    add('m1', 'f1');
    expect(started).toEqual(['login']);
    await done('login');
    expect(started).toEqual(['login', 'm1']);
    // A synchronous unit behind an active one runs when it is its turn, in order.
    add('echo', null, false);
    add('m2', 'f2');
    expect(started).toEqual(['login', 'm1']);
    await done('m1');
    expect(started).toEqual(['login', 'm1', 'echo', 'm2']);
  });
});
