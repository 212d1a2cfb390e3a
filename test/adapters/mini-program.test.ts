/** Quirks of the SocketTask family (wx, uni, Alipay, Douyin) that the conformance suite does not reach. */
import { describe, expect, it, vi } from 'vitest';
import { FakeMiniProgram } from './fakes/mini-program';
import { recorder, tick } from './conformance';
import { createWxAdapter } from '../../adapters/wx';
import { createUniAdapter } from '../../adapters/uni';
import { createAlipayAdapter } from '../../adapters/alipay';
import { createBytedanceAdapter } from '../../adapters/bytedance';
import type { LifecycleEvent } from '../../src/transport';

const WSS = 'wss://im.example.com/websocket';

describe('wx adapter', () => {
  it('registers its listeners before the open event can fire', async () => {
    const fake = new FakeMiniProgram('wx', { openImmediately: true });
    const rec = recorder();
    const conn = createWxAdapter(fake.api as never).connect(WSS, rec.handlers);
    await vi.waitFor(() => expect(rec.types()).toEqual(['open']));
    expect(fake.lastTask.openRegisteredInTime).toBe(true);
    conn.close();
  });

  it('ignores a late success and treats a late fail after open as an error only', async () => {
    const fake = new FakeMiniProgram('wx');
    const rec = recorder();
    const conn = createWxAdapter(fake.api as never).connect(WSS, rec.handlers);
    fake.lastTask.accept();
    await tick();
    fake.lastTask.connectCallbacks.success?.({ errMsg: 'connectSocket:ok' });
    fake.lastTask.connectCallbacks.fail?.({ errMsg: 'connectSocket:fail late' });
    await tick();
    expect(rec.types()).toEqual(['open', 'error']);
    conn.close();
  });

  it('reports a fail called synchronously inside connectSocket only after connect returned', async () => {
    const fake = new FakeMiniProgram('wx');
    const api = {
      ...fake.api,
      connectSocket: (option: { url: string; fail?: (r: unknown) => void }) => {
        const task = fake.api.connectSocket(option);
        option.fail?.({ errMsg: 'connectSocket:fail synchronously' });
        return task as ReturnType<typeof fake.api.connectSocket> & object;
      },
    };
    const rec = recorder();
    const conn = createWxAdapter(api as never).connect(WSS, rec.handlers);
    expect(rec.events).toEqual([]);
    await tick();
    expect(rec.types()).toEqual(['error', 'close']);
    expect(rec.closes()[0].info).toEqual({ code: 1006, reason: 'connectSocket:fail synchronously' });
    expect(fake.lastTask.closeCalls).toHaveLength(1);
    conn.close();
  });

  it('refuses a sixth live socket (the fake enforces the limit)', () => {
    const fake = new FakeMiniProgram('wx');
    for (let i = 0; i < 6; i++) fake.api.connectSocket({ url: WSS, complete: () => {} });
    expect(fake.liveTasks).toHaveLength(5);
    expect(fake.tasks[5].state).toBe('closed');
  });

  it('closes the previous task before opening a new one, so reconnects never hit the 5-socket limit', async () => {
    const fake = new FakeMiniProgram('wx');
    const adapter = createWxAdapter(fake.api as never);
    const recs = [];
    for (let i = 0; i < 7; i++) {
      const rec = recorder();
      recs.push(rec);
      adapter.connect(WSS, rec.handlers);
      fake.lastTask.accept();
      expect(fake.liveTasks).toHaveLength(1);
    }
    await tick();
    expect(recs.slice(0, 6).map((r) => r.closes().length)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(recs[6].types()).toEqual(['open']);
    expect(recs[0].closes()[0].info.reason).toBe('replaced by a new connection');
    recs.forEach((r) => expect(r.late).toEqual([]));
  });

  it('closes a task that opens after a close it refused while connecting, so timed-out connects never use up the 5 sockets', async () => {
    const fake = new FakeMiniProgram('wx');
    const adapter = createWxAdapter(fake.api as never);
    for (let i = 0; i < 5; i++) {
      const rec = recorder();
      adapter.connect(WSS, rec.handlers).close(1000, 'connect timed out');
      fake.lastTask.accept();
      await tick();
      expect(rec.types()).toEqual(['close']);
    }
    expect(fake.liveTasks).toEqual([]);
    const rec = recorder();
    const conn = adapter.connect(WSS, rec.handlers);
    fake.lastTask.accept();
    await tick();
    expect(rec.types()).toEqual(['open']);
    conn.close();
  });

  it('tracks the current task per adapter instance, not per module', async () => {
    const fake = new FakeMiniProgram('wx');
    const a = createWxAdapter(fake.api as never);
    const b = createWxAdapter(fake.api as never);
    const ra = recorder();
    const rb = recorder();
    const ca = a.connect(WSS, ra.handlers);
    const cb = b.connect(WSS, rb.handlers);
    fake.tasks.forEach((t) => t.accept());
    await tick();
    expect(fake.liveTasks).toHaveLength(2);
    expect(ra.types()).toEqual(['open']);
    expect(rb.types()).toEqual(['open']);
    ca.close();
    cb.close();
  });

  it('survives a socket that dies in the background without onClose: foreground, then a local close reports it', async () => {
    const fake = new FakeMiniProgram('wx');
    const adapter = createWxAdapter(fake.api as never);
    const seen: LifecycleEvent[] = [];
    const stop = adapter.watchLifecycle!((e) => seen.push(e));
    const rec = recorder();
    const conn = adapter.connect(WSS, rec.handlers);
    const task = fake.lastTask;
    task.accept();
    fake.appHide();
    task.dieSilently();
    await tick(30);
    expect(rec.types()).toEqual(['open']);
    fake.appShow();
    expect(seen).toEqual(['background', 'foreground']);
    conn.send('{"type":1}');
    await tick();
    expect(task.sent).toEqual([]);
    expect(rec.types()).toEqual(['open']);
    conn.close(4000, 'probe timed out');
    await tick();
    expect(rec.closes().map((c) => c.info)).toEqual([{ code: 4000, reason: 'probe timed out' }]);
    const rec2 = recorder();
    const conn2 = adapter.connect(WSS, rec2.handlers);
    fake.lastTask.accept();
    await tick();
    expect(rec2.types()).toEqual(['open']);
    expect(fake.liveTasks).toHaveLength(1);
    conn2.close();
    stop();
  });

  it('sends codes SocketTask.close rejects as 1000, but reports the code the core asked for', async () => {
    const fake = new FakeMiniProgram('wx');
    const rec = recorder();
    const conn = createWxAdapter(fake.api as never).connect(WSS, rec.handlers);
    fake.lastTask.accept();
    conn.close(1001, 'going away');
    await tick();
    expect(fake.lastTask.closeCalls).toEqual([{ code: 1000, reason: 'going away' }]);
    expect(rec.closes().map((c) => c.info)).toEqual([{ code: 1001, reason: 'going away' }]);
    const rec2 = recorder();
    const conn2 = createWxAdapter(fake.api as never).connect(WSS, rec2.handlers);
    fake.lastTask.accept();
    conn2.close(3000, 'app');
    expect(fake.lastTask.closeCalls).toEqual([{ code: 3000, reason: 'app' }]);
  });

  it('drops frames the platform delivers after the close', async () => {
    const fake = new FakeMiniProgram('wx');
    const rec = recorder();
    createWxAdapter(fake.api as never).connect(WSS, rec.handlers);
    const task = fake.lastTask;
    task.accept();
    task.serverClose(1000, 'bye');
    task.serverSend('late frame');
    task.networkError();
    await tick();
    expect(rec.types()).toEqual(['open', 'close']);
    expect(rec.late).toEqual([]);
  });

  it('reports a send the platform rejects (before open) as an error, not a close', async () => {
    const fake = new FakeMiniProgram('wx');
    const rec = recorder();
    const conn = createWxAdapter(fake.api as never).connect(WSS, rec.handlers);
    conn.send('too early');
    await tick();
    expect(rec.types()).toEqual(['error']);
    conn.close();
  });

  it('asks for the wx object up front', () => {
    expect(() => createWxAdapter(undefined as never)).toThrow(TypeError);
  });
});

describe('uni adapter', () => {
  it('always passes a callback, because connectSocket returns a Promise without one (the fake does)', async () => {
    const fake = new FakeMiniProgram('uni');
    expect(fake.api.connectSocket({ url: WSS })).toBeInstanceOf(Promise);
    const rec = recorder();
    const conn = createUniAdapter(fake.api).connect(WSS, rec.handlers);
    fake.lastTask.accept();
    await vi.waitFor(() => expect(rec.types()).toEqual(['open']));
    conn.close();
  });

  it('reports a connectSocket that still returns a Promise as an error and a close, never a throw', async () => {
    const uni = { ...new FakeMiniProgram('uni').api, connectSocket: () => Promise.resolve({}) };
    const rec = recorder();
    const conn = createUniAdapter(uni).connect(WSS, rec.handlers);
    expect(rec.events).toEqual([]);
    await tick();
    expect(rec.types()).toEqual(['error', 'close']);
    expect(rec.events[0]).toMatchObject({ error: expect.any(TypeError) });
    conn.close();
  });

  it('does not take send success offline as delivery, and closes at once though close never completes offline', async () => {
    const fake = new FakeMiniProgram('uni');
    const adapter = createUniAdapter(fake.api);
    const seen: LifecycleEvent[] = [];
    const stop = adapter.watchLifecycle!((e) => seen.push(e));
    const rec = recorder();
    const conn = adapter.connect(WSS, rec.handlers);
    const task = fake.lastTask;
    task.accept();
    fake.setNetwork(false);
    conn.send('{"type":2,"QoS":true}');
    await tick();
    expect(task.sent).toEqual([]);
    expect(rec.types()).toEqual(['open']);
    expect(seen).toEqual(['offline']);
    conn.close(1000, 'offline');
    await tick();
    expect(rec.closes().map((c) => c.info)).toEqual([{ code: 1000, reason: 'offline' }]);
    fake.setNetwork(true);
    task.fire('close', { code: 1006, reason: 'late' });
    await tick();
    expect(rec.closes()).toHaveLength(1);
    expect(seen).toEqual(['offline', 'online']);
    stop();
    expect(fake.listenerCount).toBe(0);
  });
});

describe('alipay adapter', () => {
  it('asks for multiple: true, without which the fake returns no task', async () => {
    const fake = new FakeMiniProgram('alipay');
    expect(fake.api.connectSocket({ url: WSS, complete: () => {} })).toBeUndefined();
    const rec = recorder();
    const conn = createAlipayAdapter(fake.api).connect(WSS, rec.handlers);
    fake.lastTask.accept();
    await vi.waitFor(() => expect(rec.types()).toEqual(['open']));
    conn.close();
  });

  it('reports the errorMessage of an Alipay fail result as the close reason', async () => {
    const fake = new FakeMiniProgram('alipay');
    const rec = recorder();
    createAlipayAdapter(fake.api).connect(WSS, rec.handlers);
    fake.lastTask.refuse('接口参数无效。');
    await vi.waitFor(() => expect(rec.closes()).toHaveLength(1));
    expect(rec.closes()[0].info).toEqual({ code: 1006, reason: '接口参数无效。' });
  });

  it('decodes binary frames Alipay delivers as base64 with isBuffer', async () => {
    const fake = new FakeMiniProgram('alipay');
    const rec = recorder();
    const conn = createAlipayAdapter(fake.api).connect(WSS, rec.handlers);
    fake.lastTask.accept();
    fake.lastTask.fire('message', { data: Buffer.from([0, 200, 7, 8, 9]).toString('base64'), isBuffer: true });
    fake.lastTask.fire('message', { data: 'AAE=' });
    await tick();
    expect([...rec.messages()[0]]).toEqual([0, 200, 7, 8, 9]);
    expect(Buffer.from(rec.messages()[1]).toString()).toBe('AAE=');
    conn.close();
  });
});

describe('bytedance adapter', () => {
  it('closes the previous task before opening a new one', async () => {
    const fake = new FakeMiniProgram('tt');
    const adapter = createBytedanceAdapter(fake.api as never);
    const first = recorder();
    adapter.connect(WSS, first.handlers);
    fake.lastTask.accept();
    const conn = adapter.connect(WSS, recorder().handlers);
    expect(fake.tasks[0].closeCalls).toHaveLength(1);
    await tick();
    expect(first.closes()).toHaveLength(1);
    conn.close();
  });
});
