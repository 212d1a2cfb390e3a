import { entryBytes } from './bounds';
import { seededHash as hash } from './seeded-hash';

const INITIAL_ENTRIES = 64;
const INITIAL_CHARS = 1024;
/**
 * The rings double up to these sizes; the next growth goes straight to what the window's bounds allow:
 * room for as many keys as `max` and `maxBytes` (64 bytes at least a key) let it hold, and the greatest
 * power of two of characters at most `maxBytes / 2` (their 2 bytes each never over `maxBytes`), at most
 * {@link JUMP_ENTRIES} / {@link JUMP_CHARS}. Past that the rings double again: once more for characters
 * when `maxBytes / 2` is not a power of two and the keys' characters come to fill it.
 */
const DOUBLING_ENTRIES = 1 << 13;
const DOUBLING_CHARS = 1 << 18;
const JUMP_ENTRIES = 1 << 20;
const JUMP_CHARS = 1 << 24;

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
 * the window is exact; the seeded hash only decides where to look. The arrays never shrink.
 *
 * Growth: while small (8,192 keys, 262,144 characters) the arrays double, holding under 64 bytes a key
 * plus 4 a character at the most ever held; then they grow once to what the bounds allow (see
 * {@link DOUBLING_ENTRIES}), which with the defaults is where doubling ended too (server/README.md,
 * Limits). Doubling all the way copied up to 4 Mi characters into 16 MiB of new memory at once, and on a
 * virtual machine whose first touch of a page is slow (3 ms a MiB here) one message then waited ~30 ms.
 * The one big growth copies little; its pages become resident as keys fill them.
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

  /** Grows the entry ring (doubling, or the one big growth: see {@link DOUBLING_ENTRIES}) and rebuilds the table, keeping arrival order. */
  private growEntries(): void {
    const cap = grownLength(this.cap, INITIAL_ENTRIES, DOUBLING_ENTRIES, powerOfTwoAtLeast(Math.min(this.max, this.maxBytes / entryBytes(''), JUMP_ENTRIES)));
    this.offsets = regrown(this.offsets, new Float64Array(cap), this.head, this.tail);
    this.lengths = regrown(this.lengths, new Int32Array(cap), this.head, this.tail);
    this.hashes = regrown(this.hashes, new Int32Array(cap), this.head, this.tail);
    this.times = regrown(this.times, new Float64Array(cap), this.head, this.tail);
    this.cap = cap;
    this.table = new Int32Array(cap * 2);
    for (let n = this.head; n < this.tail; n++) this.place(n & (cap - 1));
  }

  /** Makes room for `more` characters: at least doubles the character ring, keeping each key's offset. */
  private growChars(more: number): void {
    let size = grownLength(this.chars.length, INITIAL_CHARS, DOUBLING_CHARS, powerOfTwoAtMost(Math.min(this.maxBytes / 2, JUMP_CHARS)));
    while (size < this.charTail - this.charHead + more) size *= 2;
    this.chars = regrown(this.chars, new Uint16Array(size), this.charHead, this.charTail);
  }
}

/** A ring's next length: doubled (at least `initial`) while under `doublingUpTo`, then at once at least `bound`. */
function grownLength(length: number, initial: number, doublingUpTo: number, bound: number): number {
  return length < doublingUpTo ? Math.max(initial, length * 2) : Math.max(length * 2, bound);
}

/** The least power of two that is at least `n` (n ≥ 1). */
function powerOfTwoAtLeast(n: number): number {
  return 2 ** Math.ceil(Math.log2(n));
}

/** The greatest power of two that is at most `n` (n ≥ 1). */
function powerOfTwoAtMost(n: number): number {
  return 2 ** Math.floor(Math.log2(n));
}

/**
 * Copies the ring `from`'s elements of running counts `head` to `tail` (at most its length) into the
 * larger ring `to` (both lengths powers of two), each at its count masked by the new length, and returns
 * `to`. The span breaks only where the old ring wraps, and the new ring wraps only there too, so it is at
 * most two block copies, not a loop per element in a function too rarely called to be optimised.
 */
function regrown<T extends Float64Array | Int32Array | Uint16Array>(from: T, to: T, head: number, tail: number): T {
  const oldMask = from.length - 1;
  const newMask = to.length - 1;
  for (let n = head; n < tail; ) {
    const at = n & oldMask;
    const run = Math.min(tail - n, from.length - at);
    (to as Uint16Array).set((from as Uint16Array).subarray(at, at + run), n & newMask);
    n += run;
  }
  return to;
}
