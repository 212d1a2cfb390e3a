// The tab-shared client over Node's own BroadcastChannel (real structured cloning and delivery, real
// timers), with the in-memory Web Locks: the wire format survives a real channel implementation.
import { describe, expect, it } from 'vitest';
import { MsgType } from '../../src/protocol';
import { createTabSharedClient, type TabSharedClient } from '../../src/tab-shared';
import { createFakeAdapter } from '../helpers/fake-adapter';
import { createFakeOrigin } from '../helpers/fake-tabs';
import { seededRandom } from '../helpers/random';

/** Waits until `check` holds (real timers), or fails after 2 s. */
async function until(check: () => boolean): Promise<void> {
  const end = Date.now() + 2000;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('tab-shared over Node\'s BroadcastChannel', () => {
  it('a follower joins, sends with its fp, and gets the leader\'s messages and errors intact', async () => {
    const origin = createFakeOrigin();
    const make = (seed: number) => {
      const fake = createFakeAdapter();
      const t = origin.tab();
      const client = createTabSharedClient({
        url: 'ws://test/websocket',
        adapter: fake.adapter,
        random: seededRandom(seed),
        locks: t.locks,
        BroadcastChannel: BroadcastChannel as never,
      }) as TabSharedClient;
      return { client, fake };
    };
    const a = make(1);
    const b = make(2);
    try {
      const first = a.client.login({ userId: 'alice' });
      await until(() => a.fake.sockets.length === 1);
      a.fake.last.open();
      a.fake.last.loginResponse(0, 42);
      await first;
      await expect(b.client.login({ userId: 'alice' })).resolves.toEqual({ userId: 'alice', firstLoginTime: 42 });

      const got: string[] = [];
      b.client.on('message', (m) => got.push(m.content));
      a.fake.last.deliver({ type: MsgType.DATA, from: 'bob', to: 'alice', dataContent: 'over a real channel', fp: 'f1', QoS: true });
      await until(() => got.length === 1);

      const sent = b.client.send('bob', 'from b');
      await until(() => a.fake.last.sentOfType(MsgType.DATA).length === 1);
      const fp = a.fake.last.sentOfType(MsgType.DATA)[0].fp as string;
      a.fake.last.deliver({ type: MsgType.ACK, dataContent: fp });
      await expect(sent).resolves.toEqual({ fp, to: 'bob', acked: true });

      const errors: unknown[] = [];
      b.client.on('error', (e) => errors.push(e));
      a.fake.last.deliver({ type: MsgType.ERROR, dataContent: JSON.stringify({ errorCode: 320, errorMsg: 'slow down' }) });
      await until(() => errors.length === 1);
      expect(errors[0]).toMatchObject({ name: 'IMError', code: 'SERVER_ERROR', serverCode: 320 });
    } finally {
      a.client.destroy();
      b.client.destroy();
    }
  });
});
