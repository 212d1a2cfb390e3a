import { describe, expect, it } from 'vitest';
import { ServerErrorCode } from '../../server/src/index';
import { DedupWindow } from '../../server/src/dedup';
import { ackFrame, admin, dataFrame, errorOf, login, useServers, type Frame } from './helpers';

const { setup } = useServers();

const fpOf = (n: number, fill = 'f') => fill.repeat(n);
const c2s = (from: string, fp: string, content = 'x') => dataFrame(from, '0', content, fp);

describe('fingerprint bound (128 characters)', () => {
  it('refuses a C2S fp of 129 characters with error 320, without echoing it, before the hook and the dedup', async () => {
    const seen: string[] = [];
    const { ws } = await setup({ hooks: { beforeC2S: (m) => void seen.push(m.fp as string), onC2S: (m) => void seen.push(`on ${m.fp}`) } });
    const c = await ws();
    await login(c, 'u1');
    c.send(c2s('u1', fpOf(129)));
    const err = await c.nextOfType(52);
    expect(errorOf(err).errorCode).toBe(ServerErrorCode.FP_TOO_LONG);
    expect(err.dataContent as string).not.toContain(fpOf(129));
    expect(JSON.parse(err.dataContent as string).fp).toBeUndefined();
    // The connection stays, and an fp of exactly 128 characters is accepted.
    c.send(c2s('u1', fpOf(128, 'g')));
    expect((await c.nextOfType(4)).dataContent).toBe(fpOf(128, 'g'));
    expect(seen).toEqual([fpOf(128, 'g'), `on ${fpOf(128, 'g')}`]);
  });

  it('refuses a push whose fp is over 128 characters (its ACK would be refused), in the library and the admin API', async () => {
    const { server } = await setup();
    await expect(server.sendToUser('u1', 'x', { fp: fpOf(129) })).rejects.toThrow(RangeError);
    expect((await admin(server.ports.http!, 'POST', '/api/send', { to: 'u1', content: 'x', fp: fpOf(129) })).status).toBe(413);
    expect(await server.sendToUser('u1', 'x', { fp: fpOf(128) })).toEqual({ fp: fpOf(128), status: 'stored' });
  });

  it('refuses a C2C fp and an ACK fp of 129 characters with error 320', async () => {
    const { ws, server } = await setup();
    const a = await ws();
    await login(a, 'a');
    a.send(dataFrame('a', 'b', 'x', fpOf(129)));
    expect(errorOf(await a.nextOfType(52)).errorCode).toBe(ServerErrorCode.FP_TOO_LONG);
    a.send(ackFrame('a', 'b', fpOf(129)));
    expect(errorOf(await a.nextOfType(52)).errorCode).toBe(ServerErrorCode.FP_TOO_LONG);
    expect(server.metrics().offlinePending).toBe(0);
    expect(await a.quiet(50)).toEqual([]);
  });
});

describe('size check before any bookkeeping', () => {
  it('refuses a C2S frame over maxMessageBytes with error 311 (fp and limit), before the hook', async () => {
    const seen: Frame[] = [];
    const { ws } = await setup({ maxMessageBytes: 1000, hooks: { beforeC2S: (m) => void seen.push(m as unknown as Frame) } });
    const c = await ws();
    await login(c, 'u1');
    c.send(c2s('u1', 'fp-big', 'x'.repeat(1000)));
    const body = JSON.parse((await c.nextOfType(52)).dataContent as string);
    expect(body).toMatchObject({ errorCode: ServerErrorCode.FRAME_TOO_LARGE, fp: 'fp-big', limit: 1000 });
    expect(seen).toEqual([]);
    // A frame just under the limit passes.
    const small = c2s('u1', 'fp-ok', '');
    const room = 1000 - Buffer.byteLength(JSON.stringify({ bridge: false, ...small, typeu: -1, sm: -1 }));
    c.send(c2s('u1', 'fp-ok', 'y'.repeat(room - 10)));
    expect((await c.nextOfType(4)).dataContent).toBe('fp-ok');
  });
});

describe('C2S de-duplication window', () => {
  it('is bounded in bytes: past maxBytes the oldest fp is forgotten, the newest still recognised', async () => {
    const calls: string[] = [];
    // Each key is (user "u1", a 100-character fp): charged 64 + 2 * 104 = 272 bytes, so 10 fit in 2720.
    const { ws } = await setup({ dedup: { maxBytes: 2720 }, hooks: { onC2S: (m) => void calls.push(m.fp as string) } });
    const c = await ws();
    await login(c, 'u1');
    const fp = (i: number) => String(i).padStart(100, '0');
    for (let i = 0; i < 11; i++) {
      c.send(c2s('u1', fp(i)));
      await c.nextOfType(4);
    }
    c.send(c2s('u1', fp(10)));
    await c.nextOfType(4);
    c.send(c2s('u1', fp(1)));
    await c.nextOfType(4);
    c.send(c2s('u1', fp(0)));
    await c.nextOfType(4);
    expect(calls).toEqual([...Array.from({ length: 11 }, (_, i) => fp(i)), fp(0)]);
  });

  it('unit: charges each key and evicts by bytes and by entries', () => {
    const d = new DedupWindow(600_000, 100, 64 * 3 + 2 * 3);
    for (const k of ['a', 'b', 'c']) expect(d.checkAndAdd(k, 1)).toBe(false);
    expect(d.bytes).toBe(3 * 66);
    expect(d.checkAndAdd('d', 1)).toBe(false);
    expect(d.size).toBe(3);
    expect(d.checkAndAdd('a', 1)).toBe(false);
    expect(d.checkAndAdd('d', 1)).toBe(true);
  });
});

describe('frames waiting behind a slow hook', () => {
  it('are bounded in bytes per connection: error 322, then close', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { ws } = await setup({ maxQueuedBytes: 20_000, hooks: { beforeC2S: () => gate.then(() => true) } });
    const c = await ws();
    await login(c, 'u1');
    for (let i = 0; i < 6; i++) c.send(c2s('u1', `fp-q${i}`, 'z'.repeat(4000)));
    expect(errorOf(await c.nextOfType(52)).errorCode).toBe(ServerErrorCode.INPUT_BACKLOG);
    await c.closed;
    release();
  });
});

describe('the QoS table (messages waiting for an ACK)', () => {
  it('is bounded in entries: a message to an online receiver beyond it gets error 321 and no ACK, and is not relayed', async () => {
    const { ws, server } = await setup({ qos: { maxEntries: 2 } });
    const a = await ws();
    const b = await ws();
    await login(a, 'a');
    await login(b, 'b');
    for (const fp of ['q1', 'q2']) {
      a.send(dataFrame('a', 'b', fp, fp));
      expect((await a.nextOfType(4)).dataContent).toBe(fp);
      expect((await b.nextOfType(2)).fp).toBe(fp);
    }
    a.send(dataFrame('a', 'b', 'q3', 'q3'));
    const body = JSON.parse((await a.nextOfType(52)).dataContent as string);
    expect(body).toMatchObject({ errorCode: ServerErrorCode.SERVER_BUSY, fp: 'q3' });
    expect(await b.quiet(100)).toEqual([]);
    expect(await server.sendToUser('b', 'push', { fp: 'p1' })).toEqual({ fp: 'p1', status: 'busy' });
    expect(server.metrics().offlinePending).toBe(2);
    // An ACK makes room again; the refused fp can be sent anew (it was not remembered as a duplicate).
    b.send(ackFrame('b', 'a', 'q1'));
    await expect.poll(() => server.metrics().offlinePending).toBe(1);
    a.send(dataFrame('a', 'b', 'q3', 'q3'));
    expect((await a.nextOfType(4)).dataContent).toBe('q3');
    expect((await b.nextOfType(2)).fp).toBe('q3');
  });

  it('is bounded in bytes', async () => {
    const { ws } = await setup({ qos: { maxBytes: 2600 } });
    const a = await ws();
    const b = await ws();
    await login(a, 'a');
    await login(b, 'b');
    a.send(dataFrame('a', 'b', 'x'.repeat(1200), 'big1'));
    expect((await a.nextOfType(4)).dataContent).toBe('big1');
    a.send(dataFrame('a', 'b', 'x'.repeat(1200), 'big2'));
    expect(JSON.parse((await a.nextOfType(52)).dataContent as string)).toMatchObject({ errorCode: ServerErrorCode.SERVER_BUSY, fp: 'big2' });
    // A receiver that is offline is not tracked, so its messages are stored whatever the table holds.
    a.send(dataFrame('a', 'nobody', 'x'.repeat(1200), 'big3'));
    expect((await a.nextOfType(4)).dataContent).toBe('big3');
  });
});
