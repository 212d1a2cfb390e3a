import { describe, expect, it } from 'vitest';
import { FlatMap } from '../../server/src/flat-map';
import { seededRandom } from '../helpers/random';

function contents<V>(m: FlatMap<V>): Array<[string, V]> {
  const out: Array<[string, V]> = [];
  m.forEach((v, k) => out.push([k, v]));
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

function sorted<V>(m: Map<string, V>): Array<[string, V]> {
  return [...m].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

describe('FlatMap', () => {
  for (const c of [
    { name: 'a few keys, mostly hits', keys: 40, ops: 20_000 },
    { name: 'growing to thousands and back', keys: 5_000, ops: 60_000 },
  ]) {
    it(`answers as a Map, call for call (${c.name}, seeded)`, () => {
      const random = seededRandom(20261130);
      const m = new FlatMap<number>();
      const spec = new Map<string, number>();
      // Keys alike in all but their end, as the tables' keys (receiver, sender, fp) are.
      const key = (n: number) => `user-1\u0000user-2\u0000fp-${n}`;
      let phase = 0;
      for (let i = 0; i < c.ops; i++) {
        if (i % 10_000 === 0) phase = 1 - phase;
        const k = key(Math.floor(random() * c.keys));
        const r = random();
        // Phases that mostly add, then mostly delete, so the table grows and shrinks.
        const addShare = phase === 1 ? 0.7 : 0.3;
        if (r < addShare) {
          expect(m.set(k, i)).toBe(m);
          spec.set(k, i);
        } else if (r < 0.95) {
          expect(m.delete(k)).toBe(spec.delete(k));
        } else if (r < 0.975) {
          expect(m.get(k)).toBe(spec.get(k));
        } else {
          expect(m.has(k)).toBe(spec.has(k));
        }
        expect(m.size).toBe(spec.size);
        if (i % 997 === 0) expect(contents(m)).toEqual(sorted(spec));
      }
      for (const k of spec.keys()) expect(m.get(k)).toBe(spec.get(k));
      expect(contents(m)).toEqual(sorted(spec));
    });
  }

  it('finds every key after deletions shifted the others back, including across the end of the table', () => {
    const m = new FlatMap<string>();
    // 7 keys in a 16-slot table: clusters form and wrap; delete each in turn and check the rest.
    const keys = Array.from({ length: 7 }, (_, i) => `k${i}`);
    for (let drop = 0; drop < keys.length; drop++) {
      m.clear();
      for (const k of keys) m.set(k, k.toUpperCase());
      expect(m.delete(keys[drop])).toBe(true);
      expect(m.delete(keys[drop])).toBe(false);
      for (const k of keys) expect(m.get(k)).toBe(k === keys[drop] ? undefined : k.toUpperCase());
      expect(m.size).toBe(keys.length - 1);
    }
  });

  it('keeps the empty string, values that are falsy, and overwrites without growing', () => {
    const m = new FlatMap<number | null | false | undefined>();
    m.set('', 0).set('a', null).set('b', false).set('c', undefined);
    expect(m.size).toBe(4);
    expect(m.has('')).toBe(true);
    expect(m.get('')).toBe(0);
    expect(m.has('a')).toBe(true);
    expect(m.get('a')).toBe(null);
    expect(m.get('b')).toBe(false);
    expect(m.has('c')).toBe(true);
    m.set('', 1);
    expect(m.size).toBe(4);
    expect(m.get('')).toBe(1);
    m.clear();
    expect(m.size).toBe(0);
    expect(m.has('')).toBe(false);
    expect(contents(m)).toEqual([]);
  });

  it('empties a grown table with clear() and grows again', () => {
    const m = new FlatMap<number>();
    for (let i = 0; i < 1000; i++) m.set(`k${i}`, i);
    expect(m.size).toBe(1000);
    m.clear();
    expect(m.size).toBe(0);
    expect(m.get('k5')).toBeUndefined();
    for (let i = 0; i < 100; i++) m.set(`k${i}`, -i);
    expect(m.get('k99')).toBe(-99);
    expect(contents(m).length).toBe(100);
  });
});

