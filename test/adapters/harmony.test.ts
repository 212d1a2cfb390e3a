/** HarmonyOS specifics the conformance suite does not reach: error-first callbacks and listener removal. */
import { describe, expect, it } from 'vitest';
import { FakeHarmony } from './fakes/harmony';
import { recorder, tick } from './conformance';
import { createHarmonyAdapter } from '../../adapters/harmony';

const WSS = 'wss://im.example.com/websocket';

describe('harmony adapter', () => {
  it('removes its socket listeners with off() once the connection ends, however it ends', async () => {
    const fake = new FakeHarmony();
    const adapter = createHarmonyAdapter(fake.module);
    const ends = [
      (c: { close(): void }) => c.close(),
      () => fake.lastSocket.serverClose(),
      () => fake.lastSocket.networkError(),
    ];
    for (const end of ends) {
      const rec = recorder();
      const conn = adapter.connect(WSS, rec.handlers);
      expect(fake.lastSocket.listenerCount).toBe(4);
      fake.lastSocket.accept();
      end(conn);
      await tick();
      expect(fake.lastSocket.listenerCount).toBe(0);
      expect(rec.closes()).toHaveLength(1);
    }
  });

  it('treats an error-first message callback as an error, not a frame or a close', async () => {
    const fake = new FakeHarmony();
    const rec = recorder();
    const conn = createHarmonyAdapter(fake.module).connect(WSS, rec.handlers);
    fake.lastSocket.accept();
    fake.lastSocket.fire('message', { code: 2302999, message: 'decode failed' }, undefined);
    fake.lastSocket.fire('message', { code: 0 }, 'ok');
    await tick();
    expect(rec.types()).toEqual(['open', 'error', 'message']);
    conn.close();
  });

  it('closes the previous socket before opening a new one', async () => {
    const fake = new FakeHarmony();
    const adapter = createHarmonyAdapter(fake.module);
    const first = recorder();
    adapter.connect(WSS, first.handlers);
    fake.lastSocket.accept();
    const conn = adapter.connect(WSS, recorder().handlers);
    expect(fake.sockets[0].state).toBe('closed');
    await tick();
    expect(first.closes()).toHaveLength(1);
    conn.close();
  });

  it('has no watchLifecycle unless the app supplies a lifecycle source', () => {
    const fake = new FakeHarmony();
    expect(createHarmonyAdapter(fake.module).watchLifecycle).toBeUndefined();
    expect(createHarmonyAdapter(fake.module, { netConnection: fake.netConnection }).watchLifecycle).toBeTypeOf('function');
  });

  it('registers the NetConnection when watching and unregisters it on stop', async () => {
    const fake = new FakeHarmony();
    const seen: string[] = [];
    const stop = createHarmonyAdapter(fake.module, { netConnection: fake.netConnection }).watchLifecycle!((e) => seen.push(e));
    expect(fake.registered).toBe(true);
    fake.setNetwork(false);
    fake.setNetwork(true);
    stop();
    expect(fake.registered).toBe(false);
    expect(seen).toEqual(['offline', 'online']);
  });

  it('ignores the loss of a network the default has already moved away from', async () => {
    const fake = new FakeHarmony();
    const seen: string[] = [];
    const stop = createHarmonyAdapter(fake.module, { netConnection: fake.netConnection }).watchLifecycle!((e) => seen.push(e));
    fake.setNetwork(true, 100);
    fake.setNetwork(true, 101);
    fake.setNetwork(false, 100);
    expect(seen).toEqual(['online']);
    fake.setNetwork(false, 101);
    expect(seen).toEqual(['online', 'offline']);
    stop();
  });

  it('asks for the webSocket module up front', () => {
    expect(() => createHarmonyAdapter({} as never)).toThrow(TypeError);
  });
});
