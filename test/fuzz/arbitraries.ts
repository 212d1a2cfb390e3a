import fc from 'fast-check';

/** One seed for every fuzz run (override with FUZZ_SEED to explore, and to replay a failure it prints). */
export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20261129);

/** Any JSON-ish value, biased towards the shapes a decoder has to tell apart. */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -1, 2 ** 31, -(2 ** 31) - 1, 2 ** 53, 1e300, -0),
  fc.string({ maxLength: 40 }),
  fc.constantFrom('0', '-1', '', ' ', 'true', '1e3', '\u0000', '\ud800'),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 }),
);

/** A login payload with each field valid, odd or of the wrong type. */
const loginPayload = fc
  .record(
    {
      loginUserId: fc.oneof(fc.constantFrom('u1', 'u2', 'fuzz'), anyValue),
      loginToken: fc.oneof(fc.constant('t'), anyValue),
      extra: anyValue,
      firstLoginTime: fc.oneof(fc.constant(0), anyValue),
    },
    { requiredKeys: [] },
  )
  .map((o) => JSON.stringify(o));

/** A frame of a real type whose fields are valid, odd or of the wrong type, some missing. */
export const mutatedFrame: fc.Arbitrary<Record<string, unknown>> = fc
  .record(
    {
      bridge: fc.oneof(fc.boolean(), anyValue),
      type: fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 5, 50, 51, 52, 53, 54, 60, 99), anyValue),
      dataContent: fc.oneof(loginPayload, fc.string({ maxLength: 80 }), anyValue),
      from: fc.oneof(fc.constantFrom('u1', 'u2', '0', '-1'), anyValue),
      to: fc.oneof(fc.constantFrom('u1', 'u2', '0', '-1'), anyValue),
      fp: fc.oneof(fc.uuid(), fc.string({ maxLength: 200 }), anyValue),
      QoS: fc.oneof(fc.boolean(), anyValue),
      typeu: fc.oneof(fc.integer(), anyValue),
      sm: fc.oneof(fc.integer(), anyValue),
    },
    { requiredKeys: [] },
  );

/** Text with a few characters inserted, deleted or replaced: breaks JSON in the places parsers trip on. */
function mutateText(text: string): fc.Arbitrary<string> {
  const edit = fc.record({ at: fc.nat({ max: Math.max(0, text.length) }), del: fc.nat({ max: 4 }), ins: fc.string({ maxLength: 4 }) });
  return fc.array(edit, { minLength: 1, maxLength: 4 }).map((edits) => {
    let s = text;
    for (const e of edits) {
      const at = Math.min(e.at, s.length);
      s = s.slice(0, at) + e.ins + s.slice(at + e.del);
    }
    return s;
  });
}

/** A frame near a transport's size limit, full of characters JSON has to escape: replies that quote it grow. */
export function bigFrameText(maxBytes: number): fc.Arbitrary<string> {
  return fc
    .record({ type: fc.constantFrom(1, 2, 4, 5, 99), fill: fc.constantFrom('"', '\\', '\u0001', 'x', '\u00e9') })
    .map(({ type, fill }) => {
      const frame = { bridge: false, type, dataContent: '', from: 'u1', to: 'u2', fp: 'f', QoS: true, typeu: -1, sm: -1 };
      const room = maxBytes - Buffer.byteLength(JSON.stringify(frame));
      frame.dataContent = fill.repeat(Math.floor(room / Buffer.byteLength(JSON.stringify(fill).slice(1, -1))));
      return JSON.stringify(frame);
    });
}

/** Any text a hostile peer might send as one frame. */
export function anyFrameText(): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: mutatedFrame.map((o) => JSON.stringify(o)) },
    { weight: 3, arbitrary: mutatedFrame.chain((o) => mutateText(JSON.stringify(o))) },
    { weight: 1, arbitrary: fc.json({ maxDepth: 3 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
    { weight: 1, arbitrary: fc.constantFrom('', '{}', '[]', 'null', '{"type":2}', '{"type":0,"dataContent":"{}"}', '{"__proto__":{"type":2}}') },
  );
}
