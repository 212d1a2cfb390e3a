import { afterEach, describe, expect, it } from 'vitest';
import type { OfflineStore } from '../../server/src/index';
import { SqliteOfflineStore, ServerErrorCode } from '../../server/src/index';
import { admin, dataFrame, errorOf, login, useServers, type WsClient } from './helpers';

const { setup } = useServers();
const stores: SqliteOfflineStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

/** Settles with the promise's outcome, or 'pending' if it has not settled within `ms`. */
async function within<T>(p: Promise<T>, ms = 1000): Promise<T | 'pending'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const pending = new Promise<'pending'>((r) => (timer = setTimeout(() => r('pending'), ms)));
  try {
    return await Promise.race([p, pending]);
  } finally {
    clearTimeout(timer);
  }
}

describe('S2C push arguments', () => {
  it('refuses an empty fp instead of waiting forever for an ACK that cannot come', async () => {
    const { server, ws } = await setup();
    const c = await ws();
    await login(c, 'u1');
    const outcome = await within(server.sendToUser('u1', 'x', { fp: '' }).then(
      () => 'resolved',
      (err: Error) => err.name,
    ));
    expect(outcome).toBe('TypeError');
    const viaAdmin = await within(admin(server.ports.http!, 'POST', '/api/send', { to: 'u1', content: 'x', fp: '' }).then((r) => r.status));
    expect(viaAdmin).toBe(400);
  });

  it('refuses a typeu that is not an integer (Java clients cannot parse it)', async () => {
    const { server } = await setup();
    await expect(server.sendToUser('u1', 'x', { typeu: 1.5 })).rejects.toThrow(TypeError);
    expect((await admin(server.ports.http!, 'POST', '/api/send', { to: 'u1', content: 'x', typeu: 1.5 })).status).toBe(400);
    expect((await admin(server.ports.http!, 'POST', '/api/kick', { userId: 'u1', code: 2.5 })).status).toBe(400);
  });
});

/** An in-memory store whose puts write at once but report back only when `release` is called. */
function gatedStore(writeFirst: boolean) {
  const inner = new SqliteOfflineStore(null);
  stores.push(inner);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let putStarted!: () => void;
  const putCalled = new Promise<void>((r) => (putStarted = r));
  const store: OfflineStore = {
    async put(to, from, fp, frame) {
      putStarted();
      const inserted = writeFirst ? await inner.put(to, from, fp, frame) : undefined;
      await gate;
      return inserted ?? inner.put(to, from, fp, frame);
    },
    list: (to, after, limit) => inner.list(to, after, limit),
    remove: (to, from, fp) => inner.remove(to, from, fp),
    count: (to) => inner.count(to),
    total: () => inner.total(),
    close: () => undefined,
  };
  return { store, release, putCalled };
}

describe('delivery racing a login', () => {
  /** A sends `fp` to the offline B; B logs in while the store is writing it; `release` lets the write finish. */
  async function raceLogin(writeFirst: boolean, fp: string) {
    const { store, release, putCalled } = gatedStore(writeFirst);
    const { ws } = await setup({ store });
    const a = await ws();
    await login(a, 'a');
    a.send(dataFrame('a', 'b', 'sent while b logs in', fp));
    await putCalled;
    const b = await ws();
    await login(b, 'b');
    return { a, b, release };
  }

  it('writes a message live when its receiver logged in while the store was still writing it', async () => {
    const { a, b, release } = await raceLogin(false, 'race-1');
    release();
    expect((await a.nextOfType(4)).dataContent).toBe('race-1');
    expect((await b.nextOfType(2, 1500)).fp).toBe('race-1');
  });

  it('does not write it twice when the login replay already handed it over', async () => {
    const { a, b, release } = await raceLogin(true, 'race-2');
    expect((await b.nextOfType(2)).fp).toBe('race-2');
    release();
    expect((await a.nextOfType(4)).dataContent).toBe('race-2');
    expect((await b.quiet(200)).filter((f) => f.type === 2)).toEqual([]);
  });
});

describe('UDP against spoofed sources', () => {
  it('does not answer, or open a session for, garbage from a peer it has never heard from', async () => {
    const { server, udp } = await setup();
    const u = await udp();
    u.sendText('not json');
    u.sendBytes(Buffer.from([0xff, 0xfe, 0x00]));
    expect(await u.quiet(200)).toEqual([]);
    expect(server.metrics().connections.udp).toBe(0);
    expect(server.metrics().badInput).toBe(2);
  });

  it('makes room for a new peer by dropping the least recently heard: not logged in, then unproven, never refusing', async () => {
    const { server, udp } = await setup({ udp: { port: 0, host: '127.0.0.1', maxSessions: 3 } });
    const member = await udp();
    await login(member, 'member');
    for (let i = 0; i < 2; i++) member.send(keepAlive('member'));
    await member.nextOfType(51);
    await member.nextOfType(51);
    const squatters = [await udp(), await udp()];
    for (const s of squatters) s.send(echo('hello'));
    for (const s of squatters) await s.nextOfType(53);
    const newcomer = await udp();
    expect((await login(newcomer, 'newcomer')).code).toBe(0);
    const late = await udp();
    expect((await login(late, 'late')).code).toBe(0);
    expect(server.onlineUsers().sort()).toEqual(['late', 'member', 'newcomer']);
    const pushy = await udp();
    pushy.send(echo('full'));
    expect((await pushy.nextOfType(53)).dataContent).toBe('full');
    expect(server.onlineUsers().sort()).toEqual(['late', 'member']);
    member.send(keepAlive('member'));
    expect((await member.nextOfType(51)).to).toBe('member');
  });

  it('caps the replies to peers that have not logged in, so forged sources cannot turn it into an amplifier', async () => {
    const { udp } = await setup({ udp: { port: 0, host: '127.0.0.1', unauthRepliesPerSecond: 3 } });
    const peers = [await udp(), await udp(), await udp(), await udp(), await udp()];
    for (const p of peers) p.send(echo('x'));
    const answered = (await Promise.all(peers.map((p) => p.quiet(200)))).filter((frames) => frames.length > 0);
    expect(answered).toHaveLength(3);
    const member = await udp();
    await new Promise((r) => setTimeout(r, 400));
    expect((await login(member, 'member')).code).toBe(0);
    for (let i = 0; i < 5; i++) member.send(keepAlive('member'));
    await member.quiet(200);
    expect(member.frames.filter((f) => f.type === 51)).toHaveLength(5);
  });

  it('keeps a peer rate-limited after its session ends, instead of granting a fresh burst', async () => {
    const { udp } = await setup({ rateLimit: { burst: 5, perSecond: 1 } });
    const u = await udp();
    for (let i = 0; i < 6; i++) u.send(echo(`e${i}`));
    expect(errorOf(await u.nextOfType(52)).errorCode).toBe(ServerErrorCode.RATE_LIMITED);
    await u.quiet(100);
    for (let i = 0; i < 5; i++) u.send(echo(`again${i}`));
    const after = await u.quiet(200);
    expect(after.filter((f) => f.type === 53)).toEqual([]);
  });
});

/** A keep-alive as a MobileIMSDK client writes it. */
function keepAlive(userId: string) {
  return { type: 1, dataContent: '{}', from: userId, to: '0' };
}

/** An echo request padded with a key the reply leaves out, so the reply is no larger than the request. */
function echo(content: string) {
  return { type: 5, dataContent: content, pad: 'p'.repeat(200) };
}

describe('verifyLogin answers that are not a login code', () => {
  it('refuses the login (code 318) instead of letting it in when the hook returns something else', async () => {
    const answers: unknown[] = ['no', null, undefined, 1.5, Number.NaN, {}, 2 ** 31];
    let next = 0;
    const { ws } = await setup({ hooks: { verifyLogin: () => answers[next++] as number } });
    for (const answer of answers) {
      const c = await ws();
      const r = await login(c, `user-${String(answer)}`);
      expect(r, `verifyLogin returned ${String(answer)}`).toEqual({ code: ServerErrorCode.SERVER_ERROR, firstLoginTime: -1 });
      await c.closed;
    }
  });
});

describe('before hooks that rewrite the fingerprint', () => {
  it('still ACK the sender with the fp it sent, and de-duplicate C2S by it', async () => {
    const seen: string[] = [];
    const { ws } = await setup({
      hooks: {
        beforeC2C: (m) => ({ ...m, fp: `srv-${m.fp}` }),
        beforeC2S: (m) => ({ ...m, fp: `srv-${m.fp}-${seen.length}` }),
        onC2S: (m) => void seen.push(m.fp ?? ''),
      },
    });
    const a = await ws();
    const b = await ws();
    await login(a, 'a');
    await login(b, 'b');
    a.send(dataFrame('a', 'b', 'hi', 'fp-c2c'));
    expect((await a.nextOfType(4)).dataContent).toBe('fp-c2c');
    expect((await b.nextOfType(2)).fp).toBe('srv-fp-c2c');
    a.send(dataFrame('a', '0', 'to server', 'fp-c2s'));
    expect((await a.nextOfType(4)).dataContent).toBe('fp-c2s');
    a.send(dataFrame('a', '0', 'to server', 'fp-c2s'));
    expect((await a.nextOfType(4)).dataContent).toBe('fp-c2s');
    await a.quiet(100);
    expect(seen).toEqual(['srv-fp-c2s-0']);
  });
});

describe('admin API and library edges', () => {
  it('answers 405 with Allow for a known route called with the wrong method', async () => {
    const { server } = await setup();
    const res = await fetch(`http://127.0.0.1:${server.ports.http!}/api/send`, { method: 'PUT', headers: { authorization: 'Bearer test-admin-token' } });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    expect((await admin(server.ports.http!, 'GET', '/api/kick')).status).toBe(405);
    expect((await admin(server.ports.http!, 'GET', '/api/nothing')).status).toBe(404);
  });

  it('still answers metrics() after close() instead of throwing on the closed store', async () => {
    const { server } = await setup();
    await server.close();
    expect(server.metrics().connections.total).toBe(0);
  });
});

describe('numbers a Java client cannot parse', () => {
  it('refuses to relay a typeu outside int32 or an sm outside the safe integers (error 317), so no receiver is poisoned', async () => {
    const { server, ws } = await setup();
    const a = await ws();
    await login(a, 'a');
    const poisons = [
      { ...dataFrame('a', 'b', 'x', 'fp-big-typeu'), typeu: 2147483648 },
      { ...dataFrame('a', 'b', 'x', 'fp-small-typeu'), typeu: -2147483649 },
      { ...dataFrame('a', 'b', 'x', 'fp-big-sm'), sm: 2 ** 53 },
      { ...dataFrame('a', '0', 'x', 'fp-c2s-sm'), sm: 1e300 },
    ];
    for (const p of poisons) {
      a.send(p);
      expect(errorOf(await a.nextOfType(52)).errorCode).toBe(ServerErrorCode.BAD_MESSAGE);
    }
    a.send({ ...dataFrame('a', 'b', 'edge', 'fp-edge'), typeu: -2147483648, sm: 2 ** 53 - 1 });
    expect((await a.nextOfType(4)).dataContent).toBe('fp-edge');
    expect((await a.quiet(100)).filter((f) => f.type === 4)).toEqual([]);
    expect(server.metrics().offlineStored).toBe(1);
  });
});

describe('messages too large for a TCP receiver', () => {
  it('refuses (311, connection kept, no ACK) a message a TCP client could not read, instead of storing it for endless replays', async () => {
    const { server, ws, tcp } = await setup();
    const a = await ws();
    await login(a, 'a');
    const big = 'x'.repeat(6200);
    a.send(dataFrame('a', 'b', big, 'fp-big'));
    expect(errorOf(await a.nextOfType(52)).errorCode).toBe(ServerErrorCode.FRAME_TOO_LARGE);
    expect((await a.quiet(100)).filter((f) => f.type === 4)).toEqual([]);
    await expect(server.sendToUser('b', big)).rejects.toThrow(RangeError);
    expect((await admin(server.ports.http!, 'POST', '/api/send', { to: 'b', content: big })).status).toBe(413);
    expect((await admin(server.ports.http!, 'POST', '/api/send', { to: '0', content: 'to the server itself' })).status).toBe(400);
    const b = await tcp();
    await login(b, 'b');
    a.send(dataFrame('a', 'b', 'small', 'fp-small'));
    expect((await b.nextOfType(2)).fp).toBe('fp-small');
    expect(b.closeInfo).toBe(null);
  });

  it('sizes a message with the from the server fills in: one that only fits without it is refused (311), one that fits with it is relayed', async () => {
    const { ws, tcp } = await setup();
    const a = await ws();
    await login(a, 'a');
    const b = await tcp();
    await login(b, 'b');
    // No from: the server fills in "a", which adds ,"from":"a" (11 bytes) to what the receiver reads.
    const sized = (fp: string, bytes: number) => {
      const frame = { ...dataFrame('a', 'b', '', fp), from: undefined };
      return { ...frame, dataContent: 'x'.repeat(bytes - Buffer.byteLength(JSON.stringify(frame))) };
    };
    a.send(sized('fp-no-room', 6144));
    const refusal = errorOf(await a.nextOfType(52));
    expect(refusal).toMatchObject({ errorCode: ServerErrorCode.FRAME_TOO_LARGE, fp: 'fp-no-room' });
    a.send(sized('fp-room', 6144 - 11));
    const got = await b.nextOfType(2);
    expect(got.fp).toBe('fp-room');
    expect(Buffer.byteLength(b.texts[b.texts.length - 1])).toBe(6144);
    expect((await a.nextOfType(4)).dataContent).toBe('fp-room');
    expect((await a.quiet(100)).filter((f) => f.type === 4 && f.dataContent === 'fp-no-room')).toEqual([]);
  });

  it('allows WebSocket-sized messages when no TCP gateway runs', async () => {
    const { ws } = await setup({ tcp: false });
    const a = await ws();
    const b = await ws();
    await login(a, 'a');
    await login(b, 'b');
    a.send(dataFrame('a', 'b', 'x'.repeat(20000), 'fp-20k'));
    expect((await b.nextOfType(2)).fp).toBe('fp-20k');
  });
});

describe('a session the server ends', () => {
  it('leaves the online list and fires onLogout at once, not when a peer that stopped reading finally lets the socket go', async () => {
    const logouts: Array<[string, number]> = [];
    const { server, ws } = await setup({ hooks: { onLogout: (u, code) => void logouts.push([u, code]) } });
    const c = await ws();
    await login(c, 'stalled');
    (c as WsClient).ws.pause();
    expect(await server.kick('stalled', 2, 'bye')).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(server.onlineUsers()).toEqual([]);
    expect(logouts).toEqual([['stalled', 2]]);
    expect(await server.kick('stalled')).toBe(false);
  });
});

describe('user ids and fingerprints with separators in them', () => {
  it('do not let one user ACK away a push waiting for another user', async () => {
    const { server, ws } = await setup();
    const victim = await ws();
    const other = await ws();
    await login(victim, 'x\ny');
    await login(other, 'x');
    const push = server.sendToUser('x\ny', 'for the victim', { fp: 'z' });
    expect((await victim.nextOfType(2)).fp).toBe('z');
    other.send({ type: 4, dataContent: 'y\nz', from: 'x', to: '0' });
    expect(await within(push, 300)).toBe('pending');
    victim.send({ type: 4, dataContent: 'z', from: 'x\ny', to: '0' });
    expect(await push).toEqual({ fp: 'z', status: 'delivered' });
  });
});
