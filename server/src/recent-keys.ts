import { FlatMap } from './flat-map';

/**
 * A set of at most `capacity` strings that forgets the oldest first: a hint of what happened lately,
 * never a record (the store's committed held puts, sqlite-store.ts). Each key costs one slot of a ring
 * and one of a {@link FlatMap}; the strings are the caller's own. A key taken out frees its slot at once,
 * so a key the caller is done with is not kept alive until the ring comes round (a key added again
 * without being taken keeps its older slot's string until then).
 */
export class RecentKeys {
  /** Each key's slot in the ring. */
  private readonly slotOf = new FlatMap<number>();
  /** Grown by push up to `capacity` (a packed array), then overwritten in turn. */
  private readonly ring: Array<string | undefined> = [];
  private next = 0;

  constructor(private readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a whole number ≥ 1, got ${String(capacity)}`);
  }

  get size(): number {
    return this.slotOf.size;
  }

  /** Remembers `key`, forgetting the oldest key still remembered once `capacity` are. */
  add(key: string): void {
    const pos = this.next;
    if (pos === this.ring.length) this.ring.push(key);
    else {
      const old = this.ring[pos];
      // The slot's key, unless it was taken or added again since (its newer slot is the one that counts).
      if (old !== undefined && this.slotOf.get(old) === pos) this.slotOf.delete(old);
      this.ring[pos] = key;
    }
    this.slotOf.set(key, pos);
    this.next = pos + 1 === this.capacity ? 0 : pos + 1;
  }

  /** Forgets every key. */
  clear(): void {
    this.slotOf.clear();
    this.ring.length = 0;
    this.next = 0;
  }

  /** Whether `key` was added and neither taken nor forgotten since; forgets it either way. */
  take(key: string): boolean {
    const pos = this.slotOf.get(key);
    if (pos === undefined) return false;
    this.slotOf.delete(key);
    this.ring[pos] = undefined;
    return true;
  }
}
