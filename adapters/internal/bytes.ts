/**
 * Byte helpers shared by the adapters, written over plain typed arrays so they compile without DOM or
 * Node types and run where `TextEncoder`/`atob` are missing (several mini-program runtimes).
 */

/** What the core may pass to `SocketConnection.send`. */
export type OutgoingData = string | ArrayBuffer | ArrayBufferView;

/**
 * A view's own bytes as a fresh ArrayBuffer, never its whole backing buffer: sending `view.buffer` put
 * unrelated bytes on the wire for subarrays (mqttjs/MQTT.js#1506).
 */
export function viewToArrayBuffer(view: ArrayBufferView): ArrayBuffer {
  return view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength) as ArrayBuffer;
}

/** Text stays text, an ArrayBuffer is sent as is, a view is sliced to its own bytes. */
export function toSocketPayload(data: OutgoingData): string | ArrayBuffer {
  if (typeof data === 'string') return data;
  if (isArrayBufferView(data)) return viewToArrayBuffer(data);
  return data;
}

/** Text as UTF-8, binary as a copy of exactly its bytes (for the TCP and UDP framings). */
export function toBytes(data: OutgoingData): Uint8Array {
  if (typeof data === 'string') return encodeUtf8(data);
  if (isArrayBufferView(data)) return new Uint8Array(viewToArrayBuffer(data));
  return new Uint8Array(data.slice(0));
}

/** Copies a chunk (such as a Node `Buffer`, whose memory may be pooled) into a plain Uint8Array. */
export function copyBytes(chunk: Uint8Array): Uint8Array {
  const out = new Uint8Array(chunk.byteLength);
  out.set(chunk);
  return out;
}

function isArrayBufferView(data: ArrayBuffer | ArrayBufferView): data is ArrayBufferView {
  return ArrayBuffer.isView(data);
}

/** Encodes a string as UTF-8 (lone surrogates become U+FFFD, as `TextEncoder` does). */
export function encodeUtf8(text: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    let cp = text.charCodeAt(i);
    if (cp >= 0xd800 && cp <= 0xdbff) {
      const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (next >= 0xdc00 && next <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (next - 0xdc00);
        i++;
      } else cp = 0xfffd;
    } else if (cp >= 0xdc00 && cp <= 0xdfff) cp = 0xfffd;
    if (cp < 0x80) out.push(cp);
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
    else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
    else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
  }
  return new Uint8Array(out);
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Decodes standard base64 (padding and whitespace tolerated) into an ArrayBuffer. */
export function decodeBase64(text: string): ArrayBuffer {
  const clean = text.replace(/[^A-Za-z0-9+/]/g, '');
  const out = new Uint8Array(Math.floor((clean.length * 3) / 4));
  let bits = 0;
  let value = 0;
  let at = 0;
  for (let i = 0; i < clean.length; i++) {
    value = (value << 6) | BASE64.indexOf(clean[i]);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (value >> bits) & 0xff;
    }
  }
  return out.buffer.slice(0, at) as ArrayBuffer;
}
