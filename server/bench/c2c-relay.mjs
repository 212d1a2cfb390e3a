// C2C relay benchmark: starts the built CLI as a child process, opens PAIRS sender/receiver pairs of raw
// WebSocket clients, and runs a closed loop (WINDOW messages in flight per pair) for SECONDS. Receivers
// ACK every message, so each QoS message costs the server a store insert, a relay, a pseudo-ACK and a
// store delete (with qos=0 the next message goes out when the previous one arrived; no store, no ACKs). Prints messages/s, send-to-receive latency and the server's CPU per message.
// Usage: npm run build && node bench/c2c-relay.mjs [pairs=50] [window=4] [seconds=5] [qos=1]
import { spawn } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';

const [PAIRS = 50, WINDOW = 4, SECONDS = 5, QOS = 1] = process.argv.slice(2).map(Number);
const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli.js');
const dataDir = mkdtempSync(join(tmpdir(), 'im-bench-'));
const ticks = 100;

function cpuMs(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / ticks;
}

const child = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean), cli, '--ws-port', '0', '--tcp-port', '-1', '--udp-port', '-1', '--http-port', '-1', '--host', '127.0.0.1', '--data-dir', dataDir, '--rate-burst', '0', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((resolve) => {
  let out = '';
  child.stdout.on('data', (c) => {
    out += c;
    const m = /ws:\/\/[^:]+:(\d+)/.exec(out);
    if (m) resolve(Number(m[1]));
  });
});

function open(uid) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/websocket`);
    ws.on('open', () => ws.send(JSON.stringify({ type: 0, dataContent: JSON.stringify({ loginUserId: uid, loginToken: 't', firstLoginTime: 0 }), from: uid, to: '0' })));
    ws.once('message', () => resolve(ws));
  });
}

const latencies = [];
let delivered = 0;
let running = true;
const pairs = [];
for (let i = 0; i < PAIRS; i++) pairs.push({ a: await open(`a${i}`), b: await open(`b${i}`), n: 0, i });

for (const p of pairs) {
  const send = () => {
    if (!running) return;
    const fp = `f${p.i}-${p.n++}`;
    p.a.send(`{"bridge":false,"type":2,"dataContent":"${process.hrtime.bigint()}","from":"a${p.i}","to":"b${p.i}","fp":"${fp}","QoS":${QOS ? 'true' : 'false'},"typeu":-1,"sm":-1}`);
  };
  p.b.on('message', (data) => {
    const f = JSON.parse(data.toString());
    if (f.type !== 2) return;
    delivered++;
    latencies.push(Number(process.hrtime.bigint() - BigInt(f.dataContent)) / 1e6);
    if (f.QoS) p.b.send(`{"bridge":false,"type":4,"dataContent":"${f.fp}","from":"b${p.i}","to":"a${p.i}","QoS":false,"typeu":-1,"sm":-1}`);
    else send();
  });
  p.a.on('message', (data) => {
    if (JSON.parse(data.toString()).type === 4) send();
  });
  for (let w = 0; w < WINDOW; w++) send();
}

await new Promise((r) => setTimeout(r, 1000));
const d0 = delivered;
const c0 = cpuMs(child.pid);
const t0 = Date.now();
latencies.length = 0;
await new Promise((r) => setTimeout(r, SECONDS * 1000));
const elapsed = (Date.now() - t0) / 1000;
const msgs = delivered - d0;
const cpu = cpuMs(child.pid) - c0;
running = false;
latencies.sort((x, y) => x - y);
const pct = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]?.toFixed(2);
console.log(JSON.stringify({
  pairs: PAIRS, window: WINDOW, qos: Boolean(QOS), seconds: elapsed,
  messagesPerSecond: Math.round(msgs / elapsed),
  latencyMs: { p50: pct(0.5), p99: pct(0.99) },
  serverCpuCores: +(cpu / 1000 / elapsed).toFixed(2),
  serverCpuUsPerMessage: +((cpu * 1000) / msgs).toFixed(1),
  node: process.version,
}, null, 2));
for (const p of pairs) { p.a.terminate(); p.b.terminate(); }
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
rmSync(dataDir, { recursive: true, force: true });
