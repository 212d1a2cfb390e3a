import { describe, expect, it } from 'vitest';
import { tupleKey } from '../../server/src/bounds';
import { GroupCommit, type QueuedPut, type QueuedRemove } from '../../server/src/group-commit';
import type { StoreClock } from '../../server/src/store-expiry';

/**
 * A clock whose time moves only when told. Timers run on elapsed time, as real ones do: `advance` moves
 * both and runs the timers that fall due, in order; `set` moves only what `now()` reads (a wall clock
 * stepped back or forth).
 */
function manualClock(): StoreClock & { advance(ms: number): void; set(ms: number): void; armed(): number[] } {
  let now = 0;
  let elapsed = 0;
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  const runDue = () => {
    for (;;) {
      const next = [...timers].filter(([, t]) => t.at <= elapsed).sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0];
      if (!next) return;
      timers.delete(next[0]);
      next[1].fn();
    }
  };
  return {
    now: () => now,
    setTimeout: (fn, ms) => (timers.set(++seq, { at: elapsed + ms, fn }), seq),
    clearTimeout: (h) => void timers.delete(h as number),
    advance(ms) {
      now += ms;
      elapsed += ms;
      runDue();
    },
    set(ms) {
      now = ms;
    },
    /** When each armed timer falls due, in elapsed time. */
    armed: () => [...timers.values()].map((t) => t.at),
  };
}

/** A queue over a manual clock that records each commit as the fps it was given, settling them all as written. */
function queue(holdMs = 10) {
  const clock = manualClock();
  const commits: Array<{ puts: string[]; removes: string[] }> = [];
  const q = new GroupCommit(clock, holdMs, (puts: QueuedPut[], removes: QueuedRemove[]) => {
    commits.push({ puts: puts.map((p) => p.fp), removes: removes.map((r) => r.fp) });
    for (const p of puts) p.resolve(true);
    for (const r of removes) r.resolve(true);
  });
  return { q, clock, commits };
}

const turn = () => new Promise((r) => setImmediate(r));

describe('GroupCommit', () => {
  it('commits held puts as a prefix, each holdMs after it was made, re-arming for the next one', async () => {
    const { q, clock, commits } = queue(10);
    void q.put('bob', 'alice', 'a', '{}', 2, true);
    clock.advance(5);
    void q.put('bob', 'alice', 'b', '{}', 2, true);
    expect(q.rows).toBe(2);
    clock.advance(4);
    expect(commits).toEqual([]);
    clock.advance(1);
    expect(commits).toEqual([{ puts: ['a'], removes: [] }]);
    expect(clock.armed()).toEqual([15]);
    expect(q.rows).toBe(1);
    clock.advance(4);
    expect(commits).toHaveLength(1);
    clock.advance(1);
    expect(commits).toEqual([
      { puts: ['a'], removes: [] },
      { puts: ['b'], removes: [] },
    ]);
    expect(q.rows).toBe(0);
    expect(q.holding).toBe(false);
  });

  it('keeps a removal queued alone for holdMs, then commits it with the puts due', () => {
    const { q, clock, commits } = queue(10);
    void q.remove('bob', 'alice', 'r');
    clock.advance(9);
    expect(commits).toEqual([]);
    clock.advance(1);
    expect(commits).toEqual([{ puts: [], removes: ['r'] }]);
  });

  it('commits a put someone waits for in its own turn, with everything queued by then, in order', async () => {
    const { q, commits } = queue(10);
    void q.put('bob', 'alice', 'held', '{}', 2, true);
    const plain = q.put('carol', 'alice', 'plain', '{}', 2, false);
    void q.remove('bob', 'alice', 'old');
    void q.put('bob', 'alice', 'later', '{}', 2, true);
    await turn();
    expect(commits).toEqual([{ puts: ['held', 'plain', 'later'], removes: ['old'] }]);
    expect(await plain).toBe(true);
    expect(q.rows).toBe(0);
    expect(q.bytes).toBe(0);
  });

  it('takes back a held put without writing it, settled as inserted, and counts it spared', async () => {
    const { q, clock, commits } = queue(10);
    const put = q.put('bob', 'alice', 'a', '{}', 7, true);
    void q.put('bob', 'alice', 'b', '{}', 3, true);
    expect(q.queuedFor('bob')).toBe(2);
    expect(q.cancelHeld(tupleKey('bob', 'alice', 'zz'))).toBeUndefined();
    const taken = q.cancelHeld(tupleKey('bob', 'alice', 'a'));
    expect(taken?.fp).toBe('a');
    expect(await put).toBe(true);
    expect(q.spared).toBe(1);
    expect(q.queuedFor('bob')).toBe(1);
    expect(q.bytes).toBe(3);
    clock.advance(10);
    expect(commits).toEqual([{ puts: ['b'], removes: [] }]);
  });

  it('does not hold a second put of a held message: the held one becomes a twin, the second is committed in its turn', async () => {
    const { q, clock, commits } = queue(10);
    void q.put('bob', 'alice', 'a', '{}', 2, true);
    const again = q.put('bob', 'alice', 'a', '{}', 2, true);
    const taken = q.cancelHeld(tupleKey('bob', 'alice', 'a'));
    expect(taken?.twin).toBe(true);
    expect(q.holding).toBe(false);
    clock.advance(0);
    await turn();
    expect(commits).toEqual([{ puts: ['a'], removes: [] }]);
    expect(await again).toBe(true);
  });

  it('ends every hold when the clock went back', () => {
    const { q, clock, commits } = queue(10);
    clock.set(1000);
    void q.put('bob', 'alice', 'a', '{}', 2, true);
    void q.put('bob', 'alice', 'b', '{}', 2, true);
    clock.set(500);
    clock.advance(10);
    expect(commits).toEqual([{ puts: ['a', 'b'], removes: [] }]);
  });

  it('commits what is queued at close, and nothing after', async () => {
    const { q, clock, commits } = queue(10);
    void q.put('bob', 'alice', 'a', '{}', 2, true);
    void q.put('carol', 'alice', 'b', '{}', 2, false);
    q.close();
    expect(commits).toEqual([{ puts: ['a', 'b'], removes: [] }]);
    expect(clock.armed()).toEqual([]);
    void q.put('dave', 'alice', 'c', '{}', 2, false);
    void q.put('dave', 'alice', 'd', '{}', 2, true);
    await turn();
    clock.advance(100);
    expect(commits).toHaveLength(1);
  });
});

