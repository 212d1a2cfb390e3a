/**
 * MobileIMSDK's TCP framing: a 4-byte big-endian body length, then that many bytes of UTF-8
 * JSON. Written over plain `Uint8Array` so the Node TCP adapter and the reference server share it.
 */

/** The largest body MobileIMSDK accepts (`TCP_FRAME_MAX_BODY_LENGTH`). */
export const TCP_MAX_BODY_BYTES = 6144;

/** Prefixes a body with its 4-byte big-endian length. */
export function encodeLengthPrefixed(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length, false);
  out.set(body, 4);
  return out;
}

/** Thrown by {@link LengthPrefixDecoder.push} when a frame announces a body over the limit. */
export class FrameTooLargeError extends Error {
  constructor(readonly length: number, readonly maxBodyBytes: number) {
    super(`frame body of ${length} bytes exceeds the ${maxBodyBytes}-byte limit`);
    this.name = 'FrameTooLargeError';
  }
}

/** Reassembles length-prefixed frames from a byte stream that arrives in arbitrary chunks. */
export class LengthPrefixDecoder {
  private _buf: Uint8Array = new Uint8Array(0);

  constructor(private readonly _maxBodyBytes: number = TCP_MAX_BODY_BYTES) {}

  /** Bytes received but not yet part of a whole frame. */
  get pendingBytes(): number {
    return this._buf.length;
  }

  /** Adds a chunk and returns every body it completed, in order. Throws {@link FrameTooLargeError}. */
  push(chunk: Uint8Array): Uint8Array[] {
    let buf = this._buf;
    if (buf.length === 0) buf = chunk;
    else {
      const joined = new Uint8Array(buf.length + chunk.length);
      joined.set(buf, 0);
      joined.set(chunk, buf.length);
      buf = joined;
    }
    const bodies: Uint8Array[] = [];
    let at = 0;
    while (buf.length - at >= 4) {
      const len = new DataView(buf.buffer, buf.byteOffset + at, 4).getUint32(0, false);
      if (len > this._maxBodyBytes) throw new FrameTooLargeError(len, this._maxBodyBytes);
      if (buf.length - at - 4 < len) break;
      bodies.push(buf.slice(at + 4, at + 4 + len));
      at += 4 + len;
    }
    this._buf = at === buf.length ? new Uint8Array(0) : buf.slice(at);
    return bodies;
  }
}
