/** Runs the one conformance suite against every adapter: fakes for the platforms, real sockets for Node. */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { IMClient } from '../../src/client';
import { runAdapterConformance, type Harness, type Peer } from './conformance';
import { FakeMiniProgram, type Family, type FakeSocketTask } from './fakes/mini-program';
import { FakeHarmony, type FakeHarmonyWebSocket } from './fakes/harmony';
import { WebSocket } from 'ws';
import { startTcpPeer, closedTcpPort, startUdpPeer, startWsPeer } from './peers';
import type { SocketAdapter } from '../../src/transport';
import { createWxAdapter } from '../../adapters/wx';
import { createUniAdapter } from '../../adapters/uni';
import { createAlipayAdapter } from '../../adapters/alipay';
import { createBytedanceAdapter } from '../../adapters/bytedance';
import { createHarmonyAdapter } from '../../adapters/harmony';
import { createTcpAdapter } from '../../adapters/tcp';
import { createUdpAdapter } from '../../adapters/udp';
import { createBrowserAdapter, type EventTargetLike, type WebSocketConstructor } from '../../adapters/browser';
import { bytesOf } from './conformance';

const WSS = 'wss://im.example.com/websocket';
const PLATFORM = { peerClose: true, refusal: true, lifecycle: true };

/** A Node module function that throws, as `net.connect` does for invalid options. */
const throwing = (what: string) => (): never => {
  throw new TypeError(`${what} threw`);
};

function taskPeer(task: FakeSocketTask | FakeHarmonyWebSocket): Peer {
  return {
    received: () => task.sent.map(bytesOf),
    send: (data) => task.serverSend(typeof data === 'string' ? data : bytesOf(data).buffer as ArrayBuffer),
    close: () => task.serverClose(),
    fail: () => task.networkError(),
  };
}

function miniProgram(family: Family, create: (api: FakeMiniProgram['api']) => SocketAdapter) {
  return async (): Promise<Harness> => {
    const fake = new FakeMiniProgram(family);
    const adapter = create(fake.api);
    return {
      adapter,
      url: WSS,
      accept: async () => {
        fake.lastTask.accept();
        return taskPeer(fake.lastTask);
      },
      connectRefused: (handlers) => {
        const conn = adapter.connect(WSS, handlers);
        fake.lastTask.refuse('connectSocket:fail url not in domain list');
        return conn;
      },
      connectFailingSynchronously: (handlers) => {
        const failing = {
          ...fake.api,
          connectSocket: (option: { url: string; fail?: (r: unknown) => void }) => {
            const task = fake.api.connectSocket(option);
            option.fail?.({ errMsg: 'connectSocket:fail synchronously' });
            return task;
          },
        };
        return create(failing as FakeMiniProgram['api']).connect(WSS, handlers);
      },
      lifecycle: {
        foreground: () => fake.appShow(),
        background: () => fake.appHide(),
        network: (online) => fake.setNetwork(online),
        listenerCount: () => fake.listenerCount,
      },
      dispose: async () => {},
    };
  };
}

runAdapterConformance('wx', PLATFORM, miniProgram('wx', (api) => createWxAdapter(api as never)));
runAdapterConformance('uni', PLATFORM, miniProgram('uni', (api) => createUniAdapter(api)));
runAdapterConformance('alipay', PLATFORM, miniProgram('alipay', (api) => createAlipayAdapter(api)));
runAdapterConformance('bytedance', PLATFORM, miniProgram('tt', (api) => createBytedanceAdapter(api as never)));

runAdapterConformance('harmony', PLATFORM, async () => {
  const fake = new FakeHarmony();
  const adapter = createHarmonyAdapter(fake.module, {
    applicationContext: fake.applicationContext,
    netConnection: fake.netConnection,
  });
  return {
    adapter,
    url: WSS,
    accept: async () => {
      fake.lastSocket.accept();
      return taskPeer(fake.lastSocket);
    },
    connectRefused: (handlers) => {
      fake.failNextConnect = true;
      return adapter.connect(WSS, handlers);
    },
    connectFailingSynchronously: (handlers) => {
      const throwing = {
        createWebSocket: (): never => {
          throw Object.assign(new Error('createWebSocket failed'), { code: 2302999 });
        },
      };
      return createHarmonyAdapter(throwing).connect(WSS, handlers);
    },
    lifecycle: {
      foreground: () => fake.foreground(),
      background: () => fake.background(),
      network: (online) => fake.setNetwork(online),
      listenerCount: () => fake.listenerCount,
    },
    dispose: async () => {},
  };
});

runAdapterConformance('tcp', { peerClose: true, refusal: true, lifecycle: false, frameLimit: true }, async () => {
  const peer = await startTcpPeer();
  const refusedPort = await closedTcpPort();
  const adapter = createTcpAdapter(net);
  return {
    adapter,
    url: peer.url,
    accept: () => peer.accept(),
    connectRefused: (handlers) => adapter.connect(`tcp://127.0.0.1:${refusedPort}`, handlers),
    connectFailingSynchronously: (handlers) => createTcpAdapter({ connect: throwing('net.connect') }).connect(peer.url, handlers),
    dispose: () => peer.close(),
  };
});

runAdapterConformance('udp', { peerClose: false, refusal: false, lifecycle: false, frameLimit: true }, async () => {
  const peer = await startUdpPeer();
  return {
    adapter: createUdpAdapter(peer.dgram),
    url: peer.url,
    connectFailingSynchronously: (handlers) =>
      createUdpAdapter({ createSocket: throwing('dgram.createSocket') }).connect(peer.url, handlers),
    accept: () => peer.accept(),
    dispose: () => peer.close(),
  };
});

/**
 * A browser's `window` or `document` for the lifecycle hooks: an EventTarget that counts its listeners.
 * Like a browser, it fires `online`/`offline` only when the network state changes.
 */
function fakeEventTarget() {
  const target = new EventTarget();
  let listeners = 0;
  const like: EventTargetLike & { visibilityState: string } = {
    visibilityState: 'visible',
    addEventListener: (type, fn) => {
      listeners++;
      target.addEventListener(type, fn);
    },
    removeEventListener: (type, fn) => {
      listeners--;
      target.removeEventListener(type, fn);
    },
  };
  return { like, fire: (type: string) => target.dispatchEvent(new Event(type)), count: () => listeners };
}

runAdapterConformance('browser', PLATFORM, async () => {
  const peer = await startWsPeer();
  const refusedPort = await closedTcpPort();
  const win = fakeEventTarget();
  const doc = fakeEventTarget();
  let online = true;
  const adapter = createBrowserAdapter({ WebSocket: WebSocket as unknown as WebSocketConstructor, window: win.like, document: doc.like });
  return {
    adapter,
    url: peer.url,
    accept: () => peer.accept(),
    connectRefused: (handlers) => adapter.connect(`ws://127.0.0.1:${refusedPort}/websocket`, handlers),
    // `ws`, like a browser, throws from its constructor for a URL it cannot use.
    connectFailingSynchronously: (handlers) => adapter.connect('not a url', handlers),
    lifecycle: {
      foreground: () => win.fire('pageshow'),
      background: () => win.fire('pagehide'),
      network: (up) => {
        if (up === online) return;
        online = up;
        win.fire(up ? 'online' : 'offline');
      },
      listenerCount: () => win.count() + doc.count(),
    },
    dispose: () => peer.close(),
  };
});

describe('browser adapter: a refused connection in words', () => {
  it('a first login to a closed port says "connection refused or lost" (a browser reports only code 1006)', async () => {
    const port = await closedTcpPort();
    const url = `ws://127.0.0.1:${port}/websocket`;
    const client = new IMClient({ url, adapter: createBrowserAdapter({ WebSocket: WebSocket as unknown as WebSocketConstructor, window: null, document: null }) });
    await expect(client.login({ userId: 'u1' })).rejects.toMatchObject({
      code: 'CONNECT_FAILED',
      reason: 'socket-closed',
      message: `could not reach ${url}: connection refused or lost`,
    });
    client.destroy();
  });
});
