import { entryBytes } from './bounds';
import { seededHash as hash } from './seeded-hash';

const INITIAL_ENTRIES = 64;

/**
 * A de-duplication window of (sender, fp) keys (MobileIMSDK `QoS4ReciveDaemonC2S`, and the same for
 * C2C): a retransmitted message is ACKed again but handed on once. Bounded by `ttlMs`, by `max` keys
 * and by `maxBytes`, the oldest going first, so a flood of fingerprints cannot grow it without limit
 * (an evicted key only means a late duplicate may pass once more).
 *
 * Fast path with a comment of its own: the window outlives each key by seconds to minutes, so keys held
 * as strings in a Map were all promoted to V8's old generation and died there, one per message, which
 * kept the major collector busy (its pauses were the longest stalls of a busy server). Here nothing is
 * allocated per key: each key's UTF-16 code units are copied into a ring of characters, its hash, length,
 * offset and time into typed arrays in arrival order, and an open-addressing table (linear probing,
 * deletion by backward shift) maps hashes to entries. A lookup compares the characters themselves, so
 * the window is exact; the seeded hash only decides where to look. The arrays grow by doubling and never
 * shrink, so what they hold is bounded by the most keys and characters ever held, not by `maxBytes`
 * alone: under 64 bytes a key plus 4 a character at those peaks (server/README.md, Limits).
 */
export class DedupWindow {
  /** Entries in arrival order: a ring indexed by a running count (`head` oldest, `tail` next) masked by `cap - 1`. */
  private cap = 0;
  private head = 0;
  private tail = 0;
  private offsets = new Float64Array(0);
  private lengths = new Int32Array(0);
  private hashes = new Int32Array(0);
  private times = new Float64Array(0);
  /** Key characters: a ring indexed by a running count masked by `chars.length - 1`. */
  private chars = new Uint16Array(0);
  private charHead = 0;
  private charTail = 0;
  /** Slot + 1 of each entry at its hash's place or after it (0 = empty); twice `cap` long. */
  private table = new Int32Array(0);
  private charged = 0;

  /** `max` keys and `maxBytes` (as charged by {@link entryBytes}) at most, each for `ttlMs`. */
  constructor(
    private readonly ttlMs: number,
    private readonly max: number,
    private readonly maxBytes: number = Number.POSITIVE_INFINITY,
  ) {}

  /** Records the key; true when it was already seen within the window. */
  checkAndAdd(key: string, now: number = Date.now()): boolean {
    this.expire(now);
    const h = hash(key);
    if (this.find(key, h) >= 0) return true;
    this.append(key, h, now);
    return false;
  }

  /** Whether the key was seen within the window (expired keys are dropped first). */
  has(key: string, now: number = Date.now()): boolean {
    this.expire(now);
    return this.find(key, hash(key)) >= 0;
  }

  /** Records a key not yet in the window, evicting the oldest while a bound is exceeded. */
  add(key: string, now: number = Date.now()): void {
    const h = hash(key);
    if (this.find(key, h) < 0) this.append(key, h, now);
  }

  /** How many keys are remembered. */
  get size(): number {
    return this.tail - this.head;
  }

  /** The bytes the remembered keys are charged. */
  get bytes(): number {
    return this.charged;
  }

  private expire(now: number): void {
    while (this.head < this.tail && now - this.times[this.head & (this.cap - 1)] >= this.ttlMs) this.dropOldest();
  }

  /** The slot of `key` (hash `h`), or -1. */
  private find(key: string, h: number): number {
    if (this.cap === 0) return -1;
    const tmask = this.table.length - 1;
    for (let pos = h & tmask; this.table[pos] !== 0; pos = (pos + 1) & tmask) {
      const slot = this.table[pos] - 1;
      if (this.hashes[slot] === h && this.lengths[slot] === key.length && this.sameChars(slot, key)) return slot;
    }
    return -1;
  }

  /** From the last character back: keys share their sender's prefix and differ in the fp at the end. */
  private sameChars(slot: number, key: string): boolean {
    const cmask = this.chars.length - 1;
    const at = this.offsets[slot];
    for (let i = key.length - 1; i >= 0; i--) if (this.chars[(at + i) & cmask] !== key.charCodeAt(i)) return false;
    return true;
  }

  private append(key: string, h: number, now: number): void {
    // Evict before growing, so neither ring grows for room its bounds would free at once. The same keys
    // go as adding first and evicting after would drop: the oldest first, the new key only when it alone
    // exceeds a bound (then everything else has gone too).
    const charge = entryBytes(key);
    while (this.size > 0 && (this.size + 1 > this.max || this.charged + charge > this.maxBytes)) this.dropOldest();
    if (this.size + 1 > this.max || charge > this.maxBytes) return;
    if (this.tail - this.head === this.cap) this.growEntries();
    if (this.charTail - this.charHead + key.length > this.chars.length) this.growChars(key.length);
    const slot = this.tail & (this.cap - 1);
    const cmask = this.chars.length - 1;
    for (let i = 0; i < key.length; i++) this.chars[(this.charTail + i) & cmask] = key.charCodeAt(i);
    this.offsets[slot] = this.charTail;
    this.lengths[slot] = key.length;
    this.hashes[slot] = h;
    this.times[slot] = now;
    this.charTail += key.length;
    this.tail++;
    this.place(slot);
    this.charged += charge;
  }

  /** Puts `slot` into the table at the first free place from its hash's. */
  private place(slot: number): void {
    const tmask = this.table.length - 1;
    let pos = this.hashes[slot] & tmask;
    while (this.table[pos] !== 0) pos = (pos + 1) & tmask;
    this.table[pos] = slot + 1;
  }

  private dropOldest(): void {
    const slot = this.head & (this.cap - 1);
    const tmask = this.table.length - 1;
    let hole = this.hashes[slot] & tmask;
    while (this.table[hole] !== slot + 1) hole = (hole + 1) & tmask;
    // Backward shift: an entry after the hole moves into it unless its own place lies between them.
    for (let next = (hole + 1) & tmask; this.table[next] !== 0; next = (next + 1) & tmask) {
      const home = this.hashes[this.table[next] - 1] & tmask;
      const stays = hole <= next ? home > hole && home <= next : home > hole || home <= next;
      if (stays) continue;
      this.table[hole] = this.table[next];
      hole = next;
    }
    this.table[hole] = 0;
    const len = this.lengths[slot];
    this.charHead += len;
    this.charged -= entryBytes() + 2 * len;
    this.head++;
  }

  /** Doubles the entry ring (and the table, rebuilt), keeping arrival order. */
  private growEntries(): void {
    const cap = Math.max(INITIAL_ENTRIES, this.cap * 2);
    const offsets = new Float64Array(cap);
    const lengths = new Int32Array(cap);
    const hashes = new Int32Array(cap);
    const times = new Float64Array(cap);
    for (let n = this.head; n < this.tail; n++) {
      const from = n & (this.cap - 1);
      const to = n & (cap - 1);
      offsets[to] = this.offsets[from];
      lengths[to] = this.lengths[from];
      hashes[to] = this.hashes[from];
      times[to] = this.times[from];
    }
    this.cap = cap;
    this.offsets = offsets;
    this.lengths = lengths;
    this.hashes = hashes;
    this.times = times;
    this.table = new Int32Array(cap * 2);
    for (let n = this.head; n < this.tail; n++) this.place(n & (cap - 1));
  }

  /** Makes room for `more` characters: at least doubles the character ring, keeping each key's offset. */
  private growChars(more: number): void {
    let size = Math.max(1024, this.chars.length * 2);
    while (size < this.charTail - this.charHead + more) size *= 2;
    const chars = new Uint16Array(size);
    const oldMask = this.chars.length - 1;
    for (let n = this.charHead; n < this.charTail; n++) chars[n & (size - 1)] = this.chars[n & oldMask];
    this.chars = chars;
  }
}
