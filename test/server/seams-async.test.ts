import { afterEach, describe, expect, it } from 'vitest';
import type { ServerSeams } from '../../server/src/context';
import { ServerCore } from '../../server/src/core';
import { silentLogger } from '../../server/src/logger';
import { SqliteOfflineStore } from '../../server/src/offline-store';
import { resolveOptions } from '../../server/src/options';
import { LocalPresence } from '../../server/src/presence-local';
import type { Session } from '../../server/src/session';
import { LocalMessageStore } from '../../server/src/store-local';
import { stopCores } from './helpers';

/**
 * The handlers take every seam as possibly asynchronous (a networked implementation answers through
 * promises). The same script runs against a core with the local implementations and against one whose
 * seams answer each call a turn later; what every connection receives must be the same.
 */

/** Every method of `impl` answered through a promise, a turn later, as a networked implementation would. */
function later<T extends object>(impl: T): T {
  return new Proxy(impl, {
    get(target, key) {
      const v = Reflect.get(target, key) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => Promise.resolve().then(() => (v as (...a: unknown[]) => unknown).apply(target, args));
    },
  });
}

const stores: SqliteOfflineStore[] = [];
const cores: ServerCore[] = [];
afterEach(() => {
  stopCores(cores.splice(0));
  for (const s of stores.splice(0)) s.close();
});

type Seams = (offline: SqliteOfflineStore) => Partial<ServerSeams>;

/** Runs the script on a fresh core; returns what each connection received, in order, without clock values. */
async function script(seams: Seams): Promise<{ log: string[]; online: string[] }> {
  const offline = new SqliteOfflineStore(null, { logger: silentLogger });
  stores.push(offline);
  const opts = resolveOptions({ logger: silentLogger, rateLimit: false, tcp: false, udp: false });
  const core = new ServerCore(opts, offline, seams(offline));
  cores.push(core);
  const log: string[] = [];
  const sessions: Session[] = [];
  const connect = (name: string): Session => {
    let s!: Session;
    s = core.open({
      transport: 'ws',
      remote: name,
      write(text) {
        const f = JSON.parse(text) as Record<string, unknown>;
        // The login response carries the server's clock: only its code is compared.
        const content = f.type === 50 ? String(JSON.parse(f.dataContent as string).code) : f.dataContent;
        log.push(`${name} <- ${String(f.type)} ${String(f.from)}>${String(f.to)} ${String(f.fp ?? '')} ${String(content)}`);
        return true;
      },
      close() {
        log.push(`${name} closed`);
        core.closed(s);
      },
    });
    sessions.push(s);
    return s;
  };
  const settle = async () => {
    for (let i = 0; i < 3; i++) {
      await Promise.all(sessions.map((s) => s.chain));
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const send = async (s: Session, frame: object) => {
    core.receive(s, JSON.stringify(frame));
    await settle();
  };
  const login = (s: Session, uid: string, firstLoginTime = 0) =>
    send(s, { type: 0, dataContent: JSON.stringify({ loginUserId: uid, loginToken: 't', firstLoginTime }), from: uid, to: '0' });
  const data = (from: string, to: string, fp: string) => ({ type: 2, dataContent: `hi ${fp}`, from, to, fp, QoS: true, typeu: -1, sm: -1 });
  const ack = (from: string, to: string, fp: string) => ({ type: 4, dataContent: fp, from, to, QoS: false });

  const alice = connect('alice');
  const bob = connect('bob');
  await login(alice, 'alice');
  await login(bob, 'bob');
  await send(alice, data('alice', 'bob', 'f1'));
  await send(alice, data('alice', 'bob', 'f1')); // a retry: ACKed again, not handed on again
  await send(bob, ack('bob', 'alice', 'f1'));
  await send(alice, data('alice', '0', 'f2'));
  await send(alice, data('alice', '0', 'f2'));
  await send(alice, data('alice', 'carol', 'f3')); // carol is offline: stored, ACKed
  const carol = connect('carol');
  await login(carol, 'carol');
  await send(carol, ack('carol', 'alice', 'f3'));
  const bob2 = connect('bob2');
  await login(bob2, 'bob'); // a first login elsewhere: the old one is kicked with code 1
  const bob3 = connect('bob3');
  await login(bob3, 'bob', 1); // older than bob2's: refused
  await send(bob2, data('bob', 'alice', 'f4'));
  await send(alice, { type: 3, dataContent: '', from: 'alice', to: '0' });
  return { log, online: core.onlineUsers() };
}

describe('handlers with asynchronous seams', () => {
  it('give every connection what the local seams give it', async () => {
    const local = await script(() => ({}));
    const asynchronous = await script((offline) => ({
      presence: later(new LocalPresence()),
      store: later(new LocalMessageStore(offline, { c2s: { ttlMs: 60_000, max: 100, maxBytes: 1e6 }, c2c: { ttlMs: 60_000, max: 100, maxBytes: 1e6 } })),
      routing: (own) => later(own),
    }));
    // The script itself: the retry and the C2S duplicate are ACKed without a second copy, the offline
    // message reaches carol at login, the second bob kicks the first, the older third is refused.
    expect(local.log.filter((l) => l.startsWith('bob <- 2 ')).length).toBe(1);
    expect(local.log.filter((l) => l.startsWith('alice <- 4 bob>alice  f1')).length).toBe(2);
    expect(local.log.filter((l) => l.startsWith('alice <- 4 0>alice  f2')).length).toBe(2);
    expect(local.log).toContain('carol <- 2 alice>carol f3 hi f3');
    expect(local.log).toContain('bob <- 54 0>bob  {"code":1}');
    expect(local.log).toContain('bob3 <- 54 0>bob  {"code":1}');
    expect(local.log).toContain('alice <- 2 bob>alice f4 hi f4');
    expect(local.online).toEqual(['bob', 'carol']);
    expect(asynchronous.log).toEqual(local.log);
    expect(asynchronous.online).toEqual(local.online);
  });
});
