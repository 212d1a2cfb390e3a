import { describe, expect, it } from 'vitest';
import { ackFrame, dataFrame, login, useServers } from './helpers';

/**
 * A burst of QoS C2C messages from one connection, whose store writes overlap (they share a commit):
 * the receiver still gets them in the order they were sent, each once, and the sender's ACKs come in
 * that order too when each put commits in its turn; a retransmission inside the burst is ACKed and not relayed again, and a frame that may
 * not overlap (non-QoS, a logout) comes after everything sent before it.
 */

const { setup } = useServers();

describe('overlapping store writes of one connection', () => {
  // With storeHoldMs 0 every put commits in its turn, in order; with the default hold a message the
  // receiver ACKs before the commit is settled (and ACKed to the sender) at once, ahead of earlier ones.
  for (const storeHoldMs of [0, 10]) {
    it(`keep the order, exactly once, at the receiver, and ACK each message (storeHoldMs ${storeHoldMs})`, async () => {
      const { tcp, ws } = await setup({ rateLimit: false, storeHoldMs });
      const alice = await tcp();
      const bob = await ws();
      await login(alice, 'alice');
      await login(bob, 'bob');
      const fps = Array.from({ length: 40 }, (_, i) => `m${i}`);
      // One write: the frames arrive together and are handled in one turn.
      const burst = [...fps.slice(0, 20), 'm5', ...fps.slice(20)].map((fp) => dataFrame('alice', 'bob', `text ${fp}`, fp));
      burst.push(dataFrame('alice', 'bob', 'no qos', null));
      alice.sendMany(burst);
      const got: string[] = [];
      while (got.length < 41) {
        const f = await bob.nextOfType(2);
        got.push((f.fp as string | undefined) ?? String(f.dataContent));
        if (f.fp) bob.send(ackFrame('bob', 'alice', f.fp as string));
      }
      expect(got).toEqual([...fps, 'no qos']);
      const acks: string[] = [];
      while (acks.length < 41) acks.push((await alice.nextOfType(4)).dataContent as string);
      const sent = [...fps.slice(0, 20), 'm5', ...fps.slice(20)];
      if (storeHoldMs === 0) expect(acks).toEqual(sent);
      else expect([...acks].sort()).toEqual([...sent].sort());
      expect((await bob.quiet(300)).filter((f) => f.type === 2)).toEqual([]);
      expect((await alice.quiet(100)).filter((f) => f.type === 4)).toEqual([]);
    });
  }
});
