import { describe, expect, it } from 'vitest';
import type { LocalSessions } from '../../server/src/local-sessions';
import type { QosSendDaemon } from '../../server/src/qos-s2c';
import { forwardReceipt } from '../../server/src/receipts';
import { LocalRouting } from '../../server/src/routing-local';
import type { SessionIo } from '../../server/src/session-io';
import { Session, type Link } from '../../server/src/session';
import type { Protocal } from '../../src/protocol';

/** Alice's session (asking for receipts with `caps`) behind a LocalRouting whose writes succeed while `writes` says so. */
function world(caps: number) {
  const link: Link = { transport: 'ws', remote: '127.0.0.1', write: () => true, close: () => undefined };
  const alice = new Session(link, null, 'test');
  alice.userId = 'alice';
  alice.caps = caps;
  const written: Protocal[] = [];
  const state = { writes: true };
  const io = { send: (_s: Session, p: Protocal) => (written.push(p), state.writes) } as unknown as SessionIo;
  const sessions = { current: (uid: string) => (uid === 'alice' ? alice : undefined) } as unknown as LocalSessions;
  const routing = new LocalRouting(sessions, io, {} as QosSendDaemon);
  const kept: string[] = [];
  const ctx = { routing, receipts: { add: (sender: string, receiver: string, fp: string) => void kept.push(`${sender}<-${receiver}:${fp}`) } };
  return { routing, ctx, alice, written, state, kept };
}

describe('LocalRouting.sendReceipt', () => {
  it('writes a receipt to a session that asked, and leaves one it could not write to the caller, who keeps it', () => {
    const { routing, ctx, written, state, kept } = world(1);
    expect(routing.sendReceipt('alice', 'bob', 'f1', 1)).toBe(true);
    expect(written.map((p) => [p.type, p.to, p.from])).toEqual([[60, 'alice', 'bob']]);
    state.writes = false;
    expect(routing.sendReceipt('alice', 'bob', 'f2', 2)).toBe(false);
    void forwardReceipt(ctx as never, 'alice', 'bob', 'f3', 3);
    expect(kept).toEqual(['alice<-bob:f3']);
  });

  it('drops it for a session that did not ask (a MobileIMSDK client never sees type 60), and answers false for no session', () => {
    const { routing, written, alice } = world(0);
    expect(routing.sendReceipt('alice', 'bob', 'f1', 1)).toBe(true);
    expect(written).toEqual([]);
    expect(routing.sendReceipt('carol', 'bob', 'f1', 1)).toBe(false);
    alice.closed = true;
    expect(routing.sendReceipt('alice', 'bob', 'f1', 1)).toBe(false);
  });
});
