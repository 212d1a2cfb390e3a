// @vitest-environment jsdom
import { Server, WebSocket as MockWebSocket } from 'mock-socket';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createBrowserAdapter, type WebSocketConstructor } from '../../adapters/browser';
import { IMClient } from '../../src/client';
import { createFrame, decodeFrame, encodeFrame } from '../../src/protocol';
import type { SocketHandlers } from '../../src/transport';

const URL = 'ws://localhost:3999/websocket';
let server: Server | null = null;

afterEach(() => {
  server?.stop();
  server = null;
});

function handlers() {
  const calls: Array<[string, unknown?]> = [];
  const h: SocketHandlers = {
    onOpen: () => calls.push(['open']),
    onMessage: (d) => calls.push(['message', d]),
    onClose: (i) => calls.push(['close', i]),
    onError: (e) => calls.push(['error', e]),
  };
  return { h, calls };
}

const until = (cond: () => boolean) => vi.waitFor(() => expect(cond()).toBe(true), { timeout: 2000, interval: 5 });

describe('createBrowserAdapter over mock-socket', () => {
  it('opens, sends exactly the given text and bytes, receives, and reports a server close once', async () => {
    server = new Server(URL);
    const received: unknown[] = [];
    let serverSide: any;
    server.on('connection', (s) => {
      serverSide = s;
      s.on('message', (d) => received.push(d));
    });
    const { h, calls } = handlers();
    const conn = createBrowserAdapter({ WebSocket: MockWebSocket as unknown as WebSocketConstructor }).connect(URL, h);
    expect(calls).toEqual([]);
    await until(() => calls.length === 1);
    expect(calls[0]).toEqual(['open']);
    conn.send('{"type":1}');
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
    conn.send(backing.subarray(2, 5));
    await until(() => received.length === 2);
    expect(received[0]).toBe('{"type":1}');
    expect(Array.from(new Uint8Array(received[1] as ArrayBuffer))).toEqual([1, 2, 3]);
    serverSide.send('{"type":51}');
    await until(() => calls.length === 2);
    expect(calls[1]).toEqual(['message', '{"type":51}']);
    serverSide.close({ code: 1000, reason: 'Bye' });
    await until(() => calls.some((c) => c[0] === 'close'));
    expect(calls.filter((c) => c[0] === 'close')).toEqual([['close', expect.objectContaining({ code: 1000, reason: 'Bye' })]]);
    // After the close, a send does nothing (the adapter contract), and nothing more is reported.
    conn.send('x');
    conn.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(calls.filter((c) => c[0] === 'close')).toHaveLength(1);
  });

  it('a local close() is reported once, with its own code, after close() returned, and can be repeated', async () => {
    server = new Server(URL);
    const { h, calls } = handlers();
    const conn = createBrowserAdapter({ WebSocket: MockWebSocket as unknown as WebSocketConstructor }).connect(URL, h);
    await until(() => calls.length === 1);
    conn.close(1000, 'bye');
    conn.close();
    expect(calls).toEqual([['open']]);
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toEqual([['open'], ['close', { code: 1000, reason: 'bye' }]]);
  });

  it('throws from send() while the socket is still connecting, so the core knows the frame was not written', () => {
    server = new Server(URL);
    const conn = createBrowserAdapter({ WebSocket: MockWebSocket as unknown as WebSocketConstructor }).connect(URL, handlers().h);
    expect(() => conn.send('x')).toThrow(/not open/);
    conn.close();
  });

  it('reports an unreachable server as an error and one close', async () => {
    const { h, calls } = handlers();
    createBrowserAdapter({ WebSocket: MockWebSocket as unknown as WebSocketConstructor }).connect('ws://localhost:3998/websocket', h);
    await until(() => calls.some((c) => c[0] === 'close'));
    expect(calls.filter((c) => c[0] === 'close')).toHaveLength(1);
    expect(calls.filter((c) => c[0] === 'error')).toHaveLength(1);
    expect(calls.some((c) => c[0] === 'open')).toBe(false);
  });

  it('looks WebSocket up on globalThis when connecting, and says what to pass when there is none', () => {
    const adapter = createBrowserAdapter();
    const original = globalThis.WebSocket;
    try {
      (globalThis as any).WebSocket = undefined;
      expect(() => adapter.connect(URL, handlers().h)).toThrow(/createBrowserAdapter\(\{ WebSocket \}\)/);
      const Spy = vi.fn(function (this: any) {
        this.readyState = 0;
        this.close = vi.fn();
      });
      (globalThis as any).WebSocket = Spy;
      adapter.connect(URL, handlers().h);
      expect(Spy).toHaveBeenCalledWith(URL);
    } finally {
      (globalThis as any).WebSocket = original;
    }
  });

  it('maps online/offline, visibility and page show/hide to lifecycle events, and removes every listener', () => {
    const events: string[] = [];
    const add = vi.spyOn(window, 'addEventListener');
    const remove = vi.spyOn(window, 'removeEventListener');
    const stop = createBrowserAdapter().watchLifecycle!((e) => events.push(e));
    window.dispatchEvent(new Event('offline'));
    window.dispatchEvent(new Event('online'));
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
    Object.defineProperty(document, 'visibilityState', { value: 'visible', configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
    window.dispatchEvent(new Event('pagehide'));
    window.dispatchEvent(new Event('pageshow'));
    // A hidden tab keeps reconnecting (no 'background'); visible again probes the link.
    expect(events).toEqual(['offline', 'online', 'foreground', 'background', 'foreground']);
    stop();
    window.dispatchEvent(new Event('offline'));
    document.dispatchEvent(new Event('visibilitychange'));
    expect(events).toHaveLength(5);
    expect(remove.mock.calls.length).toBe(add.mock.calls.length);
    add.mockRestore();
    remove.mockRestore();
  });

  it('lets lifecycle hooks be turned off', () => {
    const add = vi.spyOn(window, 'addEventListener');
    const stop = createBrowserAdapter({ window: null, document: null }).watchLifecycle!(() => undefined);
    expect(add).not.toHaveBeenCalled();
    stop();
    add.mockRestore();
  });
});

describe('IMClient in jsdom with the browser adapter', () => {
  function mobileImServer() {
    server = new Server(URL);
    const sockets: any[] = [];
    server.on('connection', (s) => {
      sockets.push(s);
      s.on('message', (text) => {
        const f = decodeFrame(String(text));
        if (f.type === 0) {
          const info = JSON.parse(f.dataContent as string);
          s.send(encodeFrame(createFrame({ type: 50, from: '0', to: info.loginUserId, dataContent: '{"code":0,"firstLoginTime":42}' })));
        } else if (f.type === 2 && f.QoS) {
          s.send(encodeFrame(createFrame({ type: 4, from: '0', to: f.from, dataContent: f.fp })));
        }
      });
    });
    return sockets;
  }

  it('logs in, sends with QoS, closes at once when the page goes offline and reconnects when it returns', async () => {
    const sockets = mobileImServer();
    const client = new IMClient({ url: URL, adapter: createBrowserAdapter({ WebSocket: MockWebSocket as unknown as WebSocketConstructor }) });
    await expect(client.login({ userId: 'u1', token: 't' })).resolves.toEqual({ userId: 'u1', firstLoginTime: 42 });
    await expect(client.send('0', 'hi')).resolves.toMatchObject({ acked: true });
    window.dispatchEvent(new Event('offline'));
    expect(client.state).toBe('reconnecting');
    await new Promise((r) => setTimeout(r, 50));
    expect(sockets).toHaveLength(1);
    window.dispatchEvent(new Event('online'));
    await until(() => client.state === 'online');
    expect(sockets).toHaveLength(2);
    client.destroy();
  });
});
