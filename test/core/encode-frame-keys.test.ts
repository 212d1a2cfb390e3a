import { describe, expect, it } from 'vitest';
import { createFrame, encodeFrame, type Protocal } from '../../src/protocol';

// The encoder writes the string keys in one loop and the booleans as text; every combination of present
// and null string keys, with both values of each boolean, must still give Gson's exact text.
describe('encodeFrame, every combination of null string keys', () => {
  const keys = ['dataContent', 'from', 'to', 'fp'] as const;

  it('writes exactly the present keys, in Gson order, with Gson booleans', () => {
    for (let mask = 0; mask < 16; mask++) {
      for (const flag of [false, true]) {
        const fields: Partial<Protocal> & { type: number } = { type: 2, bridge: flag, QoS: !flag, typeu: 7, sm: 9 };
        let expected = `{"bridge":${flag},"type":2`;
        keys.forEach((key, i) => {
          const value = mask & (1 << i) ? `${key} "quoted" 你好` : null;
          fields[key] = value;
          if (value !== null) expected += `,"${key}":${JSON.stringify(value)}`;
        });
        expected += `,"QoS":${!flag},"typeu":7,"sm":9}`;
        expect(encodeFrame(createFrame(fields))).toBe(expected);
      }
    }
  });
});
