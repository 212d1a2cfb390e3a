import { describe, expect, it, vi } from 'vitest';
import {
  createOutboxStore,
  fromAlipayStorage,
  fromHarmonyPreferences,
  fromSyncStorage,
  type KeyValueStorage,
} from '../../adapters/storage';
import { MsgType, createFrame } from '../../src/protocol';
import { IMClient } from '../../src/client';
import type { OutboxStore, StoredMessage } from '../../src/index';
import { loginOnline, makeClient, useFakeTimersPerTest, memoryStorage } from '../helpers/setup';

useFakeTimersPerTest();


const keepAliveOff = { keepAlive: { intervalMs: 10_000_000, timeoutMs: 20_000_000 } };

describe('durable outbox', () => {
  it('takes a custom store written against the types the package entry exports', async () => {
    const saved = new Map<string, StoredMessage[]>();
    const store: OutboxStore = { load: (user) => saved.get(user) || [], save: (user, messages) => void saved.set(user, messages) };
    const ctx = makeClient({ ...keepAliveOff, outboxStore: store });
    await loginOnline(ctx);
    ctx.client.send('u2', 'kept').catch(() => undefined);
    await vi.advanceTimersByTimeAsync(0);
    expect(saved.get('u1')!.map((m) => m.frame.dataContent)).toEqual(['kept']);
    ctx.client.destroy();
  });

  it('keeps unacknowledged messages across a reload and re-sends them with the same fp after the next login', async () => {
    const storage = memoryStorage();
    const first = makeClient({ ...keepAliveOff, outboxStore: createOutboxStore(storage) });
    const sock = await loginOnline(first);
    first.client.send('u2', 'acked').catch(() => undefined);
    first.client.send('u2', 'pending-1').catch(() => undefined);
    const acked = sock.sentOfType(MsgType.DATA)[0];
    sock.deliver({ type: 4, dataContent: acked.fp, from: 'u2', to: 'u1' });
    sock.serverClose();
    first.client.send('u2', 'written-offline').catch(() => undefined);
    await vi.advanceTimersByTimeAsync(0);
    expect(JSON.parse(storage.data.get('mobileimsdk.outbox.u1') as string)).toHaveLength(2);
    // The page goes away: destroy() keeps the stored messages and reports none of them lost.
    first.client.destroy();
    expect(first.of('lost')).toHaveLength(0);
    expect(storage.data.has('mobileimsdk.outbox.u1')).toBe(true);

    const second = makeClient({ ...keepAliveOff, outboxStore: createOutboxStore(storage) });
    const sock2 = await loginOnline(second);
    const data = sock2.sentOfType(MsgType.DATA);
    expect(data.map((f) => f.dataContent)).toEqual(['pending-1', 'written-offline']);
    expect(data[0].fp).toBe(sock.sentOfType(MsgType.DATA)[1].fp);
    for (const f of data) sock2.deliver({ type: 4, dataContent: f.fp, from: 'u2', to: 'u1' });
    expect(second.of('delivered').map((d: { message: { content: string } }) => d.message.content)).toEqual(['pending-1', 'written-offline']);
    await vi.advanceTimersByTimeAsync(0);
    expect(storage.data.has('mobileimsdk.outbox.u1')).toBe(false);
    second.client.destroy();
  });

  it('a restored message keeps its original delivery deadline', async () => {
    const storage = memoryStorage();
    const store = createOutboxStore(storage);
    await store.save('u1', [{ frame: createFrame({ type: 2, dataContent: 'old', from: 'u1', to: 'u2', fp: 'f-old', QoS: true }), enqueuedAt: Date.now() - 119_000 }]);
    const ctx = makeClient({ ...keepAliveOff, outboxStore: store });
    await loginOnline(ctx);
    await vi.advanceTimersByTimeAsync(999);
    expect(ctx.of('lost')).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(ctx.of('lost')).toHaveLength(1);
    expect(ctx.of('lost')[0].message).toMatchObject({ fp: 'f-old', content: 'old' });
    ctx.client.destroy();
  });

  it('logout discards the stored messages (they are reported lost), and other users\' messages are never sent', async () => {
    const storage = memoryStorage();
    const store = createOutboxStore(storage);
    await store.save('u1', [{ frame: createFrame({ type: 2, dataContent: 'not mine', from: 'u9', to: 'u2', fp: 'f9', QoS: true }), enqueuedAt: Date.now() }]);
    const ctx = makeClient({ ...keepAliveOff, outboxStore: store });
    const sock = await loginOnline(ctx);
    expect(sock.sentOfType(MsgType.DATA)).toHaveLength(0);
    ctx.client.send('u2', 'x').catch(() => undefined);
    await vi.advanceTimersByTimeAsync(0);
    await ctx.client.logout();
    await vi.advanceTimersByTimeAsync(0);
    expect(ctx.of('lost')).toHaveLength(1);
    expect(storage.data.has('mobileimsdk.outbox.u1')).toBe(false);
  });

  it('survives a storage that fails or holds garbage', async () => {
    const broken: KeyValueStorage = {
      getItem: () => '{not json',
      setItem: () => {
        throw new Error('quota');
      },
      removeItem: () => undefined,
    };
    const ctx = makeClient({ ...keepAliveOff, outboxStore: createOutboxStore(broken) });
    const sock = await loginOnline(ctx);
    const p = ctx.client.send('u2', 'x');
    await vi.advanceTimersByTimeAsync(0);
    expect(ctx.logger.warn).toHaveBeenCalledWith('outboxStore.load failed', expect.any(SyntaxError));
    expect(ctx.logger.warn).toHaveBeenCalledWith('outboxStore.save failed', expect.any(Error));
    sock.deliver({ type: 4, dataContent: sock.sentOfType(MsgType.DATA)[0].fp, from: 'u2', to: 'u1' });
    await expect(p).resolves.toMatchObject({ acked: true });
    ctx.client.destroy();
  });

  it('skips a damaged entry and keeps the rest', async () => {
    const storage = memoryStorage();
    storage.data.set('p.u1', JSON.stringify([{ frame: 'garbage', at: 1 }, { frame: '{"type":2,"from":"u1","to":"u2","fp":"ok","QoS":true,"dataContent":"fine"}', at: 5 }]));
    expect(await createOutboxStore(storage, { prefix: 'p.' }).load('u1')).toEqual([
      { frame: expect.objectContaining({ fp: 'ok', dataContent: 'fine' }), enqueuedAt: 5 },
    ]);
  });

  it('refuses an outboxStore without load/save', () => {
    expect(() => new IMClient({ url: 'ws://x', adapter: { name: 'x', connect: vi.fn() }, outboxStore: {} as never })).toThrow(/outboxStore/);
  });
});

describe('storage wrappers', () => {
  const frame = createFrame({ type: 2, dataContent: 'm', from: 'u1', to: 'u2', fp: 'f', QoS: true });

  it('wx / uni / tt: setStorageSync(key, data), with "" for a missing key', async () => {
    const data = new Map<string, unknown>();
    const wx = {
      getStorageSync: (k: string) => data.get(k) ?? '',
      setStorageSync: (k: string, v: string) => void data.set(k, v),
      removeStorageSync: (k: string) => void data.delete(k),
    };
    const store = createOutboxStore(fromSyncStorage(wx));
    expect(await store.load('u1')).toEqual([]);
    await store.save('u1', [{ frame, enqueuedAt: 3 }]);
    expect(await store.load('u1')).toEqual([{ frame, enqueuedAt: 3 }]);
    await store.save('u1', []);
    expect(data.size).toBe(0);
  });

  it('Alipay: object arguments and { data } results', async () => {
    const data = new Map<string, string>();
    const my = {
      getStorageSync: ({ key }: { key: string }) => ({ data: data.get(key) }),
      setStorageSync: ({ key, data: d }: { key: string; data: string }) => data.set(key, d),
      removeStorageSync: ({ key }: { key: string }) => data.delete(key),
    };
    const store = createOutboxStore(fromAlipayStorage(my));
    expect(await store.load('u1')).toEqual([]);
    await store.save('u1', [{ frame, enqueuedAt: 4 }]);
    expect(await store.load('u1')).toEqual([{ frame, enqueuedAt: 4 }]);
    await store.save('u1', []);
    expect(data.size).toBe(0);
  });

  it('HarmonyOS preferences: asynchronous, flushed after every write, applied in order', async () => {
    const data = new Map<string, string>();
    const flush = vi.fn(async () => undefined);
    const slow = <T>(fn: () => T, ms: number) => new Promise<T>((r) => setTimeout(() => r(fn()), ms));
    const prefs = {
      get: (k: string, d: string) => slow(() => data.get(k) ?? d, 5),
      put: (k: string, v: string) => slow(() => void data.set(k, v), 30),
      delete: (k: string) => slow(() => void data.delete(k), 1),
      flush,
    };
    const store = createOutboxStore(fromHarmonyPreferences(prefs));
    void store.save('u1', [{ frame, enqueuedAt: 1 }]);
    void store.save('u1', []);
    const loaded = store.load('u1');
    await vi.advanceTimersByTimeAsync(100);
    expect(await loaded).toEqual([]);
    expect(data.size).toBe(0);
    expect(flush).toHaveBeenCalledTimes(2);
  });
});
