import { describe, expect, it } from 'vitest';
import { FrameBudget, resolveRateLimit } from '../../server/src/rate-limit';
import { UserBudgets } from '../../server/src/user-budgets';
import { errorOf, login, useServers, type RawClient } from './helpers';

const { setup } = useServers();

/** Sends `n` echoes and returns how many came back before the connection was refused (error 315). */
async function echoes(c: RawClient, n: number): Promise<{ answered: number; refused: number | null }> {
  for (let i = 0; i < n; i++) c.send({ type: 5, dataContent: `e${i}`, from: 'x', to: '0' });
  let answered = 0;
  for (;;) {
    let f;
    try {
      f = await c.next((x) => x.type === 53 || x.type === 52, 2000);
    } catch {
      return { answered, refused: null };
    }
    if (f.type === 52) return { answered, refused: errorOf(f).errorCode };
    if (++answered === n) return { answered, refused: null };
  }
}

// Nearly no refill (one token per 100 s), so what is left is exact whatever the machine's speed.
const rateLimit = { burst: 5, perSecond: 0.01 };

describe('a user\'s rate budget survives reconnecting', () => {
  it('a new session of the same user starts with what the last one left, not a fresh burst', async () => {
    const { server, ws, tcp } = await setup({ rateLimit });
    const a = await ws();
    expect((await login(a, 'rb')).code).toBe(0); // 1 of 5
    expect(await echoes(a, 3)).toEqual({ answered: 3, refused: null }); // 4 of 5
    a.close();
    await expect.poll(() => server.onlineUsers()).toEqual([]);
    // Another transport, same user: the login is charged to the new connection, then its budget drops to the 1 left.
    const b = await tcp();
    expect((await login(b, 'rb')).code).toBe(0);
    expect(await echoes(b, 2)).toEqual({ answered: 1, refused: 315 });
  });

  it('another user, or the same user without an earlier session, gets the whole burst', async () => {
    const { server, ws } = await setup({ rateLimit });
    const a = await ws();
    await login(a, 'spent');
    await echoes(a, 4);
    a.close();
    await expect.poll(() => server.onlineUsers()).toEqual([]);
    const b = await ws();
    await login(b, 'other');
    expect(await echoes(b, 4)).toEqual({ answered: 4, refused: null });
  });
});

describe('UserBudgets', () => {
  const rate = resolveRateLimit({ burst: 10, perSecond: 5, controlBurst: 100, controlPerSecond: 10 });

  it('remembers an ended session for as long as its buckets take to refill, then forgets it', () => {
    const budgets = new UserBudgets(rate);
    expect(budgets.retainMs).toBe(10_000);
    const spent = new FrameBudget(rate, 0);
    for (let i = 0; i < 10; i++) expect(spent.admit(5, 0)).toBeNull();
    budgets.put('u', spent, 0);
    // Just inside: the next session inherits the spent buckets (refilled by 5/s meanwhile).
    const next = new FrameBudget(rate, 1000);
    budgets.carryInto('u', next, 1000);
    expect(budgets.size).toBe(0);
    let allowed = 0;
    while (next.admit(5, 1000) === null) allowed++;
    expect(allowed).toBe(5);
    // At retainMs the entry is gone: a fresh budget is the same thing by then.
    budgets.put('v', new FrameBudget(rate, 0), 0);
    budgets.put('w', new FrameBudget(rate, 0), 9_999);
    expect(budgets.size).toBe(2);
    budgets.put('x', new FrameBudget(rate, 0), 10_000);
    expect(budgets.size).toBe(2); // v expired; w and x held
  });

  it('holds at most maxEntries, the oldest forgotten first', () => {
    const budgets = new UserBudgets(rate, 3);
    for (const u of ['a', 'b', 'c', 'd']) budgets.put(u, new FrameBudget(rate, 0), 0);
    expect(budgets.size).toBe(3);
    const fresh = new FrameBudget(rate, 0);
    const spent = new FrameBudget(rate, 0);
    while (spent.admit(5, 0) === null);
    budgets.put('d', spent, 0);
    budgets.carryInto('a', fresh, 0); // evicted: nothing to inherit
    let allowed = 0;
    while (fresh.admit(5, 0) === null) allowed++;
    expect(allowed).toBe(10);
  });
});
