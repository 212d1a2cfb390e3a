import { describe, expect, it } from 'vitest';
import { RecentKeys } from '../../server/src/recent-keys';
import { seededRandom } from '../helpers/random';

describe('RecentKeys: a bounded set that forgets the oldest first', () => {
  it('remembers the last `capacity` keys added, and forgets the oldest as the next comes', () => {
    const keys = new RecentKeys(3);
    for (const k of ['a', 'b', 'c']) keys.add(k);
    expect(keys.size).toBe(3);
    keys.add('d');
    expect(keys.size).toBe(3);
    expect(keys.take('a')).toBe(false);
    expect([keys.take('b'), keys.take('c'), keys.take('d')]).toEqual([true, true, true]);
    expect(keys.size).toBe(0);
  });

  it('forgets a key once taken, and a key added again counts from its last add', () => {
    const keys = new RecentKeys(3);
    keys.add('a');
    expect(keys.take('a')).toBe(true);
    expect(keys.take('a')).toBe(false);
    keys.add('b');
    keys.add('b');
    keys.add('c');
    keys.add('d');
    // b's first slot came round again; its second add is still among the last three.
    expect(keys.take('b')).toBe(true);
    expect(keys.take('b')).toBe(false);
    expect([keys.take('c'), keys.take('d')]).toEqual([true, true]);
  });

  it('refuses a capacity that is not a whole number ≥ 1', () => {
    expect(() => new RecentKeys(0)).toThrow(RangeError);
    expect(() => new RecentKeys(2.5)).toThrow(RangeError);
  });

  it('answers as its definition, call for call: a key is there when added within the last `capacity` adds and neither taken nor cleared since (seeded)', () => {
    const random = seededRandom(12);
    for (const capacity of [1, 2, 7, 64]) {
      const keys = new RecentKeys(capacity);
      const lastAdd = new Map<string, number>();
      const takenAfter = new Set<string>();
      let adds = 0;
      for (let i = 0; i < 20_000; i++) {
        const key = `k${Math.floor(random() * capacity * 3)}`;
        if (random() < 0.001) {
          keys.clear();
          lastAdd.clear();
          takenAfter.clear();
        } else if (random() < 0.6) {
          keys.add(key);
          lastAdd.set(key, adds++);
          takenAfter.delete(key);
        } else {
          const at = lastAdd.get(key);
          const expected = at !== undefined && at >= adds - capacity && !takenAfter.has(key);
          expect(keys.take(key)).toBe(expected);
          takenAfter.add(key);
        }
        if (i % 97 === 0) {
          let live = 0;
          for (const [k, at] of lastAdd) if (at >= adds - capacity && !takenAfter.has(k)) live++;
          expect(keys.size).toBe(live);
        }
      }
    }
  });
});
