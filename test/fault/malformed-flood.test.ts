import { connect, type Socket } from 'node:net';
import { WebSocket } from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { createBrowserAdapter } from '../../adapters/browser';
import { createServer, silentLogger, type IMServer } from '../../server/src/index';
import { IMClient } from '../../src/index';
import { seededRandom } from './fault-proxy';
import { Ledger } from './ledger';

const SEED = Number(process.env.FAULT_SEED ?? 20261121);
const USERS = 4;
const MESSAGES_PER_USER = 80;
const SEND_MS = 3000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const cleanups: Array<() => unknown> = [];

afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Opens a raw WebSocket, sends `payloads`, and resolves once the server closed it (or after 1 s). */
async function wsAttack(port: number, payloads: Array<string | Buffer>): Promise<void> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/websocket`);
  ws.on('error', () => undefined);
  const closed = new Promise<void>((r) => ws.once('close', () => r()));
  await new Promise<void>((r) => {
    ws.once('open', () => r());
    ws.once('close', () => r());
  });
  if (ws.readyState === WebSocket.OPEN) for (const p of payloads) ws.send(p, { binary: Buffer.isBuffer(p) });
  await Promise.race([closed, sleep(1000)]);
  ws.terminate();
}

/** Opens a raw TCP connection, writes `bytes`, and resolves once the server closed it (or after 1 s). */
async function tcpAttack(port: number, bytes: Buffer): Promise<void> {
  const s: Socket = connect(port, '127.0.0.1');
  s.on('error', () => undefined);
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  s.write(bytes);
  await Promise.race([closed, sleep(1000)]);
  s.destroy();
}

describe('a flood of malformed and oversize input', () => {
  it('never disturbs the well-behaved clients: every message delivered once, none lost', async () => {
    const random = seededRandom(SEED);
    const server: IMServer = await createServer({
      ws: { port: 0, host: '127.0.0.1' },
      tcp: { port: 0, host: '127.0.0.1' },
      udp: false,
      http: false,
      logger: silentLogger,
    });
    cleanups.push(() => server.close());
    const { ws: wsPort, tcp: tcpPort } = server.ports as { ws: number; tcp: number };

    const junk = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
    const hugePrefix = Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xf0]), junk(512)]);
    const attacks: Array<() => Promise<void>> = [
      () => wsAttack(wsPort, ['{"type":2,"dataContent":', 'not json at all']),
      () => wsAttack(wsPort, [junk(300)]),
      () => wsAttack(wsPort, ['x'.repeat(70 * 1024)]),
      () => wsAttack(wsPort, ['[1,2,3]', '{"type":"two"}', 'null', '{"type":2,"to":"u0","dataContent":"spoof","from":"u1","QoS":true,"fp":"x"}']),
      () => wsAttack(wsPort, Array.from({ length: 400 }, (_, i) => `{"type":1,"junk":${i}`)),
      () =>
        wsAttack(wsPort, [
          JSON.stringify({ type: 0, dataContent: JSON.stringify({ loginUserId: `flood${Math.floor(random() * 1e6)}`, loginToken: 't', firstLoginTime: 0 }), from: '-1', to: '0', QoS: false, typeu: -1, sm: -1 }),
          ...Array.from({ length: 500 }, () => '{"type":1,"dataContent":"{}","to":"0","QoS":false}'),
        ]),
      () => tcpAttack(tcpPort, hugePrefix),
      () => tcpAttack(tcpPort, Buffer.concat([Buffer.from([0, 0, 0, 8]), Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xff])])),
      () => tcpAttack(tcpPort, junk(4096)),
      () => tcpAttack(wsPort, Buffer.from('GARBAGE / NOT-HTTP\r\n\r\n' + 'z'.repeat(2000))),
    ];
    let attackCount = 0;
    let flooding = true;
    const attackers = Array.from({ length: 10 }, async (_, a) => {
      let i = a;
      while (flooding) {
        await attacks[i % attacks.length]();
        attackCount++;
        i += 1 + Math.floor(random() * 3);
      }
    });

    const ledger = new Ledger();
    const names = Array.from({ length: USERS }, (_, i) => `u${i}`);
    const clients = new Map<string, IMClient>();
    for (const name of names) {
      const c = new IMClient({
        url: `ws://127.0.0.1:${wsPort}/websocket`,
        adapter: createBrowserAdapter({ WebSocket: WebSocket as never, window: null, document: null }),
        qos: { checkIntervalMs: 200, resendAfterMs: 500 },
        random: seededRandom(SEED + names.indexOf(name) + 1),
      });
      cleanups.push(() => c.destroy());
      c.on('message', (m) => ledger.received(m.content, name));
      c.on('lost', ({ message }) => ledger.lostEvent(message.content));
      clients.set(name, c);
    }
    await Promise.all([...clients].map(([name, c]) => c.login({ userId: name, token: 't' })));
    const reconnects = { count: 0 };
    for (const c of clients.values()) c.on('reconnect', () => reconnects.count++);

    const total = USERS * MESSAGES_PER_USER;
    for (let seq = 0; seq < total; seq++) {
      const from = names[seq % USERS];
      const to = names[(seq + 1 + Math.floor(random() * (USERS - 1))) % USERS];
      const id = `${from}>${to}#${seq}`;
      ledger.sent(id, from, to);
      (clients.get(from) as IMClient).send(to, id, { fp: id }).then(
        () => ledger.acked(id),
        () => ledger.rejected(id),
      );
      await sleep(SEND_MS / total);
    }
    const deadline = Date.now() + 10000;
    while (!ledger.quiet() && Date.now() < deadline) await sleep(50);
    flooding = false;
    await Promise.all(attackers);

    const counts = ledger.counts();
    const m = server.metrics();
    console.log(
      `flood: ${attackCount} hostile connections, server badInput ${m.badInput}, errors sent ${m.errorsSent}, rate-limited ${m.rateLimited}; ` +
        `well-behaved: sent ${counts.sent}, delivered ${counts.delivered}, lost ${counts.lost}, duplicates ${counts.duplicates}, silent ${counts.silent}, reconnects ${reconnects.count}`,
    );
    expect(attackCount).toBeGreaterThan(30);
    expect(m.badInput).toBeGreaterThan(0);
    expect(counts).toMatchObject({ sent: total, delivered: total, lost: 0, duplicates: 0, silent: 0, wrongReceiver: 0 });
    expect(reconnects.count).toBe(0);
    expect(server.onlineUsers().sort()).toEqual(names);
  }, 30000);
});
