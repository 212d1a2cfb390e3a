/** The seed, one per process: a collision only costs a comparison, and no client can aim one. */
const SEED = (Math.random() * 0x100000000) >>> 0;

/** A seeded 32-bit hash of the string's UTF-16 code units (FNV-1a, then murmur3's finaliser). */
export function seededHash(key: string): number {
  let h = (SEED ^ 0x811c9dc5) | 0;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
