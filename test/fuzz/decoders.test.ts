import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeLengthPrefixed, FrameTooLargeError, LengthPrefixDecoder } from '../../src/length-prefix';
import {
  decodeErrorResponse,
  decodeFrame,
  decodeKickoutInfo,
  decodeLoginInfo,
  decodeLoginResponse,
  encodeFrame,
  ProtocolError,
} from '../../src/protocol';
import { anyFrameText, FUZZ_SEED } from './arbitraries';

const runs = { seed: FUZZ_SEED, numRuns: 2000 };

/** Calls `fn`; a ProtocolError is the decoder refusing the input, anything else thrown is a defect. */
function refusesOrDecodes<T>(fn: () => T): T | null {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ProtocolError) return null;
    throw err;
  }
}

describe('frame and payload decoders under random and mutated input', () => {
  it('decodeFrame either returns a frame or throws ProtocolError, and re-encodes to what it decoded', () => {
    fc.assert(
      fc.property(anyFrameText(), (text) => {
        const p = refusesOrDecodes(() => decodeFrame(text));
        if (!p) return;
        expect(typeof p.type).toBe('number');
        // What the server relays or stores is its own encoding: it must decode to the same frame.
        expect(decodeFrame(encodeFrame(p))).toEqual(p);
      }),
      runs,
    );
  });

  it('the payload decoders (login, login response, error, kickout) never throw anything but ProtocolError', () => {
    const payload = fc.oneof(
      anyFrameText(),
      fc.record({
        loginUserId: fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.object()),
        loginToken: fc.oneof(fc.string(), fc.constant(null)),
        firstLoginTime: fc.oneof(fc.double(), fc.string(), fc.bigInt().map(String), fc.constant(null)),
        code: fc.oneof(fc.integer(), fc.string(), fc.double()),
        errorCode: fc.oneof(fc.integer(), fc.string()),
        errorMsg: fc.oneof(fc.string(), fc.array(fc.integer())),
        reason: fc.oneof(fc.string(), fc.boolean()),
      }).map((o) => JSON.stringify(o)),
    );
    fc.assert(
      fc.property(payload, (text) => {
        refusesOrDecodes(() => decodeLoginInfo(text));
        refusesOrDecodes(() => decodeLoginResponse(text));
        refusesOrDecodes(() => decodeErrorResponse(text));
        refusesOrDecodes(() => decodeKickoutInfo(text));
      }),
      runs,
    );
  });

  it('the TCP length-prefix decoder yields the same bodies however the stream is split', () => {
    const bodies = fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 12 });
    fc.assert(
      fc.property(bodies, fc.array(fc.nat({ max: 400 }), { maxLength: 30 }), (list, cuts) => {
        const stream = Buffer.concat(list.map((b) => Buffer.from(encodeLengthPrefixed(b))));
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        const decoder = new LengthPrefixDecoder(300);
        const out: Uint8Array[] = [];
        let at = 0;
        for (const p of [...points, stream.length]) {
          out.push(...decoder.push(stream.subarray(at, p)));
          at = p;
        }
        expect(out.map((b) => Buffer.from(b).toString('hex'))).toEqual(list.map((b) => Buffer.from(b).toString('hex')));
        expect(decoder.pendingBytes).toBe(0);
      }),
      runs,
    );
  });

  it('the TCP length-prefix decoder refuses an announced body over its limit with FrameTooLargeError only, never holding more than one frame', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 2000 }), fc.nat({ max: 64 }), (junk, split) => {
        const decoder = new LengthPrefixDecoder(512);
        try {
          decoder.push(junk.subarray(0, split));
          decoder.push(junk.subarray(split));
        } catch (err) {
          expect(err).toBeInstanceOf(FrameTooLargeError);
          return;
        }
        // Whatever it kept waiting for is one incomplete frame: a 4-byte header and at most 512 bytes.
        expect(decoder.pendingBytes).toBeLessThanOrEqual(4 + 512);
      }),
      runs,
    );
  });
});
