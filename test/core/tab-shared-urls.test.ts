/** The tab-shared client passes a list of URLs through to the leader's IMClient, which walks it as an IMClient does. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createTabSharedClient, TabSharedClient } from '../../src/tab-shared';
import { createFakeAdapter } from '../helpers/fake-adapter';
import { createFakeOrigin } from '../helpers/fake-tabs';
import { seededRandom } from '../helpers/random';
import { useFakeTimersPerTest } from '../helpers/setup';

useFakeTimersPerTest();

const URLS = ['ws://a/websocket', 'ws://b/websocket'];
const flush = () => vi.advanceTimersByTimeAsync(0);
let all: TabSharedClient[] = [];

afterEach(async () => {
  for (const c of all) c.destroy();
  all = [];
  await flush();
});

describe('tab-shared with url as a list', () => {
  it('the leader connects to the entry its random() picks, moves on after a failed connect, and a follower joins', async () => {
    const origin = createFakeOrigin();
    // The tab id and the probe client draw from random() too, so the leader's tab draws a constant: 0.75
    // starts a list of two at its second entry.
    const tabs = [0, 1].map((i) => {
      const tab = origin.tab();
      const fake = createFakeAdapter();
      const client = createTabSharedClient({
        url: URLS,
        adapter: fake.adapter,
        random: i === 0 ? () => 0.75 : seededRandom(99),
        locks: tab.locks,
        BroadcastChannel: tab.BroadcastChannel,
      }) as TabSharedClient;
      all.push(client);
      return { fake, client };
    });
    const [leader, follower] = tabs;
    const login = leader.client.login({ userId: 'alice', token: 't' });
    await flush();
    expect(leader.client.isLeader).toBe(true);
    expect(leader.fake.last.url).toBe(URLS[1]);
    leader.fake.last.open();
    leader.fake.last.loginResponse(0, 1700000000123);
    await login;
    await expect(follower.client.login({ userId: 'alice', token: 't' })).resolves.toMatchObject({ userId: 'alice' });
    expect(follower.fake.sockets).toHaveLength(0);
    // Lost while online: the same URL first; that attempt fails, so the next goes to the first entry.
    leader.fake.last.serverClose(1006, '');
    leader.client.reconnectNow();
    expect(leader.fake.last.url).toBe(URLS[1]);
    leader.fake.last.serverClose(1006, '');
    leader.client.reconnectNow();
    expect(leader.fake.last.url).toBe(URLS[0]);
    await flush();
    expect(follower.client.state).toBe(leader.client.state);
  });

  it("the leader's client walks the list in its own random order, as an IMClient does", async () => {
    const tab = createFakeOrigin().tab();
    const fake = createFakeAdapter();
    const list = ['ws://a/websocket', 'ws://b/websocket', 'ws://c/websocket'];
    // A constant 0.75 draws c first (index 2 of 3), then b (index 1 of the 2 left): the walk is c, b, a, not
    // the list order from c (c, a, b).
    const client = createTabSharedClient({ url: list, adapter: fake.adapter, random: () => 0.75, locks: tab.locks, BroadcastChannel: tab.BroadcastChannel });
    all.push(client as TabSharedClient);
    const login = client.login({ userId: 'alice', token: 't' });
    await flush();
    expect(fake.last.url).toBe('ws://c/websocket');
    fake.last.open();
    fake.last.loginResponse(0, 1700000000123);
    await login;
    fake.last.serverClose(1006, '');
    client.reconnectNow();
    const tried = [fake.last.url];
    for (let i = 0; i < 3; i++) {
      fake.last.serverClose(1006, '');
      client.reconnectNow();
      tried.push(fake.last.url);
    }
    expect(tried).toEqual(['ws://c/websocket', 'ws://b/websocket', 'ws://a/websocket', 'ws://c/websocket']);
  });

  it('refuses an empty list or a bad entry with a TypeError naming options.url', () => {
    const tab = createFakeOrigin().tab();
    const base = { adapter: createFakeAdapter().adapter, locks: tab.locks, BroadcastChannel: tab.BroadcastChannel };
    expect(() => createTabSharedClient({ ...base, url: [] })).toThrow(/options\.url/);
    expect(() => createTabSharedClient({ ...base, url: ['ws://a/websocket', ''] })).toThrow(TypeError);
  });
});
