import { describe, expect, it } from 'vitest';
import { ServerErrorCode } from '../../server/src/index';
import { FIRST_LOGIN_TIME_SKEW_MS } from '../../server/src/login';
import { errorOf, loginFrame, useServers, type RawClient } from './helpers';

const { setup } = useServers();

/** Logs in with a raw `firstLoginTime` value and returns the raw text of the type-50 answer's payload. */
async function echoOf(c: RawClient, userId: string, firstLoginTime: unknown): Promise<string> {
  c.send(loginFrame(userId, firstLoginTime as number));
  return (await c.nextOfType(50)).dataContent as string;
}

/** Waits (a few ms at most) until the server's clock has moved past `ms`, so the next first login gets a later time. */
async function clockPast(ms: number): Promise<void> {
  while (Date.now() <= ms) await new Promise((r) => setTimeout(r, 1));
}

describe('firstLoginTime from the client', () => {
  it('is echoed as a Java long in plain digits: a value that is not a past safe integer counts as a first login', async () => {
    const { ws } = await setup({ tcp: false, udp: false });
    const before = Date.now();
    for (const claim of [1e300, 9e15, 2 ** 53, -5, Date.now() + FIRST_LOGIN_TIME_SKEW_MS + 1000]) {
      const text = await echoOf(await ws(), `u-${claim}`, claim);
      expect(text, `claimed ${claim}`).toMatch(/^\{"code":0,"firstLoginTime":\d{13}\}$/);
      const echoed = (JSON.parse(text) as { firstLoginTime: number }).firstLoginTime;
      expect(echoed).toBeGreaterThanOrEqual(before);
      expect(echoed).toBeLessThanOrEqual(Date.now());
    }
  });

  it('keeps a value the server could have handed out: in the past, or at most the allowed skew ahead', async () => {
    const { ws } = await setup({ tcp: false, udp: false });
    const past = Date.now() - 86400000;
    expect(await echoOf(await ws(), 'past', past)).toBe(`{"code":0,"firstLoginTime":${past}}`);
    const ahead = Date.now() + FIRST_LOGIN_TIME_SKEW_MS - 1000;
    expect(await echoOf(await ws(), 'ahead', ahead)).toBe(`{"code":0,"firstLoginTime":${ahead}}`);
    // Gson reads a numeric string into a long; so does the server.
    expect(await echoOf(await ws(), 'string', String(past))).toBe(`{"code":0,"firstLoginTime":${past}}`);
  });

  it('refuses a login whose firstLoginTime is not an integer at all (as Gson would fail on it) with error 310, echoing nothing', async () => {
    const { ws } = await setup({ tcp: false, udp: false });
    for (const claim of [1.5, 'abc']) {
      const c = await ws();
      c.send(loginFrame('u1', claim as number));
      const f = await c.nextOfType(52);
      expect(errorOf(f).errorCode).toBe(ServerErrorCode.BAD_FRAME);
      await c.closed;
      expect(c.frames.filter((x) => x.type === 50)).toEqual([]);
    }
  });

  it('does not let a login that claimed 9e15 beat the real user when it reconnects with the value it was given', async () => {
    const { server, ws } = await setup({ tcp: false, udp: false });
    const mallory = await ws();
    const given = (JSON.parse(await echoOf(mallory, 'bob', 9e15)) as { firstLoginTime: number }).firstLoginTime;
    expect(given).toBeLessThanOrEqual(Date.now());

    await clockPast(given);
    const bob = await ws();
    const bobTime = (JSON.parse(await echoOf(bob, 'bob', 0)) as { firstLoginTime: number }).firstLoginTime;
    expect(bobTime).toBeGreaterThan(given);
    expect(JSON.parse((await mallory.nextOfType(54)).dataContent as string)).toEqual({ code: 1 });

    // Mallory comes back with what she was given: an older login than bob's, so she is the stale one.
    const mallory2 = await ws();
    expect(JSON.parse(await echoOf(mallory2, 'bob', given))).toEqual({ code: 0, firstLoginTime: given });
    expect(JSON.parse((await mallory2.nextOfType(54)).dataContent as string)).toEqual({ code: 1 });
    await mallory2.closed;
    expect(await bob.quiet()).toEqual([]);
    expect(bob.closeInfo).toBeNull();

    // Bob's own reconnect with his value replaces his old socket without a kickout.
    const bob2 = await ws();
    expect(JSON.parse(await echoOf(bob2, 'bob', bobTime))).toEqual({ code: 0, firstLoginTime: bobTime });
    await bob.closed;
    expect(bob.frames.filter((f) => f.type === 54)).toEqual([]);
    expect(server.onlineUsers()).toEqual(['bob']);
    expect(await bob2.quiet()).toEqual([]);
  });
});
