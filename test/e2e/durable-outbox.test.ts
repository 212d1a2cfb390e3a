import { WebSocket } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { createBrowserAdapter } from '../../adapters/browser';
import { createOutboxStore } from '../../adapters/storage';
import { IMClient, type IncomingMessage } from '../../src/index';
import type { IMServer } from '../../server/src/index';
import { startServer } from '../server/helpers';
import { memoryStorage } from '../helpers/setup';

/**
 * The durable outbox end to end: a message written while the server is down survives a "page reload"
 * (the client destroyed and made anew over the same storage) and reaches the receiver exactly once.
 */
const clients: IMClient[] = [];
const servers: IMServer[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  for (const s of servers.splice(0)) await s.close();
});

function client(port: number, extra: Partial<ConstructorParameters<typeof IMClient>[0]> = {}): IMClient {
  const c = new IMClient({
    url: `ws://127.0.0.1:${port}/websocket`,
    adapter: createBrowserAdapter({ WebSocket: WebSocket as never, window: null, document: null }),
    reconnect: { minDelayMs: 50, maxDelayMs: 200 },
    ...extra,
  });
  clients.push(c);
  return c;
}

describe('durable outbox against the reference server', () => {
  it('a message written offline survives a reload and is shown to the receiver once', async () => {
    let server = await startServer();
    servers.push(server);
    const port = server.ports.ws!;
    const storage = memoryStorage();
    const bob = client(port);
    const got: IncomingMessage[] = [];
    bob.on('message', (m) => void got.push(m));
    await bob.login({ userId: 'bob', token: 't' });
    const alice1 = client(port, { outboxStore: createOutboxStore(storage) });
    await alice1.login({ userId: 'alice', token: 't' });
    await alice1.send('bob', 'before the outage');

    await server.close();
    servers.splice(0);
    await expect.poll(() => alice1.state).toBe('reconnecting');
    const pending = alice1.send('bob', 'written during the outage');
    pending.catch(() => undefined);
    await expect.poll(() => storage.data.get('mobileimsdk.outbox.alice') ?? '').toContain('written during the outage');
    alice1.destroy();
    await expect(pending).rejects.toMatchObject({ code: 'DESTROYED' });

    server = await startServer({ ws: { port, host: '127.0.0.1' } });
    servers.push(server);
    const alice2 = client(port, { outboxStore: createOutboxStore(storage) });
    const delivered: string[] = [];
    alice2.on('delivered', ({ message }) => void delivered.push(message.content));
    await alice2.login({ userId: 'alice', token: 't' });
    await expect.poll(() => delivered, { timeout: 10_000 }).toEqual(['written during the outage']);
    await expect.poll(() => got.map((m) => m.content), { timeout: 10_000 }).toEqual(['before the outage', 'written during the outage']);
    await expect.poll(() => storage.data.has('mobileimsdk.outbox.alice')).toBe(false);
  });
});
