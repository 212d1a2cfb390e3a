import { describe, expect, it } from 'vitest';
import { entryBytes } from '../../server/src/bounds';
import { DedupWindow } from '../../server/src/dedup';
import { seededRandom } from '../helpers/random';

/**
 * The specification of the window, written the plain way: a Map of keys in arrival order. The server's
 * window (no allocation per key) must answer every call exactly as this does.
 */
class PlainWindow {
  private readonly at = new Map<string, number>();
  private charged = 0;
  constructor(
    private readonly ttlMs: number,
    private readonly max: number,
    private readonly maxBytes: number,
  ) {}
  has(key: string, now: number): boolean {
    for (const [k, t] of this.at) {
      if (now - t < this.ttlMs) break;
      this.drop(k);
    }
    return this.at.has(key);
  }
  add(key: string, now: number): void {
    if (this.at.has(key)) return;
    this.at.set(key, now);
    this.charged += entryBytes(key);
    while (this.at.size > this.max || (this.charged > this.maxBytes && this.at.size > 0)) this.drop(this.at.keys().next().value as string);
  }
  checkAndAdd(key: string, now: number): boolean {
    if (this.has(key, now)) return true;
    this.add(key, now);
    return false;
  }
  get size(): number {
    return this.at.size;
  }
  get bytes(): number {
    return this.charged;
  }
  private drop(key: string): void {
    this.at.delete(key);
    this.charged -= entryBytes(key);
  }
}

/** One call on both windows, chosen by `op` (half checkAndAdd, then has, then add): the answers must agree. */
function sameStep(w: DedupWindow, spec: PlainWindow, k: string, now: number, op: number): void {
  if (op < 0.5) expect(w.checkAndAdd(k, now)).toBe(spec.checkAndAdd(k, now));
  else if (op < 0.8) expect(w.has(k, now)).toBe(spec.has(k, now));
  else {
    w.add(k, now);
    spec.add(k, now);
  }
}

describe('the (sender, fp) de-duplication window', () => {
  const cases = [
    { name: 'bounded by keys', ttlMs: 1e9, max: 50, maxBytes: Infinity, keys: 120 },
    { name: 'bounded by bytes', ttlMs: 1e9, max: 1e6, maxBytes: 4000, keys: 200 },
    { name: 'bounded by time', ttlMs: 300, max: 1e6, maxBytes: Infinity, keys: 400 },
    { name: 'all three, many keys', ttlMs: 2000, max: 700, maxBytes: 60_000, keys: 3000 },
  ];
  for (const c of cases) {
    it(`answers exactly as a plain Map window, call for call (${c.name}, seeded)`, () => {
      const random = seededRandom(20261130);
      const w = new DedupWindow(c.ttlMs, c.max, c.maxBytes);
      const spec = new PlainWindow(c.ttlMs, c.max, c.maxBytes);
      // Keys of every length up to a long sender and fp, non-ASCII ones included; many come back.
      const key = (n: number) => `${n % 7 === 0 ? 'ü' : ''}${n.toString(36).repeat(1 + (n % 9))}|fp-${n}`;
      let now = 1_800_000_000_000;
      for (let i = 0; i < 20_000; i++) {
        now += Math.floor(random() * 3);
        const k = key(Math.floor(random() * c.keys));
        sameStep(w, spec, k, now, random());
        if (i % 97 === 0) expect([w.size, w.bytes]).toEqual([spec.size, spec.bytes]);
      }
      expect([w.size, w.bytes]).toEqual([spec.size, spec.bytes]);
    });
  }

  it('tells apart keys whose hashes collide in the table and keys that differ only in their last character', () => {
    const w = new DedupWindow(1e9, 100_000);
    // Thousands of keys in a table of a few thousand places: many share a place and probe past each other.
    for (let i = 0; i < 5000; i++) expect(w.checkAndAdd(`u|${i}`, 0)).toBe(false);
    for (let i = 0; i < 5000; i++) expect(w.has(`u|${i}`, 0)).toBe(true);
    expect(w.has('u|5000', 0)).toBe(false);
    expect(w.has('u|', 0)).toBe(false);
    expect(w.has('u|49999', 0)).toBe(false);
  });
});

describe('the window at its edges, against the plain Map window', () => {
  /** Starts the running counts at `entries` and `chars` (private fields, set through a cast) on an empty window. */
  const startAt = (w: DedupWindow, entries: number, chars: number) => {
    const f = w as unknown as { head: number; tail: number; charHead: number; charTail: number };
    f.head = f.tail = entries;
    f.charHead = f.charTail = chars;
  };
  const starts = [
    { name: 'counts from zero', entries: 0, chars: 0 },
    { name: 'counts just below 2^31', entries: 2 ** 31 - 300, chars: 2 ** 31 - 5000 },
    { name: 'counts just below 2^32', entries: 2 ** 32 - 300, chars: 2 ** 32 - 5000 },
    { name: 'counts far beyond 2^32', entries: 2 ** 45 - 300, chars: 2 ** 48 - 5000 },
  ];
  for (const s of starts) {
    it(`answers exactly with empty, long and repeated keys, time going back and forth, every bound (${s.name}, seeded)`, () => {
      const random = seededRandom(7);
      for (const [ttlMs, max, maxBytes] of [
        [50, 20, 5000],
        [1e9, 33, Infinity],
        [1e9, 1e6, 3000],
        [0, 10, Infinity],
        [40, 64, 40_000],
        // Long keys alone over the byte bound, no key allowed at all, a bound that is not an integer.
        [1e9, 1e6, 1500],
        [1e9, 0, Infinity],
        [30, 2.5, Infinity],
      ]) {
        const w = new DedupWindow(ttlMs, max, maxBytes);
        startAt(w, s.entries, s.chars);
        const spec = new PlainWindow(ttlMs, max, maxBytes);
        const key = (n: number) => (n === 0 ? '' : n % 11 === 0 ? 'x'.repeat(n * 13) : `${String.fromCharCode(n * 977)}${n}`);
        let now = 1000;
        for (let i = 0; i < 6000; i++) {
          now += Math.floor(random() * 7) - 2;
          const k = key(Math.floor(random() * 90));
          sameStep(w, spec, k, now, random());
          expect([w.size, w.bytes]).toEqual([spec.size, spec.bytes]);
        }
      }
    });
  }
});

describe('the memory the window holds', () => {
  /** The bytes of the window's typed arrays (its rings and table), read through a cast: all it allocates. */
  const heldBytes = (w: DedupWindow) =>
    Object.values(w as unknown as Record<string, unknown>).reduce<number>((n, v) => n + (ArrayBuffer.isView(v) ? v.byteLength : 0), 0);

  it('does not grow its rings for a key its bounds evict at once (no more held than charged at a bound)', () => {
    // At a key bound that is a power of two: 4096 keys of 10 characters, charged 84 bytes each.
    const byKeys = new DedupWindow(1e9, 4096);
    for (let i = 0; i < 20_000; i++) byKeys.checkAndAdd(`k${String(i).padStart(9, '0')}`, 0);
    expect(byKeys.size).toBe(4096);
    expect(heldBytes(byKeys)).toBeLessThanOrEqual(byKeys.bytes);
    // At a byte bound whose keys' characters just fill a ring: 1048 keys of 1000 characters.
    const byBytes = new DedupWindow(1e9, 1e6, 1048 * entryBytes('x'.repeat(1000)));
    for (let i = 0; i < 3000; i++) byBytes.checkAndAdd(String(i).padStart(1000, '-'), 0);
    expect(byBytes.size).toBe(1048);
    expect(heldBytes(byBytes)).toBeLessThanOrEqual(byBytes.bytes);
  });

  it('past 8,192 keys and 262,144 characters grows once, to what its bounds allow, and never again', () => {
    // The defaults: 100,000 keys, 16 MiB. Keys of 45 characters.
    const w = new DedupWindow(600_000, 100_000, 16 * 1024 * 1024);
    const key = (i: number) => `["user-${i % 50}","fp-${String(i).padStart(28, '0')}"]`;
    let i = 0;
    const fill = (n: number) => {
      for (; i < n; i++) w.checkAndAdd(key(i), i);
    };
    fill(5000);
    expect(heldBytes(w)).toBeLessThan(1024 * 1024);
    // Past 262,144 characters (5,826 keys): the most characters 16 MiB pays 2 bytes each for, 2^23.
    fill(8192);
    expect(heldBytes(w)).toBe(8192 * 24 + 16_384 * 4 + 2 ** 23 * 2);
    // Past 8,192 keys: 131,072 entry slots of 24 bytes and a table of twice as many 4-byte places.
    fill(8193);
    const full = 131_072 * 24 + 262_144 * 4 + 2 ** 23 * 2;
    expect(heldBytes(w)).toBe(full);
    fill(250_000);
    expect(w.size).toBe(100_000);
    expect(heldBytes(w)).toBe(full);
  });

  it('sizes its one big growth by both bounds: keys by what maxBytes can pay for, characters by maxBytes', () => {
    const key = (i: number) => `["user-${i % 50}","fp-${String(i).padStart(28, '0')}"]`;
    // A million keys allowed, but 16 MiB pays for at most 262,144 keys of 64 bytes and more.
    const many = new DedupWindow(600_000, 1_000_000, 16 * 1024 * 1024);
    for (let i = 0; i < 8193; i++) many.checkAndAdd(key(i), i);
    expect(heldBytes(many)).toBe(262_144 * 24 + 524_288 * 4 + 2 ** 23 * 2);
    // 15,000,000 bytes pay for 7,500,000 characters: the greatest power of two under it, 2^22.
    const odd = new DedupWindow(600_000, 100_000, 15_000_000);
    for (let i = 0; i < 8193; i++) odd.checkAndAdd(key(i), i);
    expect(heldBytes(odd)).toBe(131_072 * 24 + 262_144 * 4 + 2 ** 22 * 2);
  });
});

describe('growing while its rings have wrapped', () => {
  it('answers exactly as a plain Map window across the doubling and the one big growth (seeded)', () => {
    const random = seededRandom(20261201);
    const ttlMs = 4000;
    const w = new DedupWindow(ttlMs, 30_000, 16 * 1024 * 1024);
    const spec = new PlainWindow(ttlMs, 30_000, 16 * 1024 * 1024);
    let now = 0;
    for (let i = 0; i < 60_000; i++) {
      // Fast at first (about 1,000 keys live, the rings wrap many times), then slower, so the window
      // grows past 8,192 keys and 262,144 characters with its oldest keys anywhere in the rings.
      now += i < 15_000 ? 4 : 0.2;
      const back = random() < 0.3 && i > 0 ? Math.floor(random() * Math.min(i, 2000)) : 0;
      const n = i - back;
      const k = `${n % 97}:${'f'.repeat(n % 40)}${n}`;
      sameStep(w, spec, k, now, random());
    }
    expect(w.size).toBe(spec.size);
    expect(w.size).toBeGreaterThan(8192);
    expect(w.bytes).toBe(spec.bytes);
  });
});
