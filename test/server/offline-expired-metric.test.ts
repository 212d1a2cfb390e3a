import { describe, expect, it } from 'vitest';
import { admin, dataFrame, login, useServers } from './helpers';

const { setup } = useServers();

/** The value of one Prometheus counter in the admin API's /metrics text. */
async function counter(port: number, name: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const line = (await res.text()).split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1]);
}

describe('stored messages that expire unACKed', () => {
  it('are counted in mobileimsdk_offline_expired_total', async () => {
    const { server, ws } = await setup({ dataDir: null, messageTtlMs: 50, udp: false });
    const alice = await ws();
    await login(alice, 'alice');
    for (let i = 0; i < 3; i++) {
      alice.send(dataFrame('alice', 'offline-bob', `m${i}`, `fp-exp-${i}`));
      expect((await alice.nextOfType(4)).dataContent).toBe(`fp-exp-${i}`);
    }
    const port = server.ports.http as number;
    // The sweeper runs every ttl (50 ms); wait until the rows are gone from the store.
    for (let i = 0; i < 100 && (await admin(port, 'GET', '/api/metrics')).json.offlinePending > 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect((await admin(port, 'GET', '/api/metrics')).json.offlinePending).toBe(0);
    expect(await counter(port, 'mobileimsdk_offline_expired_total')).toBe(3);
  });
});
