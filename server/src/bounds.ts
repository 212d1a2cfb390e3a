/**
 * Fixed bounds on what a client may make the server hold, and the byte accounting every bounded
 * structure shares, so one rule decides what an entry costs whichever table it sits in.
 */

import { encodeFrame, type Protocal } from '../../src/protocol';

/** Longest fingerprint accepted on a data frame or an ACK (MobileIMSDK fps are 36-character UUIDs). */
export const MAX_FP_LENGTH = 128;

/** Longest user id: a login and a message's receiver are held to it (the rule lives in user-id.ts). */
export { MAX_USER_ID_LENGTH } from './user-id';

/** Longest kick reason `kick()` and the admin API accept, in characters. */
export const MAX_KICK_REASON_LENGTH = 256;

/** What the heap spends on a table entry beyond its strings (map slot, queue slots, timestamps). */
const ENTRY_OVERHEAD_BYTES = 64;

/**
 * The bytes a table entry holding `strings` is charged: two per UTF-16 code unit (V8's worst case)
 * plus a fixed overhead. An over-estimate on purpose for entries held as strings, so such a bound is never
 * exceeded in fact; the de-duplication windows (dedup.ts) hold keys in arrays sized in powers of two, and say what they hold.
 */
export function entryBytes(...strings: Array<string | null | undefined>): number {
  let n = ENTRY_OVERHEAD_BYTES;
  for (const s of strings) if (s) n += 2 * s.length;
  return n;
}

/** A key for a tuple of strings that no other tuple shares, whatever characters they hold. */
export function tupleKey(...parts: Array<string | null | undefined>): string {
  let key = '';
  for (let i = 0; i < parts.length - 1; i++) {
    const p = parts[i] ?? '';
    key += `${p.length}:${p}`;
  }
  return key + (parts[parts.length - 1] ?? '');
}

/**
 * The last frame encoded and its text. A relayed message is sized, stored, written and tracked for
 * retransmission, mostly back to back: with this it is encoded twice instead of five times, for the cost
 * of one comparison (a WeakMap of every frame cost more than the encodings it saved). Frames are not
 * changed once built; after `beforeC2S`/`beforeC2C` (which may rewrite a frame in place)
 * {@link forgetEncoding} drops what was kept.
 */
let lastFrame: Protocal | null = null;
let lastText = '';

/** A frame's text, reusing the last encoding when it is of this very frame. */
export function encoded(p: Protocal): string {
  if (p !== lastFrame) {
    lastText = encodeFrame(p);
    lastFrame = p;
  }
  return lastText;
}

/** Drops the kept encoding: an application hook was handed the frame and may have changed it. */
export function forgetEncoding(p: Protocal): void {
  if (p === lastFrame) lastFrame = null;
}

/**
 * What encoding a frame ({@link encodeFrame}) adds at most to the bytes of the text it was decoded
 * from, rounded up from 262: the keys and punctuation of every field (86 bytes); the three numbers
 * (`String` of an integer, at most 24 characters each: 72); and 26 for each of the four string fields
 * that came as a number or boolean (the number's text, at most 25 characters and two quotes, from a
 * token of at least one byte: 104). A string field that came as a string never grows: escapes only
 * shrink or stay, and every other character is written as it came. That holds for well-formed text,
 * which is all the gateways pass on: a lone surrogate (written as a 6-byte escape) cannot arrive raw,
 * since ws checks UTF-8 and the TCP and UDP gateways decode it strictly.
 */
const ENCODING_GROWTH_BYTES = 512;

/**
 * Whether any frame decoded from a text of `chars` UTF-16 code units (at most 3 UTF-8 bytes each)
 * encodes in at most `limit` bytes, so the exact size ({@link frameBytes}) need not be computed.
 */
export function encodesWithin(chars: number, limit: number): boolean {
  return 3 * chars + ENCODING_GROWTH_BYTES <= limit;
}

/** The encoded size of a frame in bytes. */
export function frameBytes(p: Protocal): number {
  return Buffer.byteLength(encoded(p), 'utf8');
}
