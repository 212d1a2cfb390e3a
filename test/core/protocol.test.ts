import { describe, expect, it, vi } from 'vitest';
import {
  ProtocolError,
  createFingerprint,
  createFrame,
  decodeErrorResponse,
  decodeFrame,
  decodeKickoutInfo,
  decodeLoginInfo,
  decodeLoginResponse,
  decodeReceipt,
  encodeFrame,
  encodeLoginInfo,
} from '../../src/protocol';
import { senseModeTimings, SenseMode } from '../../src/sense-mode';
import { decodeText, utf8Length } from '../../src/utf8';
import { haveVectors, readVectors, requireVectors } from '../helpers/vectors';
import { seededRandom } from '../helpers/setup';

describe('encodeFrame', () => {
  it('writes every key in Gson order and omits nulls', () => {
    const text = encodeFrame(createFrame({ type: 3, from: 'tcp1', to: '0' }));
    expect(text).toBe('{"bridge":false,"type":3,"from":"tcp1","to":"0","QoS":false,"typeu":-1,"sm":-1}');
    const data = encodeFrame(createFrame({ type: 2, dataContent: 'hi 你好 <&>', from: 'a', to: 'b', fp: 'f', QoS: true, typeu: 7, sm: 5 }));
    expect(Object.keys(JSON.parse(data))).toEqual(['bridge', 'type', 'dataContent', 'from', 'to', 'fp', 'QoS', 'typeu', 'sm']);
    expect(JSON.parse(data).dataContent).toBe('hi 你好 <&>');
  });

  it('writes non-finite numbers as 0 and truncates fractions, so the output is always valid JSON', () => {
    const text = encodeFrame(createFrame({ type: 2.9, typeu: NaN, sm: Infinity }));
    expect(JSON.parse(text)).toMatchObject({ type: 2, typeu: 0, sm: 0 });
  });
});

describe('decodeFrame', () => {
  it('gives missing keys the Java zero values', () => {
    expect(decodeFrame('{"type":2}')).toEqual({
      bridge: false, type: 2, dataContent: null, from: null, to: null, fp: null, QoS: false, typeu: 0, sm: 0,
    });
  });

  it('is lenient as Gson: numbers for strings, numeric strings for ints, "true" for booleans, extra keys', () => {
    const f = decodeFrame('{"type":"2","from":12,"to":true,"QoS":"TRUE","bridge":"no","typeu":"5","retryCount":3,"x":{}}');
    expect(f).toMatchObject({ type: 2, from: '12', to: 'true', QoS: true, bridge: false, typeu: 5 });
  });

  it.each([
    ['not json', 'garbage'],
    ['an array', '[1]'],
    ['null', 'null'],
    ['dataContent as object', '{"type":2,"dataContent":{"a":1}}'],
    ['type as fraction', '{"type":2.5}'],
    ['type as word', '{"type":"two"}'],
    ['QoS as number', '{"type":2,"QoS":1}'],
    ['empty type string', '{"type":""}'],
  ])('refuses %s with a ProtocolError', (_name, text) => {
    expect(() => decodeFrame(text)).toThrow(ProtocolError);
  });
});

describe('payloads', () => {
  it('encodes login info in Java order and leaves out a missing extra', () => {
    expect(encodeLoginInfo({ loginUserId: 'tcp1', loginToken: 'tok', firstLoginTime: 0 })).toBe(
      '{"loginUserId":"tcp1","loginToken":"tok","firstLoginTime":0}',
    );
    expect(encodeLoginInfo({ loginUserId: 'a', loginToken: 't', extra: 'x', firstLoginTime: 5 })).toBe(
      '{"loginUserId":"a","loginToken":"t","extra":"x","firstLoginTime":5}',
    );
    // Our capability bits go last, after MobileIMSDK's keys.
    expect(encodeLoginInfo({ loginUserId: 'a', loginToken: 't', firstLoginTime: 5, caps: 1 })).toBe(
      '{"loginUserId":"a","loginToken":"t","firstLoginTime":5,"caps":1}',
    );
  });

  it('decodes every payload type and refuses non-objects', () => {
    expect(decodeLoginInfo('{"loginUserId":"a","loginToken":"t"}')).toEqual({ loginUserId: 'a', loginToken: 't', extra: null, firstLoginTime: 0 });
    // Our extension's keys read 0 / null when absent, as from a MobileIMSDK server.
    expect(decodeLoginResponse('{"code":0,"firstLoginTime":17}')).toEqual({ code: 0, firstLoginTime: 17, caps: 0, maxMessageBytes: 0 });
    expect(decodeLoginResponse('{"code":0,"firstLoginTime":17,"caps":1,"maxMessageBytes":6144}')).toEqual({
      code: 0,
      firstLoginTime: 17,
      caps: 1,
      maxMessageBytes: 6144,
    });
    expect(decodeErrorResponse('{"errorCode":301}')).toEqual({ errorCode: 301, errorMsg: '', fp: null, limit: 0 });
    expect(decodeErrorResponse('{"errorCode":311,"errorMsg":"big","fp":"f1","limit":6144}')).toEqual({
      errorCode: 311,
      errorMsg: 'big',
      fp: 'f1',
      limit: 6144,
    });
    expect(decodeReceipt('{"fp":"f1","at":1700000000123}')).toEqual({ fp: 'f1', at: 1700000000123 });
    expect(decodeKickoutInfo('{"code":1}')).toEqual({ code: 1 });
    expect(decodeKickoutInfo('{"code":2,"reason":"admin"}')).toEqual({ code: 2, reason: 'admin' });
    expect(() => decodeLoginResponse(null)).toThrow(ProtocolError);
    expect(() => decodeLoginResponse('"x"')).toThrow(/not a JSON object/);
  });

  it('makes RFC 4122 v4 fingerprints, repeatable under a seeded random', () => {
    const a = createFingerprint(seededRandom(1));
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(createFingerprint(seededRandom(1))).toBe(a);
    expect(createFingerprint(seededRandom(2))).not.toBe(a);
    // The digits take the draws left to right, one each: the same fingerprints for the same sequence.
    expect(a).toBe('a08ff49b-6f77-4263-8716-c43069c43a8c');
    expect(createFingerprint(seededRandom(7))).toBe('00fb8673-8b42-4c83-9484-f3e32248c1e8');
    expect(createFingerprint(() => 0)).toBe('00000000-0000-4000-8000-000000000000');
    expect(createFingerprint(() => 1 - 2 ** -53)).toBe('ffffffff-ffff-4fff-bfff-ffffffffffff');
    const random = vi.fn(seededRandom(3));
    createFingerprint(random);
    expect(random).toHaveBeenCalledTimes(31);
  });
});

describe('sense modes', () => {
  it('has MobileIMSDK timings for every mode', () => {
    const rows = Object.values(SenseMode).map((m) => {
      const t = senseModeTimings(m);
      return [t.intervalMs, t.timeoutMs, t.serverExpiryMs];
    });
    expect(rows).toEqual([
      [3000, 5000, 7000],
      [5000, 8000, 11000],
      [10000, 15000, 15000],
      [15000, 20000, 20000],
      [30000, 35000, 35000],
      [60000, 65000, 65000],
      [120000, 125000, 125000],
    ]);
    expect(() => senseModeTimings(0)).toThrow(RangeError);
    expect(() => senseModeTimings(8)).toThrow(/MODE_3S/);
  });
});

describe('utf8', () => {
  it('measures UTF-8 length like TextEncoder, and decodes with TextDecoder', () => {
    for (const s of ['', 'abc', 'é', '你好', '😀', 'a é 你好 😀 {"k":1}']) expect(utf8Length(s)).toBe(new TextEncoder().encode(s).length);
    expect(decodeText(new TextEncoder().encode('你好 😀'))).toBe('你好 😀');
  });

  it('says so when the runtime has no TextDecoder', () => {
    const original = globalThis.TextDecoder;
    try {
      (globalThis as { TextDecoder?: unknown }).TextDecoder = undefined;
      expect(() => decodeText(new Uint8Array([65]))).toThrow(/no TextDecoder/);
    } finally {
      globalThis.TextDecoder = original;
    }
  });
});

describe.skipIf(!requireVectors())('captured MobileIMSDK frames', () => {
  const lines = haveVectors ? [...readVectors('ws-session-transcripts.jsonl'), ...readVectors('tcp-session-transcript.jsonl')] : [];

  it('decodes every JSON frame, in both directions, to the fields it carries', () => {
    let decoded = 0;
    for (const line of lines) {
      if (line.text === undefined) continue;
      const raw = JSON.parse(line.text) as Record<string, unknown>;
      const f = decodeFrame(line.text) as unknown as Record<string, unknown>;
      for (const [k, v] of Object.entries(raw)) {
        if (k === 'retryCount') continue;
        expect(f[k], `${line.scenario} ${k}`).toEqual(v);
      }
      decoded++;
    }
    expect(decoded).toBeGreaterThan(40);
  });

  it('re-encodes every server frame byte for byte (Gson order, nulls omitted)', () => {
    const serverFrames = lines.filter((l) => l.dir === 'server->client' && l.text !== undefined);
    expect(serverFrames.length).toBeGreaterThan(15);
    for (const line of serverFrames) expect(encodeFrame(decodeFrame(line.text as string))).toBe(line.text);
  });

  it('reports the non-JSON frame as a ProtocolError', () => {
    const raw = lines.filter((l) => l.raw !== undefined || (l.text !== undefined && !l.text.startsWith('{')));
    expect(raw.length).toBeGreaterThan(0);
    for (const line of raw) expect(() => decodeFrame((line.raw ?? line.text) as string)).toThrow(ProtocolError);
  });
});

describe('the protocol vectors are a prerequisite', () => {
  it('fails the run when they are missing, unless the package-only opt-out is set', () => {
    expect(() => requireVectors(false, {})).toThrow(/MOBILEIMSDK_SKIP_VECTORS=1/);
    expect(requireVectors(false, { MOBILEIMSDK_SKIP_VECTORS: '1' })).toBe(false);
    expect(requireVectors(true, {})).toBe(true);
  });
});
