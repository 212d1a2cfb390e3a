import { afterEach, describe, expect, it } from 'vitest';
import type { IMServer } from '../../server/src/index';
import { SqliteOfflineStore } from '../../server/src/index';
import { admin, closeAll, login, startServer, UdpClient, WsClient, type RawClient } from './helpers';

const clients: RawClient[] = [];
const servers: IMServer[] = [];
const stores: SqliteOfflineStore[] = [];
afterEach(async () => {
  await closeAll(clients.splice(0), servers.splice(0));
  for (const s of stores.splice(0)) s.close();
});

async function setup(opts: Parameters<typeof startServer>[0] = {}) {
  const server = await startServer(opts);
  servers.push(server);
  const track = <T extends RawClient>(c: T) => (clients.push(c), c);
  return {
    server,
    ws: async () => track(await WsClient.open(server.ports.ws!)),
    udp: async () => track(await UdpClient.open(server.ports.udp!)),
  };
}

/** Settles with the promise's outcome, or 'pending' if it has not settled within `ms`. */
async function within<T>(p: Promise<T>, ms = 1000): Promise<T | 'pending'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const pending = new Promise<'pending'>((r) => (timer = setTimeout(() => r('pending'), ms)));
  try {
    return await Promise.race([p, pending]);
  } finally {
    clearTimeout(timer);
  }
}

describe('S2C push arguments', () => {
  it('refuses an empty fp instead of waiting forever for an ACK that cannot come', async () => {
    const { server, ws } = await setup();
    const c = await ws();
    await login(c, 'u1');
    const outcome = await within(server.sendToUser('u1', 'x', { fp: '' }).then(
      () => 'resolved',
      (err: Error) => err.name,
    ));
    expect(outcome).toBe('TypeError');
    const viaAdmin = await within(admin(server.ports.http!, 'POST', '/api/send', { to: 'u1', content: 'x', fp: '' }).then((r) => r.status));
    expect(viaAdmin).toBe(400);
  });

  it('refuses a typeu that is not an integer (Java clients cannot parse it)', async () => {
    const { server } = await setup();
    await expect(server.sendToUser('u1', 'x', { typeu: 1.5 })).rejects.toThrow(TypeError);
    expect((await admin(server.ports.http!, 'POST', '/api/send', { to: 'u1', content: 'x', typeu: 1.5 })).status).toBe(400);
    expect((await admin(server.ports.http!, 'POST', '/api/kick', { userId: 'u1', code: 2.5 })).status).toBe(400);
  });
});
