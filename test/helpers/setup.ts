import { afterEach, beforeEach, expect, vi } from 'vitest';
import type { KeyValueStorage } from '../../adapters/storage';
import { IMClient } from '../../src/client';
import type { IMClientOptions } from '../../src/options';
import { canMove } from '../../src/state';
import { createFakeAdapter } from './fake-adapter';
import { seededRandom } from './random';

/** Every state change a test client made that the transition table does not allow. */
export const illegalMoves: string[] = [];

export { seededRandom };

/** A client on a fake adapter with fake timers, plus a recorder of its events. */
export function makeClient(options: Partial<IMClientOptions> = {}, adapterOptions: { lifecycle?: boolean } = {}) {
  const fake = createFakeAdapter(adapterOptions);
  const logger = { debug: vi.fn(), warn: vi.fn(), error: vi.fn() };
  const client = new IMClient({ url: 'ws://test/websocket', adapter: fake.adapter, random: seededRandom(), logger, ...options });
  const events: Array<[string, unknown]> = [];
  for (const type of ['state', 'message', 'delivered', 'lost', 'kicked', 'reconnect', 'error', 'received'] as const) {
    client.on(type, (e: unknown) => events.push([type, e]));
  }
  client.on('state', ({ from, to, reason }) => {
    if (!canMove(from, to)) illegalMoves.push(`${from} -> ${to} (${reason})`);
  });
  const of = (type: string) => events.filter((e) => e[0] === type).map((e) => e[1]) as any[];
  const states = () => of('state').map((s: { to: string }) => s.to);
  return { client, fake, logger, events, of, states };
}

/** Logs `client` in through the fake socket and waits for the promise. */
export async function loginOnline(ctx: ReturnType<typeof makeClient>, userId = 'u1', firstLoginTime = 1700000000000) {
  const p = ctx.client.login({ userId, token: 'tok' });
  await vi.advanceTimersByTimeAsync(0);
  ctx.fake.last.open();
  ctx.fake.last.loginResponse(0, firstLoginTime);
  await p;
  return ctx.fake.last;
}

/** Fake timers for every test of the file, and a check that each test left no timer behind. */
export function useFakeTimersPerTest(options: { checkTimers?: boolean } = {}): void {
  beforeEach(() => vi.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => {
    if (options.checkTimers !== false) expect(vi.getTimerCount(), 'timers left behind').toBe(0);
    vi.useRealTimers();
  });
}

/** A synchronous in-memory {@link KeyValueStorage}, with its map exposed for assertions. */
export function memoryStorage(): KeyValueStorage & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return { data, getItem: (k) => data.get(k) ?? null, setItem: (k, v) => void data.set(k, v), removeItem: (k) => void data.delete(k) };
}
