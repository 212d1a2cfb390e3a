import { seededHash } from './seeded-hash';

const MIN_SLOTS = 16;
/** Tables of at most this many slots never shrink: a count swinging between 3 and 9 would resize each swing. */
const KEEP_SLOTS = 256;

/**
 * A string-keyed map for entries set and deleted once per message (the QoS table, the store's held
 * puts and per-receiver counts (group-commit.ts), the cluster's pending routes and removals).
 *
 * Fast path with a comment of its own: a long-lived `Map` that gains and loses an entry per message had
 * each message's frame, entry and closures promoted to V8's old generation, where they died: at 16,000
 * msg/s, 17–20 MB/s promoted and a mark-compact every 1.3 s, each a 10–30 ms stall; an array holding the
 * same live entries promoted nothing (bench/README.md, "Per-message tables and V8's young generation").
 * Our reading, not checked in V8's source: once the `Map` is in the old generation its rehashed tables
 * are allocated there too, and a dead table still points at the values it held, which the scavenger
 * treats as live until the next full collection.
 *
 * Here keys, values and hashes sit in plain arrays, an open-addressing table with linear probing and
 * deletion by backward shift: a deletion clears its slot, nothing is rehashed under churn, and the arrays
 * are only replaced to grow or shrink, after which the old ones are cleared. Keys are hashed with a
 * per-process seed, so no client can aim collisions at it.
 *
 * Iteration (`forEach`) visits slots in table order, not insertion order; the callback must not set or
 * delete.
 */
export class FlatMap<V> {
  private keys: Array<string | undefined> = slots(MIN_SLOTS);
  private vals: Array<V | undefined> = slots(MIN_SLOTS);
  private hashes = new Int32Array(MIN_SLOTS);
  private count = 0;
  /**
   * The last key hashed and its hash: callers look a key up and then set or delete it (the QoS table's
   * enrol and ACK, the counters of pending removals), and hashing a 50-character key costs about ten
   * times the string comparison that finds it here again.
   */
  private lastKey: string | undefined = undefined;
  private lastHash = 0;

  get size(): number {
    return this.count;
  }

  get(key: string): V | undefined {
    const pos = this.find(key, this.hash(key));
    return pos < 0 ? undefined : this.vals[pos];
  }

  has(key: string): boolean {
    return this.find(key, this.hash(key)) >= 0;
  }

  set(key: string, value: V): this {
    const h = this.hash(key);
    const pos = this.find(key, h);
    if (pos >= 0) {
      this.vals[pos] = value;
      return this;
    }
    if ((this.count + 1) * 2 > this.keys.length) this.resize(this.keys.length * 2);
    this.place(key, value, h);
    this.count++;
    return this;
  }

  delete(key: string): boolean {
    const pos = this.find(key, this.hash(key));
    if (pos < 0) return false;
    const mask = this.keys.length - 1;
    let hole = pos;
    // Backward shift: an entry after the hole moves into it unless its own place lies between them.
    for (let next = (hole + 1) & mask; this.keys[next] !== undefined; next = (next + 1) & mask) {
      const home = this.hashes[next] & mask;
      const stays = hole <= next ? home > hole && home <= next : home > hole || home <= next;
      if (stays) continue;
      this.keys[hole] = this.keys[next];
      this.vals[hole] = this.vals[next];
      this.hashes[hole] = this.hashes[next];
      hole = next;
    }
    this.keys[hole] = undefined;
    this.vals[hole] = undefined;
    this.count--;
    if (this.keys.length > KEEP_SLOTS && this.count * 8 < this.keys.length) this.resize(this.keys.length / 2);
    return true;
  }

  /**
   * Empties the table in place; a table of more than {@link KEEP_SLOTS} slots is replaced by a small one,
   * the old arrays emptied first (as after a resize). Callers clear at every commit: a small table kept
   * is not grown again slot by slot each time.
   */
  clear(): void {
    if (this.count > 0) {
      this.keys.fill(undefined);
      this.vals.fill(undefined);
    }
    if (this.keys.length > KEEP_SLOTS) {
      this.keys = slots(MIN_SLOTS);
      this.vals = slots(MIN_SLOTS);
      this.hashes = new Int32Array(MIN_SLOTS);
    }
    this.count = 0;
  }

  /** Calls `fn` with each entry, in table order; `fn` must not set or delete. */
  forEach(fn: (value: V, key: string) => void): void {
    for (let pos = 0; pos < this.keys.length; pos++) {
      const key = this.keys[pos];
      if (key !== undefined) fn(this.vals[pos] as V, key);
    }
  }

  private hash(key: string): number {
    if (key !== this.lastKey) {
      this.lastHash = seededHash(key);
      this.lastKey = key;
    }
    return this.lastHash;
  }

  private find(key: string, h: number): number {
    const mask = this.keys.length - 1;
    for (let pos = h & mask; ; pos = (pos + 1) & mask) {
      const k = this.keys[pos];
      if (k === undefined) return -1;
      if (this.hashes[pos] === h && k === key) return pos;
    }
  }

  private place(key: string, value: V, h: number): void {
    const mask = this.keys.length - 1;
    let pos = h & mask;
    while (this.keys[pos] !== undefined) pos = (pos + 1) & mask;
    this.keys[pos] = key;
    this.vals[pos] = value;
    this.hashes[pos] = h;
  }

  private resize(size: number): void {
    const keys = this.keys;
    const vals = this.vals;
    const hashes = this.hashes;
    this.keys = slots(size);
    this.vals = slots(size);
    this.hashes = new Int32Array(size);
    for (let pos = 0; pos < keys.length; pos++) {
      const key = keys[pos];
      if (key !== undefined) this.place(key, vals[pos] as V, hashes[pos]);
    }
    // The old arrays may already be in the old generation: emptied, they keep nothing alive there.
    keys.fill(undefined);
    vals.fill(undefined);
  }
}

/** Counts one more of `key` in a table of counts. */
export function countUp(counts: FlatMap<number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

/** Counts one fewer of `key` in a table of counts; a key whose count reaches zero leaves the table. */
export function countDown(counts: FlatMap<number>, key: string): void {
  const left = (counts.get(key) ?? 1) - 1;
  if (left > 0) counts.set(key, left);
  else counts.delete(key);
}

/** `n` empty slots as a packed array (`new Array(n)` above 100,000 or so would be a dictionary). */
function slots<T>(n: number): Array<T | undefined> {
  const a: Array<T | undefined> = [];
  for (let i = 0; i < n; i++) a.push(undefined);
  return a;
}
