import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame, ProtocolError } from '../../src/protocol';
import { encodesWithin } from '../../server/src/bounds';
import { seededRandom } from '../helpers/random';

// The admission check skips encoding a frame whose text is short enough (encodesWithin). That is only
// sound if encoding never adds more than the bound's 262 bytes to the text's own bytes; these frames
// try to make it add as much as the decoder allows.
const GROWTH = 262;

function growth(text: string): number {
  return Buffer.byteLength(encodeFrame(decodeFrame(text)), 'utf8') - Buffer.byteLength(text, 'utf8');
}

const STRING_KEYS = ['dataContent', 'from', 'to', 'fp'];
const INT_KEYS = ['type', 'typeu', 'sm'];

describe('encodesWithin: what encoding adds to a frame', () => {
  it('stays within 262 bytes for the frames that grow most: no keys, and short numbers with long texts in every field', () => {
    const worst = [
      '{}',
      '{"type":-1e20,"typeu":-1e20,"sm":-1e20,"dataContent":-1e20,"from":-1e20,"to":-1e20,"fp":-1e20}',
      '{"type":-1e308,"typeu":-1e308,"sm":-1e308,"dataContent":-1.2345678901234567e-6,"from":1e-6,"to":true,"fp":false}',
      '{"dataContent":1e20,"from":1e20,"to":1e20,"fp":1e20,"QoS":"true","bridge":"TRUE"}',
      '{"dataContent":0,"from":0,"to":0,"fp":0}',
    ];
    for (const text of worst) expect(growth(text), text).toBeLessThanOrEqual(GROWTH);
    // The bound is not loose by an order of magnitude: the first two frames grow by most of it.
    expect(growth('{}')).toBeGreaterThan(50);
    expect(growth(worst[1])).toBeGreaterThan(150);
  });

  it('never grows a string field that came as a string, whatever its escapes (seeded)', () => {
    const random = seededRandom(7);
    const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)];
    const pieces = ['a', 'é', '😀', '\\u00e9', '\\ud83d\\ude00', '\\ud800', '\\n', '\\u0001', '\\"', '\\\\', '\\/', ' ', '中'];
    for (let i = 0; i < 2_000; i++) {
      const fields: string[] = [];
      for (const key of STRING_KEYS) {
        if (random() < 0.2) continue;
        let v = '';
        for (let n = Math.floor(random() * 20); n > 0; n--) v += pick(pieces);
        fields.push(`${JSON.stringify(key)}:"${v}"`);
      }
      for (const key of INT_KEYS) if (random() < 0.5) fields.push(`"${key}":${pick(['0', '-1', '2147483647', '9007199254740991', '"12"', '1e3'])}`);
      const text = `{${fields.join(',')}}`;
      let g: number;
      try {
        g = growth(text);
      } catch (err) {
        if (err instanceof ProtocolError) continue;
        throw err;
      }
      // Only the keys, punctuation and numbers are added: the strings themselves never grow.
      expect(g, text).toBeLessThanOrEqual(86 + 72);
    }
  });

  it('answers from the text length alone, at 3 bytes a character plus 512', () => {
    expect(encodesWithin(100, 812)).toBe(true);
    expect(encodesWithin(100, 811)).toBe(false);
    expect(encodesWithin(0, 511)).toBe(false);
  });
});
