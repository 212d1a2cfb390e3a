import { WebSocket } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { createBrowserAdapter } from '../../adapters/browser';
import { IMClient, type IMError } from '../../src/index';
import { createFrame, encodeFrame, MsgType } from '../../src/protocol';
import { SqliteOfflineStore, ServerErrorCode, type IMServer } from '../../server/src/index';
import { FrameBudget, resolveRateLimit } from '../../server/src/rate-limit';
import { closeAll, dataFrame, errorOf, login, startServer, WsClient, type RawClient } from './helpers';

/**
 * The rate limit restrains what a connection originates; the ACKs a receiver owes for what the server
 * sent it never cost it its connection. Every server here runs the default limits.
 */
const clients: IMClient[] = [];
const raws: RawClient[] = [];
const servers: IMServer[] = [];
const stores: SqliteOfflineStore[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await closeAll(raws.splice(0), servers.splice(0));
  for (const s of stores.splice(0)) s.close();
});

function sdk(port: number): IMClient {
  const c = new IMClient({
    url: `ws://127.0.0.1:${port}/websocket`,
    adapter: createBrowserAdapter({ WebSocket: WebSocket as never, window: null, document: null }),
  });
  clients.push(c);
  return c;
}

async function raw(port: number): Promise<WsClient> {
  const c = await WsClient.open(port);
  raws.push(c);
  return c;
}

/** Collects what an SDK client receives, every error it reports, and every state change. */
function watch(c: IMClient) {
  const fps = new Set<string>();
  const errors: IMError[] = [];
  const states: string[] = [];
  c.on('message', (m) => void fps.add(m.fp ?? ''));
  c.on('error', (e) => void errors.push(e));
  c.on('state', ({ to }) => void states.push(to));
  return { fps, errors, states };
}

describe('a busy receiver', () => {
  it('drains a 10,000-message backlog in one session, its ACKs costing it nothing', async () => {
    const store = new SqliteOfflineStore(null);
    stores.push(store);
    const total = 10_000;
    const puts: Array<Promise<boolean>> = [];
    for (let i = 0; i < total; i++) {
      const fp = `backlog-${i}`;
      puts.push(store.put('bob', 'alice', fp, encodeFrame(createFrame({ type: MsgType.DATA, dataContent: `m${i}`, from: 'alice', to: 'bob', fp, QoS: true }))));
    }
    await Promise.all(puts);
    const server = await startServer({ store });
    servers.push(server);
    const bob = sdk(server.ports.ws!);
    const seen = watch(bob);
    await bob.login({ userId: 'bob', token: 't' });
    await expect.poll(() => seen.fps.size, { timeout: 15_000, interval: 100 }).toBe(total);
    await expect.poll(() => store.count('bob'), { timeout: 5_000 }).toBe(0);
    expect(seen.errors.map((e) => e.serverCode)).toEqual([]);
    expect(server.metrics().rateLimited).toBe(0);
    expect(server.metrics().connectionsOpened).toBe(1);
    expect(server.onlineUsers()).toEqual(['bob']);
  }, 30_000);

  it('stays online while three senders, each within its own limit, send it 300 messages a second', async () => {
    const server = await startServer();
    servers.push(server);
    const port = server.ports.ws!;
    const bob = sdk(port);
    const seen = watch(bob);
    await bob.login({ userId: 'bob', token: 't' });
    seen.states.length = 0;
    const senders = await Promise.all(['s1', 's2', 's3'].map(() => raw(port)));
    await Promise.all(senders.map((c, i) => login(c, `s${i + 1}`)));
    // 10 messages per sender every 100 ms for 3 s: 100/s each, the default sustained rate.
    const rounds = 30;
    for (let r = 0; r < rounds; r++) {
      senders.forEach((c, i) => {
        for (let k = 0; k < 10; k++) c.send(dataFrame(`s${i + 1}`, 'bob', `r${r}k${k}`, `s${i + 1}-${r}-${k}`));
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await expect.poll(() => seen.fps.size, { timeout: 10_000 }).toBe(3 * rounds * 10);
    expect(seen.errors.map((e) => e.serverCode)).toEqual([]);
    expect(seen.states).toEqual([]);
    expect(server.metrics().rateLimited).toBe(0);
    expect(server.onlineUsers().sort()).toEqual(['bob', 's1', 's2', 's3']);
    for (const c of senders) expect(c.frames.filter((f) => f.type === 52)).toEqual([]);
  }, 30_000);
});

describe('the control budget (keep-alives and unsolicited ACKs)', () => {
  it('refuses a keep-alive flood with error 332, far beyond any sense mode', async () => {
    const server = await startServer();
    servers.push(server);
    const c = await raw(server.ports.ws!);
    await login(c, 'beater');
    for (let i = 0; i < 101; i++) c.send({ type: 1, dataContent: '{}', from: 'beater', to: '0' });
    expect(errorOf(await c.nextOfType(52)).errorCode).toBe(ServerErrorCode.CONTROL_RATE_LIMITED);
    await c.closed;
    expect(c.frames.filter((f) => f.type === 51).length).toBeLessThanOrEqual(100);
  });

  it('refuses a flood of ACKs for messages it was never sent, but not the ACKs it owes', async () => {
    const server = await startServer();
    servers.push(server);
    const port = server.ports.ws!;
    const a = await raw(port);
    const b = await raw(port);
    await login(a, 'a');
    await login(b, 'b');
    for (let i = 0; i < 150; i++) a.send(dataFrame('a', 'b', `m${i}`, `owed-${i}`));
    for (let i = 0; i < 150; i++) {
      const f = await b.nextOfType(2);
      b.send({ type: 4, dataContent: f.fp, from: 'b', to: 'a' });
    }
    await expect.poll(() => server.metrics().delivered).toBe(150);
    expect(b.frames.filter((f) => f.type === 52)).toEqual([]);
    for (let i = 0; i < 101; i++) b.send({ type: 4, dataContent: `junk-${i}`, from: 'b', to: 'a' });
    expect(errorOf(await b.nextOfType(52)).errorCode).toBe(ServerErrorCode.CONTROL_RATE_LIMITED);
  });
});

describe('FrameBudget', () => {
  const opts = resolveRateLimit({ burst: 2, perSecond: 1, controlBurst: 3, controlPerSecond: 1 });

  it('charges originated frames to the originate bucket: the burst, then one per refill interval', () => {
    const b = new FrameBudget(opts, 0);
    expect(b.admit(MsgType.DATA, 0)).toBeNull();
    expect(b.admit(MsgType.ECHO, 0)).toBeNull();
    expect(b.admit(MsgType.LOGIN, 0)?.code).toBe(ServerErrorCode.RATE_LIMITED);
    expect(b.admit(MsgType.DATA, 999)?.code).toBe(ServerErrorCode.RATE_LIMITED);
    expect(b.admit(MsgType.DATA, 2_000)).toBeNull();
  });

  it('lets one ACK through free per QoS frame sent, and charges the rest with keep-alives to the control bucket', () => {
    const b = new FrameBudget(opts, 0);
    for (let i = 0; i < 500; i++) b.sentQos();
    for (let i = 0; i < 500; i++) expect(b.admit(MsgType.ACK, 0)).toBeNull();
    expect(b.admit(MsgType.DATA, 0)).toBeNull();
    expect(b.admit(MsgType.ACK, 0)).toBeNull();
    expect(b.admit(MsgType.KEEP_ALIVE, 0)).toBeNull();
    expect(b.admit(MsgType.ACK, 0)).toBeNull();
    expect(b.admit(MsgType.KEEP_ALIVE, 0)?.code).toBe(ServerErrorCode.CONTROL_RATE_LIMITED);
    expect(b.admit(MsgType.KEEP_ALIVE, 999)?.code).toBe(ServerErrorCode.CONTROL_RATE_LIMITED);
    expect(b.admit(MsgType.KEEP_ALIVE, 2_000)).toBeNull();
    b.sentQos();
    expect(b.admit(MsgType.ACK, 2_000)).toBeNull();
  });
});
