import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createBrowserAdapter } from '../../adapters/browser';
import { createServer, silentLogger, type IMServer } from '../../server/src/index';
import { IMClient } from '../../src/index';
import { encodeLengthPrefixed, LengthPrefixDecoder } from '../../src/length-prefix';
import { Ledger } from '../fault/ledger';
import { seededRandom } from '../helpers/random';
import { anyFrameText, bigFrameText, FUZZ_SEED } from './arbitraries';

/**
 * The three gateways under a property-based fuzzer: random and mutated frames over WebSocket (some after a
 * real login), random splits of the TCP stream, and datagrams over UDP; all bounded in count and time.
 * Beside them a well-behaved client pair exchanges QoS messages. The server must not crash, must answer
 * no frame with more than its transport's frame limit (what a client of that transport can read), must
 * send each hostile connection at most a bounded number of frames per frame it got, and the pair must
 * lose nothing.
 */

const WS_LIMIT = 65536;
const TCP_LIMIT = 6144;
const UDP_LIMIT = 2048;
const FRAMES_PER_TRANSPORT = 600;
const BATCH = 12;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** What one hostile connection sent and got back. */
interface Exchange {
  transport: 'ws' | 'tcp' | 'udp';
  sent: string[];
  replies: number[];
}

/** A login frame for a fuzz user (never one of the well-behaved pair). */
function fuzzLogin(n: number): string {
  const info = JSON.stringify({ loginUserId: `fz${n}`, loginToken: 't', firstLoginTime: 0 });
  return JSON.stringify({ bridge: false, type: 0, dataContent: info, from: `fz${n}`, to: '0', QoS: false, typeu: -1, sm: -1 });
}

async function wsExchange(port: number, frames: string[]): Promise<Exchange> {
  const ex: Exchange = { transport: 'ws', sent: frames, replies: [] };
  const ws = new WebSocket(`ws://127.0.0.1:${port}/websocket`);
  ws.on('error', () => undefined);
  ws.on('message', (data: Buffer) => ex.replies.push(data.length));
  const closed = new Promise<void>((r) => ws.once('close', () => r()));
  await new Promise<void>((r) => (ws.once('open', () => r()), ws.once('close', () => r())));
  if (ws.readyState === WebSocket.OPEN) for (const f of frames) ws.send(f);
  await Promise.race([closed, sleep(300)]);
  ws.terminate();
  return ex;
}

async function tcpExchange(port: number, frames: string[], random: () => number): Promise<Exchange> {
  const ex: Exchange = { transport: 'tcp', sent: frames, replies: [] };
  const s = connect(port, '127.0.0.1');
  s.on('error', () => undefined);
  const decoder = new LengthPrefixDecoder(1 << 20);
  s.on('data', (chunk) => {
    for (const body of decoder.push(chunk)) ex.replies.push(body.length);
  });
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  await new Promise<void>((r) => (s.once('connect', () => r()), s.once('close', () => r())));
  const stream = Buffer.concat(frames.map((f) => Buffer.from(encodeLengthPrefixed(Buffer.from(f, 'utf8')))));
  // Random splits, each piece its own write a turn apart, so the server reassembles across reads.
  for (let at = 0; at < stream.length && !s.destroyed; ) {
    const n = 1 + Math.floor(random() * 64);
    s.write(stream.subarray(at, at + n));
    at += n;
    if (random() < 0.2) await new Promise((r) => setImmediate(r));
  }
  await Promise.race([closed, sleep(300)]);
  s.destroy();
  return ex;
}

async function udpExchange(port: number, frames: string[]): Promise<Exchange> {
  const ex: Exchange = { transport: 'udp', sent: frames, replies: [] };
  const sock = createSocket('udp4');
  sock.on('message', (msg) => ex.replies.push(msg.length));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  for (const f of frames) sock.send(f, port, '127.0.0.1');
  await sleep(150);
  sock.close();
  return ex;
}

describe('fuzzing the three gateways', () => {
  it('random and mutated frames: no crash, replies bounded per frame and per transport limit, a client pair beside them loses nothing', async () => {
    const random = seededRandom(FUZZ_SEED);
    const server: IMServer = await createServer({
      ws: { port: 0, host: '127.0.0.1' },
      tcp: { port: 0, host: '127.0.0.1' },
      udp: { port: 0, host: '127.0.0.1' },
      http: false,
      logger: silentLogger,
    });
    cleanups.push(() => server.close());
    const { ws: wsPort, tcp: tcpPort, udp: udpPort } = server.ports as { ws: number; tcp: number; udp: number };

    const ledger = new Ledger();
    const pair = ['good-a', 'good-b'];
    const clients = pair.map((name, i) => {
      const c = new IMClient({
        url: `ws://127.0.0.1:${wsPort}/websocket`,
        adapter: createBrowserAdapter({ WebSocket: WebSocket as never, window: null, document: null }),
        qos: { checkIntervalMs: 200, resendAfterMs: 500 },
        random: seededRandom(FUZZ_SEED + i + 1),
      });
      cleanups.push(() => c.destroy());
      c.on('message', (m) => ledger.received(m.content, name));
      c.on('lost', ({ message }) => ledger.lostEvent(message.content));
      return c;
    });
    await Promise.all(clients.map((c, i) => c.login({ userId: pair[i], token: 't' })));
    let reconnects = 0;
    for (const c of clients) c.on('reconnect', () => reconnects++);

    let chatting = true;
    const chat = (async () => {
      for (let seq = 0; chatting; seq++) {
        const from = seq % 2;
        const id = `${pair[from]}#${seq}`;
        ledger.sent(id, pair[from], pair[1 - from]);
        clients[from].send(pair[1 - from], id, { fp: id }).then(
          () => ledger.acked(id),
          () => ledger.rejected(id),
        );
        await sleep(20);
      }
    })();

    const texts = (n: number, seedOffset: number) => fc.sample(anyFrameText(), { seed: FUZZ_SEED + seedOffset, numRuns: n });
    const exchanges: Exchange[] = [];
    const batches = (list: string[]) => Array.from({ length: Math.ceil(list.length / BATCH) }, (_, i) => list.slice(i * BATCH, (i + 1) * BATCH));
    const big = (limit: number, seedOffset: number) => fc.sample(bigFrameText(limit), { seed: FUZZ_SEED + seedOffset, numRuns: 10 });
    const wsFrames = batches([...texts(FRAMES_PER_TRANSPORT, 1), ...big(WS_LIMIT, 4)]);
    const tcpFrames = batches([...texts(FRAMES_PER_TRANSPORT, 2).filter((t) => Buffer.byteLength(t) <= TCP_LIMIT), ...big(TCP_LIMIT, 5)]);
    const udpFrames = batches([...texts(FRAMES_PER_TRANSPORT, 3).filter((t) => Buffer.byteLength(t) <= UDP_LIMIT), ...big(UDP_LIMIT, 6)]);
    // Half of the WebSocket and TCP batches come after a real login, so the logged-in dispatch is fuzzed too.
    const withLogin = (list: string[][]) => list.map((b, i) => (i % 2 === 0 ? [fuzzLogin(i), ...b] : b));
    await Promise.all([
      (async () => {
        for (const b of withLogin(wsFrames)) exchanges.push(await wsExchange(wsPort, b));
      })(),
      (async () => {
        for (const b of withLogin(tcpFrames)) exchanges.push(await tcpExchange(tcpPort, b, random));
      })(),
      (async () => {
        for (const b of udpFrames) exchanges.push(await udpExchange(udpPort, b));
      })(),
    ]);

    chatting = false;
    await chat;
    const deadline = Date.now() + 10000;
    while (!ledger.quiet() && Date.now() < deadline) await sleep(50);

    const limit = { ws: WS_LIMIT, tcp: TCP_LIMIT, udp: UDP_LIMIT };
    const oversize = exchanges.flatMap((e) => e.replies.filter((n) => n > limit[e.transport]).map((n) => `${e.transport}: ${n} bytes`));
    // Each frame a hostile peer sends may draw a reply and an error; a login may add a replay, which for a
    // fresh fuzz user holds at most the frames fuzz peers stored for it (none are addressed to fz users).
    const chatty = exchanges.filter((e) => e.replies.length > 2 * e.sent.length + 2).map((e) => `${e.transport}: ${e.replies.length} replies to ${e.sent.length}`);
    const counts = ledger.counts();
    console.log(
      `fuzz: ${exchanges.length} hostile exchanges, ${exchanges.reduce((n, e) => n + e.sent.length, 0)} frames; ` +
        `pair: sent ${counts.sent}, delivered ${counts.delivered}, lost ${counts.lost}, duplicates ${counts.duplicates}, silent ${counts.silent}, reconnects ${reconnects}`,
    );
    expect(oversize).toEqual([]);
    expect(chatty).toEqual([]);
    expect(counts.sent).toBeGreaterThan(20);
    expect(counts).toMatchObject({ delivered: counts.sent, lost: 0, duplicates: 0, silent: 0, wrongReceiver: 0 });
    expect(reconnects).toBe(0);
    // Still serving: a fresh connection logs in.
    const probe = await wsExchange(wsPort, [fuzzLogin(999999)]);
    expect(probe.replies.length).toBeGreaterThan(0);
  }, 60000);
});
