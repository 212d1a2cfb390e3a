import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ServerErrorCode } from '../../server/src/index';
import { ackFrame, admin, dataFrame, login, startServer, useServers, WsClient } from './helpers';

const { setup, track, servers } = useServers();
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('offline store', () => {
  it('stores QoS messages for an offline user, ACKs the sender, and delivers them in order with their fp on login', async () => {
    const { server, open } = await setup();
    const a = await open();
    await login(a, 'sender');
    for (let i = 1; i <= 5; i++) a.send(dataFrame('sender', 'sleeper', `m${i}`, `fp-off-${i}`, true, 7));
    for (let i = 1; i <= 5; i++) {
      const ack = await a.nextOfType(4);
      expect([ack.dataContent, ack.from, ack.to]).toEqual([`fp-off-${i}`, 'sleeper', 'sender']);
    }
    a.send(dataFrame('sender', 'sleeper', 'not qos', null, false));
    expect(server.metrics().offlineStored).toBe(5);
    const b = await open();
    await login(b, 'sleeper');
    const got = [];
    for (let i = 1; i <= 5; i++) got.push(await b.nextOfType(2));
    expect(got.map((f) => [f.dataContent, f.fp, f.from, f.typeu, f.QoS])).toEqual(
      [1, 2, 3, 4, 5].map((i) => [`m${i}`, `fp-off-${i}`, 'sender', 7, true]),
    );
    expect(await b.quiet()).toEqual([]);
    expect(server.metrics().offlinePending).toBe(5);
    for (let i = 1; i <= 3; i++) b.send(ackFrame('sleeper', 'sender', `fp-off-${i}`));
    await expect.poll(() => server.metrics().offlinePending).toBe(2);
    b.close();
    const c = await open();
    await login(c, 'sleeper');
    expect([(await c.nextOfType(2)).fp, (await c.nextOfType(2)).fp]).toEqual(['fp-off-4', 'fp-off-5']);
  });

  it('hands a backlog over in a window: the next stored message goes out as each one is ACKed', async () => {
    const { server, open } = await setup({ replayWindow: 3 });
    const a = await open();
    await login(a, 'sender');
    for (let i = 0; i < 10; i++) a.send(dataFrame('sender', 'late', `m${i}`, `fp-w${i}`));
    for (let i = 0; i < 10; i++) await a.nextOfType(4);
    const b = await open();
    await login(b, 'late');
    const first = [await b.nextOfType(2), await b.nextOfType(2), await b.nextOfType(2)];
    expect(first.map((f) => f.fp)).toEqual(['fp-w0', 'fp-w1', 'fp-w2']);
    expect(await b.quiet(100)).toEqual([]);
    a.send(dataFrame('sender', 'late', 'live', 'fp-live'));
    expect((await b.nextOfType(2)).fp).toBe('fp-live');
    const seen = first.map((f) => f.fp as string);
    b.send(ackFrame('late', 'sender', 'fp-live'));
    for (let i = 0; i < 10; i++) {
      b.send(ackFrame('late', 'sender', `fp-w${i}`));
      if (i + 3 < 10) seen.push((await b.nextOfType(2)).fp as string);
    }
    expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => `fp-w${i}`));
    await expect.poll(() => server.metrics().offlinePending).toBe(0);
    expect(await b.quiet(100)).toEqual([]);
  });

  it('does not let another user ACK a stored message away', async () => {
    const { server, open } = await setup();
    const a = await open();
    await login(a, 'sender');
    a.send(dataFrame('sender', 'target', 'secret', 'fp-t1'));
    await a.nextOfType(4);
    a.send(ackFrame('sender', 'server', 'fp-t1'));
    await a.quiet(100);
    expect(server.metrics().offlinePending).toBe(1);
  });

  it('refuses messages beyond the per-user offline box with error 319 and no ACK', async () => {
    const { open } = await setup({ maxOfflinePerUser: 2 });
    const a = await open();
    await login(a, 'sender');
    for (let i = 1; i <= 3; i++) a.send(dataFrame('sender', 'full', `m${i}`, `fp-f${i}`));
    // The refusal can come before the earlier messages' ACKs (their writes overlap, see frame-queue.ts): each names its fp.
    const replies = [await a.next((f) => f.type === 4 || f.type === 52), await a.next((f) => f.type === 4 || f.type === 52), await a.next((f) => f.type === 4 || f.type === 52)];
    expect(replies.filter((f) => f.type === 4).map((f) => f.dataContent).sort()).toEqual(['fp-f1', 'fp-f2']);
    const refusal = JSON.parse(replies.find((f) => f.type === 52)!.dataContent as string) as { errorCode: number; fp: string };
    expect([refusal.errorCode, refusal.fp]).toEqual([ServerErrorCode.OFFLINE_BOX_FULL, 'fp-f3']);
    expect((await a.quiet(200)).filter((f) => f.type === 4)).toEqual([]);
  });

  it('lets an onOffline hook replace the store: true ACKs the sender, false does not', async () => {
    const kept: string[] = [];
    const { server, open } = await setup({ hooks: { onOffline: async (m) => (m.dataContent === 'keep' ? (kept.push(m.fp!), true) : false) } });
    const a = await open();
    await login(a, 'sender');
    a.send(dataFrame('sender', 'away', 'drop', 'fp-d'));
    a.send(dataFrame('sender', 'away', 'keep', 'fp-k'));
    expect((await a.nextOfType(4)).dataContent).toBe('fp-k');
    expect(kept).toEqual(['fp-k']);
    expect(server.metrics().offlinePending).toBe(0);
  });

  it('keeps stored messages across a graceful restart on the same data directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'im-offline-'));
    dirs.push(dir);
    const first = await startServer({ dataDir: dir });
    const a = await WsClient.open(first.ports.ws!);
    track(a);
    await login(a, 'sender');
    a.send(dataFrame('sender', 'later', 'persisted', 'fp-p'));
    await a.nextOfType(4);
    await first.close();
    const second = await startServer({ dataDir: dir });
    servers.push(second);
    const b = await WsClient.open(second.ports.ws!);
    track(b);
    await login(b, 'later');
    expect((await b.nextOfType(2)).fp).toBe('fp-p');
  });
});

describe('admin HTTP API', () => {
  it('needs the bearer token everywhere but /health', async () => {
    const { server } = await setup();
    const port = server.ports.http!;
    expect((await admin(port, 'GET', '/health', undefined, null)).json.status).toBe('ok');
    expect((await admin(port, 'GET', '/api/metrics', undefined, null)).status).toBe(401);
    expect((await admin(port, 'GET', '/api/online', undefined, 'wrong')).status).toBe(401);
    expect((await admin(port, 'GET', '/api/online')).json).toEqual({ users: [] });
    expect((await admin(port, 'GET', '/nope')).status).toBe(404);
    expect((await admin(port, 'POST', '/api/send', 'not json')).status).toBe(400);
    expect((await admin(port, 'POST', '/api/send', { to: 5 })).status).toBe(400);
  });

  it('answers 403 on every protected route when no token is configured', async () => {
    const { server } = await setup({ http: { port: 0, host: '127.0.0.1' } });
    expect((await admin(server.ports.http!, 'GET', '/api/metrics')).status).toBe(403);
  });

  it('pushes S2C with QoS and answers "delivered" once the client ACKs', async () => {
    const delivered: string[] = [];
    const { server, open } = await setup({ hooks: { onDelivered: (fp) => void delivered.push(fp) } });
    const a = await open();
    await login(a, 'pushme');
    const pending = admin(server.ports.http!, 'POST', '/api/send', { to: 'pushme', content: 'from the server', typeu: 3 });
    const msg = await a.nextOfType(2);
    expect([msg.from, msg.to, msg.dataContent, msg.QoS, msg.typeu]).toEqual(['0', 'pushme', 'from the server', true, 3]);
    a.send(ackFrame('pushme', '0', msg.fp as string));
    const res = await pending;
    expect(res.json).toEqual({ fp: msg.fp, status: 'delivered' });
    expect(delivered).toEqual([msg.fp]);
  });

  it('settles a pending push as "stored" when the server closes, and refuses pushes after', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'im-close-'));
    dirs.push(dir);
    const server = await startServer({ dataDir: dir });
    const a = await WsClient.open(server.ports.ws!);
    track(a);
    await login(a, 'quiet');
    const pending = server.sendToUser('quiet', 'never acked');
    await a.nextOfType(2);
    await server.close();
    expect((await pending).status).toBe('stored');
    await expect(server.sendToUser('quiet', 'x')).rejects.toThrow(/closed/);
  });

  it('stores an S2C push for an offline user and answers "stored"', async () => {
    const { server, open } = await setup();
    const res = await admin(server.ports.http!, 'POST', '/api/send', { to: 'nobody-yet', content: 'later' });
    expect(res.json.status).toBe('stored');
    const a = await open();
    await login(a, 'nobody-yet');
    expect((await a.nextOfType(2)).fp).toBe(res.json.fp);
  });

  it('kicks a user with code 2, lists online users and counts in /api/metrics', async () => {
    const logouts: Array<[string, number]> = [];
    const { server, open } = await setup({ hooks: { onLogout: (u, c) => void logouts.push([u, c]) } });
    const a = await open();
    await login(a, 'k1');
    const port = server.ports.http!;
    expect((await admin(port, 'GET', '/api/online')).json).toEqual({ users: ['k1'] });
    expect((await admin(port, 'POST', '/api/kick', { userId: 'k1', reason: 'bye' })).json).toEqual({ kicked: true });
    expect((await a.nextOfType(54)).dataContent).toBe('{"code":2,"reason":"bye"}');
    await a.closed;
    await expect.poll(() => logouts).toEqual([['k1', 2]]);
    expect((await admin(port, 'POST', '/api/kick', { userId: 'k1' })).status).toBe(404);
    const m = (await admin(port, 'GET', '/api/metrics')).json;
    expect(m).toMatchObject({ logins: 1, kicks: 1, onlineUsers: 0, connectionsOpened: 1 });
    expect(m.messagesIn).toBeGreaterThanOrEqual(1);
    expect(m.messagesOut).toBeGreaterThanOrEqual(2);
  });
});
