// A load generator for the relay benchmark, in its own process. It holds both ends of its pairs, so one
// clock times each message from send to delivery. `ours`: IMClient through the browser adapter with
// `ws`, QoS on. `raw`: bare ws sockets speaking MobileIMSDK-shaped JSON, the receiver answering each
// message with an ACK frame, so both targets carry the same frames per message (2 in, 2 out).
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { WebSocket } from 'ws';
import { pauseMonitor, ROOT, serveRequests } from './common.mjs';

let ends = [];
let pairs = [];
let onDelivery = () => undefined;
let onAck = () => undefined;
/** The SDK clients' receive window (`qos.dedupMax`); 0 keeps the SDK's default. */
let dedupMax = 0;

// This process's own GC pauses and event-loop stalls: one here delays every message with an end here.
const pauses = pauseMonitor();

/** One user over the SDK. */
async function sdkEnd(url, userId) {
  const { IMClient } = await import(pathToFileURL(join(ROOT, 'dist/esm/src/index.js')).href);
  const { createBrowserAdapter } = await import(pathToFileURL(join(ROOT, 'dist/esm/adapters/browser.js')).href);
  const client = new IMClient({ url, adapter: createBrowserAdapter({ WebSocket, window: null, document: null }), qos: { maxPending: 100000, ...(dedupMax > 0 ? { dedupMax } : {}) } });
  client.on('message', (m) => onDelivery(m.content));
  await client.login({ userId, token: 'bench' });
  return {
    userId,
    send(to, content) {
      return client.send(to, content, { qos: true }).then(
        () => (onAck(), true),
        () => false,
      );
    },
    close: () => client.destroy(),
  };
}

let fpSeq = 0;

/** One user over a bare socket. */
async function rawEnd(url, userId) {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const acks = new Map();
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.on('error', () => undefined);
  const loggedIn = new Promise((r) => ws.once('message', r));
  ws.send(JSON.stringify({ bridge: false, type: 0, dataContent: JSON.stringify({ loginUserId: userId, loginToken: 'bench', extra: '', firstLoginTime: 0 }), from: '-1', to: '0', QoS: false, typeu: -1, sm: -1 }));
  await loggedIn;
  ws.on('message', (data) => {
    const p = JSON.parse(data);
    if (p.type === 2) {
      onDelivery(p.dataContent);
      ws.send(JSON.stringify({ bridge: false, type: 4, dataContent: p.fp, from: userId, to: p.from, QoS: false, typeu: -1, sm: -1 }));
    } else if (p.type === 4) {
      const done = acks.get(p.dataContent);
      if (done) {
        acks.delete(p.dataContent);
        onAck();
        done(true);
      }
    }
  });
  return {
    userId,
    send(to, content) {
      const fp = `${userId}-${++fpSeq}`;
      ws.send(JSON.stringify({ bridge: false, type: 2, dataContent: content, from: userId, to, fp, QoS: true, typeu: -1, sm: -1 }));
      return new Promise((r) => acks.set(fp, r));
    },
    close: () => ws.terminate(),
  };
}

/** Logs in both ends of every pair ({ a, b, aUrl, bUrl }: each end on its own server URL), 50 logins at a time. */
async function setup({ kind, pairs: given, dedupMax: max = 0 }) {
  dedupMax = max;
  const make = kind === 'raw' ? rawEnd : sdkEnd;
  const todo = given.flatMap((p) => [[p.a, p.aUrl], [p.b, p.bUrl]]);
  ends = [];
  for (let i = 0; i < todo.length; i += 50) ends.push(...(await Promise.all(todo.slice(i, i + 50).map(([id, url]) => make(url, id)))));
  const byId = new Map(ends.map((e) => [e.userId, e]));
  pairs = given.map((p) => ({ from: byId.get(p.a), to: p.b }));
  return { ends: ends.length };
}

/**
 * Runs one step: open loop at `rate` messages/s (this process's share), or closed loop with `window`
 * messages in flight per pair when rate is 0. Latencies count only for messages sent after `warmupMs`.
 */
async function run({ rate, window, warmupMs, durationMs, drainMs }) {
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const end = start + warmupMs + durationMs;
  const latencies = [];
  setTimeout(pauses.reset, warmupMs);
  let sent = 0;
  let delivered = 0;
  let deliveredInWindow = 0;
  let acked = 0;
  let refused = 0;
  let seq = 0;
  onAck = () => acked++;
  onDelivery = (content) => {
    delivered++;
    const now = performance.now();
    const t = Number(content.slice(content.indexOf('|') + 1));
    if (t >= measureFrom && t < end) {
      latencies.push(Math.round((now - t) * 100) / 100);
      deliveredInWindow++;
    }
  };
  const sendOne = (pair) => {
    sent++;
    const p = pair.from.send(pair.to, `${++seq}|${performance.now()}`);
    p.then((ok) => {
      if (!ok) refused++;
    });
    return p;
  };
  if (rate > 0) {
    await new Promise((resolve) => {
      const tick = () => {
        const now = performance.now();
        if (now >= end) return resolve();
        const due = Math.floor((rate * (now - start)) / 1000);
        while (sent < due) sendOne(pairs[sent % pairs.length]);
        setTimeout(tick, 1);
      };
      tick();
    });
  } else {
    await new Promise((resolve) => {
      let open = 0;
      const loop = (pair) => {
        if (performance.now() >= end) {
          if (--open === 0) resolve();
          return;
        }
        sendOne(pair).then(() => loop(pair));
      };
      for (const pair of pairs) for (let w = 0; w < window; w++) (open++, loop(pair));
    });
  }
  const sendEnded = performance.now();
  while (delivered < sent - refused && performance.now() - sendEnded < drainMs) await new Promise((r) => setTimeout(r, 20));
  const cpu = process.cpuUsage(cpu0);
  // GC pauses and event-loop stalls from the warm-up's end to the drain's, while measured messages were
  // on their way (the server's figures cover the same span).
  const p = pauses.read();
  return {
    sent,
    delivered,
    deliveredInWindow,
    acked,
    refused,
    windowMs: durationMs,
    latencies,
    loadCpuSec: (cpu.user + cpu.system) / 1e6,
    gcMs: p.gcMs,
    gcMaxMs: p.gcMaxMs,
    gcMajor: p.gcMajor,
    stallMs: p.maxMs,
  };
}

serveRequests(async (m) => {
  switch (m.cmd) {
    case 'setup':
      return setup(m);
    case 'run':
      return run(m);
    case 'stop':
      for (const e of ends) e.close();
      setImmediate(() => process.exit(0));
      return {};
    default:
      throw new Error(`unknown command ${m.cmd}`);
  }
});
process.send({ type: 'ready' });
