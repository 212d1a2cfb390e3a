import { afterEach, describe, expect, it } from 'vitest';
import { ServerCore } from '../../server/src/core';
import { silentLogger } from '../../server/src/logger';
import type { StoredMessage } from '../../server/src/offline-store';
import { SqliteOfflineStore } from '../../server/src/sqlite-store';
import { resolveOptions } from '../../server/src/options';
import { resumeReplay } from '../../server/src/replay';
import type { Session } from '../../server/src/session';
import { LocalMessageStore } from '../../server/src/store-local';
import { stopCores } from './helpers';

/**
 * The replay of a cluster node's session, carried on by rechecks (resumeReplay, as cluster-sessions.ts
 * calls it), with a store that tells its last seq as the Redis one does: a core with that store as its
 * seam, a session on a fake link, and a listing that can be held back as a Redis round trip is.
 */

/** The SQLite store with a global last seq, and listings that answer (with what they read at once) when released. */
class SeqStore extends LocalMessageStore {
  private top = 0;
  /** Listings made so far. */
  listings = 0;
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;

  constructor(private readonly offline: SqliteOfflineStore) {
    super(offline, { c2s: { ttlMs: 60_000, max: 1000, maxBytes: 1e6 }, c2c: { ttlMs: 60_000, max: 1000, maxBytes: 1e6 } });
  }

  /** The highest seq stored so far (the users of these tests only). */
  async lastSeq(): Promise<number> {
    for (const u of ['bob', 'carol']) {
      const rows = this.offline.list(u, 0, 1000) as StoredMessage[];
      if (rows.length > 0) this.top = Math.max(this.top, rows[rows.length - 1].seq);
    }
    return this.top;
  }

  override list(to: string, afterSeq: number, limit: number): StoredMessage[] | Promise<StoredMessage[]> {
    this.listings++;
    const rows = super.list(to, afterSeq, limit);
    return this.gate ? this.gate.then(() => rows) : rows;
  }

  /** Listings from now on wait for {@link release}. */
  hold(): void {
    this.gate = new Promise((r) => (this.open = r));
  }

  release(): void {
    this.open?.();
    this.gate = null;
  }
}

const cores: ServerCore[] = [];
const offlines: SqliteOfflineStore[] = [];
afterEach(() => {
  stopCores(cores.splice(0));
  for (const o of offlines.splice(0)) o.close();
});

const frameOf = (from: string, to: string, fp: string): string => JSON.stringify({ type: 2, dataContent: `hi ${fp}`, from, to, fp, QoS: true, typeu: -1, sm: -1 });
const turns = async (n = 3): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 5));
};

/** A core on a {@link SeqStore}, and bob logged in on a fake link recording the data frames he gets. */
async function setup(): Promise<{ core: ServerCore; store: SeqStore; bob: Session; got: string[] }> {
  const offline = new SqliteOfflineStore(null, { logger: silentLogger });
  offlines.push(offline);
  const store = new SeqStore(offline);
  const core = new ServerCore(resolveOptions({ logger: silentLogger, rateLimit: false, tcp: false, udp: false }), offline, { store });
  cores.push(core);
  const got: string[] = [];
  const bob = core.open({
    transport: 'ws',
    remote: 'bob',
    write(text) {
      const f = JSON.parse(text) as { type: number; fp?: string };
      if (f.type === 2) got.push(f.fp as string);
      return true;
    },
    close() {
      core.closed(bob);
    },
  });
  core.receive(bob, JSON.stringify({ type: 0, dataContent: JSON.stringify({ loginUserId: 'bob', loginToken: 't', firstLoginTime: 0 }), from: 'bob', to: '0' }));
  await turns();
  expect(bob.userId).toBe('bob');
  return { core, store, bob, got };
}

describe('replay carried on by rechecks, with a store that tells its last seq', () => {
  it('does not end, dropping a recheck that came while its last listing was on its way: the message that recheck is about is handed over', async () => {
    const { core, store, bob, got } = await setup();
    // Other users' traffic: the store's last seq is past bob's cursor, so a recheck's replay lists.
    await store.put('carol', 'alice', 'fp-c1', frameOf('alice', 'carol', 'fp-c1'));
    store.hold();
    const before = store.listings;
    const first = resumeReplay(core.ctx, bob);
    await expect.poll(() => store.listings).toBe(before + 1);
    // Another node stores a message for bob while that listing is on its way (read before the put):
    // its notification is lost, and its recheck comes while the replay is still pumping.
    await store.put('bob', 'alice', 'fp-b1', frameOf('alice', 'bob', 'fp-b1'));
    const second = resumeReplay(core.ctx, bob);
    store.release();
    await Promise.all([first, second]);
    await turns();
    expect(got).toEqual(['fp-b1']);
  });
});
