/** The length of `s` encoded as UTF-8, in bytes. */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00) {
      n += 2;
      i++;
    } else if (c >= 0x800) n += 2;
    else if (c >= 0x80) n++;
  }
  return n;
}

/** A `TextDecoder` constructor, where the runtime has one (some mini-program runtimes do not). */
type TextDecoderLike = new () => { decode(bytes: Uint8Array): string };

/**
 * Decodes a binary frame's UTF-8 bytes with the runtime's `TextDecoder`. MobileIMSDK servers send text
 * frames only; bytes come from the TCP and UDP adapters, which run in Node.
 */
export function decodeText(bytes: Uint8Array): string {
  const TD = (globalThis as unknown as { TextDecoder?: TextDecoderLike }).TextDecoder;
  if (!TD) throw new Error('no TextDecoder for a binary frame');
  return new TD().decode(bytes);
}
