/** The tab-shared client passes a list of URLs through to the leader's IMClient, which moves along it. */
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

  it('refuses an empty list or a bad entry with a TypeError naming options.url', () => {
    const tab = createFakeOrigin().tab();
    const base = { adapter: createFakeAdapter().adapter, locks: tab.locks, BroadcastChannel: tab.BroadcastChannel };
    expect(() => createTabSharedClient({ ...base, url: [] })).toThrow(/options\.url/);
    expect(() => createTabSharedClient({ ...base, url: ['ws://a/websocket', ''] })).toThrow(TypeError);
  });
});
