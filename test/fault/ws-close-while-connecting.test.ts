import { createServer, type Server, type Socket } from 'node:net';
import { WebSocket } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { createBrowserAdapter } from '../../adapters/browser';

// A regression test for a crash the fault-injection run found: when a login times out while the
// WebSocket handshake is stalled, the client closes a socket that is still CONNECTING. With `ws` in Node
// that emits an `error` event; if the adapter has already dropped every error listener, an EventEmitter
// `error` with no listener is thrown as an uncaught exception and takes the application's process down.

const servers: Server[] = [];
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A TCP server that accepts connections and never answers: a stalled WebSocket handshake. */
function silentServer(): Promise<number> {
  const server = createServer((s) => sockets.push(s));
  servers.push(server);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

describe('browser adapter over ws: closing a socket whose handshake has not finished', () => {
  it('leaves no error event without a listener (Node would throw it)', async () => {
    const unhandled: unknown[] = [];
    class ProbeWebSocket extends WebSocket {
      override emit(type: string | symbol, ...args: unknown[]): boolean {
        if (type === 'error' && this.listenerCount('error') === 0) {
          unhandled.push(args[0]);
          return false;
        }
        return super.emit(type, ...args);
      }
    }
    const port = await silentServer();
    const adapter = createBrowserAdapter({ WebSocket: ProbeWebSocket as never, window: null, document: null });
    const closes: unknown[] = [];
    const link = adapter.connect(`ws://127.0.0.1:${port}/websocket`, {
      onOpen: () => undefined,
      onMessage: () => undefined,
      onClose: (info) => closes.push(info),
      onError: () => undefined,
    });
    await new Promise((r) => setTimeout(r, 50));
    link.close(1000, '');
    await new Promise((r) => setTimeout(r, 100));
    expect(unhandled.map((e) => String(e))).toEqual([]);
  });
});
