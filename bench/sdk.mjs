// SDK benchmark: the client-side cost per message (encode, decode, QoS send bookkeeping, receive with
// de-duplication and ACK) through the built package's public API, each beside a baseline of bare
// JSON.stringify / JSON.parse of the same frames. Runs in one process, on an in-memory adapter, so it
// measures CPU on the client alone. Prints a table and writes a JSON report; it never passes or fails.
//
//   npm run bench:sdk -- [--messages 50000] [--rounds 3] [--out file]
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseFlags, requireBuild, ROOT, table, writeReport } from './lib/common.mjs';

const flags = parseFlags(process.argv.slice(2), { messages: 50000, rounds: 3, dedupWindow: 10000, out: '' });
requireBuild();
const sdk = await import(pathToFileURL(join(ROOT, 'dist/esm/src/index.js')).href);
const { IMClient, createFrame, encodeFrame, decodeFrame } = sdk;

const CONTENT = 'hello from the benchmark, a typical short chat line: 你好';
const dataObject = (i) => ({ bridge: false, type: 2, dataContent: CONTENT, from: 'alice', to: 'bob', fp: `fp-${i}-5f0c3a`, QoS: true, typeu: 1, sm: -1 });
const dataText = (i) => JSON.stringify(dataObject(i));
const ackText = (fp) => JSON.stringify({ bridge: false, type: 4, dataContent: fp, from: '0', to: 'alice', QoS: false, typeu: -1, sm: -1 });

/** An in-memory adapter: answers the login, ACKs every QoS data frame on a microtask, and exposes the
 * handlers so the benchmark can push frames in as if they came from the server. */
function memoryAdapter() {
  const state = { handlers: null, written: 0 };
  const adapter = {
    name: 'memory',
    connect(_url, handlers) {
      state.handlers = handlers;
      setTimeout(() => handlers.onOpen(), 0);
      return {
        send(text) {
          state.written++;
          if (text.includes('"type":0,')) {
            const login = { bridge: false, type: 50, dataContent: JSON.stringify({ code: 0, firstLoginTime: 1 }), from: '0', to: 'alice', QoS: false, typeu: -1, sm: -1 };
            queueMicrotask(() => handlers.onMessage(JSON.stringify(login)));
          } else if (text.includes('"type":2,')) {
            const fp = /"fp":"([^"]+)"/.exec(text)[1];
            queueMicrotask(() => handlers.onMessage(ackText(fp)));
          }
        },
        close() {},
      };
    },
  };
  return { adapter, state };
}

async function newClient(dedupMax = flags.dedupWindow) {
  const mem = memoryAdapter();
  const client = new IMClient({
    url: 'ws://memory/websocket',
    adapter: mem.adapter,
    keepAlive: { intervalMs: 3600000, timeoutMs: 3600000 },
    qos: { maxPending: flags.messages + 1, dedupMax },
  });
  await client.login({ userId: 'alice', token: 't' });
  return { client, mem };
}

/** Best-of-rounds time per operation, in nanoseconds, of `fn(n)` doing n operations (sync or async). */
async function timeIt(fn, n = flags.messages) {
  await fn(Math.min(n, 20000));
  let best = Infinity;
  for (let r = 0; r < flags.rounds; r++) {
    const t0 = process.hrtime.bigint();
    await fn(n);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / n);
  }
  return best;
}

let sink = 0;
const cases = [];

/** Adds a measured case and its baseline. */
async function measure(name, what, fn, baselineName, baseline) {
  const ns = await timeIt(fn);
  const baseNs = await timeIt(baseline);
  cases.push({ case: name, what, nsPerMsg: ns, baseline: baselineName, baselineNs: baseNs, ratio: ns / baseNs, msgPerSec: 1e9 / ns });
  console.log(`  ${name}: ${ns.toFixed(0)} ns/msg (baseline ${baseNs.toFixed(0)} ns)`);
}

const texts = Array.from({ length: 1000 }, (_, i) => dataText(i));
const objects = Array.from({ length: 1000 }, (_, i) => dataObject(i));

await measure(
  'encode',
  'createFrame + encodeFrame of a QoS data frame',
  (n) => {
    for (let i = 0; i < n; i++) sink += encodeFrame(createFrame({ type: 2, dataContent: CONTENT, from: 'alice', to: 'bob', fp: objects[i % 1000].fp, QoS: true, typeu: 1 })).length;
  },
  'JSON.stringify',
  (n) => {
    for (let i = 0; i < n; i++) sink += JSON.stringify(objects[i % 1000]).length;
  },
);

await measure(
  'decode',
  'decodeFrame of a QoS data frame (with field checks)',
  (n) => {
    for (let i = 0; i < n; i++) sink += decodeFrame(texts[i % 1000]).typeu;
  },
  'JSON.parse',
  (n) => {
    for (let i = 0; i < n; i++) sink += JSON.parse(texts[i % 1000]).typeu;
  },
);

const sendBaseline = (n) => {
  for (let i = 0; i < n; i++) sink += JSON.stringify(objects[i % 1000]).length + JSON.parse(ackText(objects[i % 1000].fp)).type;
};

{
  const { client } = await newClient();
  const sendInBursts = (burst) => async (n) => {
    for (let done = 0; done < n; done += burst) {
      const all = [];
      for (let i = 0; i < burst && done + i < n; i++) all.push(client.send('bob', CONTENT, { qos: true, typeu: 1 }));
      await Promise.all(all);
    }
  };
  await measure(
    'send (QoS)',
    'client.send() to its ACK, 10 in flight: encode, outbox, decode the ACK, settle the promise',
    sendInBursts(10),
    'stringify data + parse ACK',
    sendBaseline,
  );
  for (const burst of [1000, 10000]) {
    await measure(`send burst ${burst}`, `the same with ${burst} sends issued at once (the outbox holds ${burst})`, sendInBursts(burst), 'stringify data + parse ACK', sendBaseline);
  }
  client.destroy();
}

const receiveBaseline = (n) => {
  for (let i = 0; i < n; i++) sink += JSON.parse(texts[i % 1000]).typeu + JSON.stringify({ bridge: false, type: 4, dataContent: 'x', from: 'alice', to: 'bob', QoS: false, typeu: -1, sm: -1 }).length;
};

for (const windowSize of [...new Set([100, flags.dedupWindow])]) {
  const { client, mem } = await newClient(windowSize);
  let received = 0;
  client.on('message', () => received++);
  let fresh = 0;
  const incoming = (n) => {
    const base = fresh;
    fresh += n;
    return Array.from({ length: n }, (_, i) => `{"bridge":false,"type":2,"dataContent":${JSON.stringify(CONTENT)},"from":"bob","to":"alice","fp":"in-${base + i}","QoS":true,"typeu":1,"sm":-1}`);
  };
  const batches = new Map();
  const prepared = (n) => {
    if (!batches.has(n)) batches.set(n, []);
    return batches.get(n);
  };
  for (const n of [20000, flags.messages]) for (let r = 0; r <= flags.rounds; r++) prepared(n).push(incoming(n));
  const take = (n) => prepared(n).shift() ?? incoming(n);
  await measure(
    `receive, window ${windowSize}`,
    `a new QoS data frame: decode, dedup check (a full window of ${windowSize}), emit, encode and write the ACK`,
    (n) => {
      const batch = take(n);
      for (let i = 0; i < n; i++) mem.state.handlers.onMessage(batch[i]);
    },
    'parse data + stringify ACK',
    receiveBaseline,
  );
  const dupes = texts.slice(0, Math.min(1000, windowSize)).map((t, i) => t.replace(/"fp":"[^"]+"/, `"fp":"in-${fresh - 1 - i}"`));
  await measure(
    `duplicate, window ${windowSize}`,
    'a retransmitted frame already in the dedup window: decode, dedup hit, ACK again, not shown',
    (n) => {
      for (let i = 0; i < n; i++) mem.state.handlers.onMessage(dupes[i % dupes.length]);
    },
    'parse data + stringify ACK',
    receiveBaseline,
  );
  if (received === 0) throw new Error('the client showed no message: the benchmark is broken');
  client.destroy();
}

console.log(
  '\n' +
    table(cases, [
      { key: 'case', title: 'case' },
      { key: 'nsPerMsg', title: 'ns/msg' },
      { key: 'msgPerSec', title: 'msg/s (1 core)' },
      { key: 'baseline', title: 'baseline' },
      { key: 'baselineNs', title: 'baseline ns' },
      { key: 'ratio', title: 'x baseline' },
    ]),
);
const file = writeReport('sdk', { config: flags, cases, sink: sink > 0 }, flags.out);
console.log(`\nreport: ${file}`);
