// Offline-store flood: starts the built CLI as a child process on a fresh data directory, logs one raw
// WebSocket client in and sends COUNT QoS messages (WINDOW in flight) of CONTENT bytes, each to a new
// invented user whose id is TO_CHARS long, as an attacker filling the store would. Prints how many were
// ACKed or refused (by error code), how long it took, and how much the data directory grew. Extra CLI flags
// (for example --max-stored-bytes 10000000) are passed through to the server.
// Usage: npm run build && node bench/offline-flood.mjs [count=10000] [toChars=256] [content=5000] [window=50] [server flags...]
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';

const args = process.argv.slice(2);
const firstFlag = args.findIndex((a) => a.startsWith('--'));
const nums = (firstFlag === -1 ? args : args.slice(0, firstFlag)).map(Number);
const serverFlags = firstFlag === -1 ? [] : args.slice(firstFlag);
const [COUNT = 10000, TO_CHARS = 256, CONTENT = 5000, WINDOW = 50] = nums;
const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli.js');
const dataDir = mkdtempSync(join(tmpdir(), 'im-flood-'));
const dirBytes = () => readdirSync(dataDir).reduce((n, f) => n + statSync(join(dataDir, f)).size, 0);

const child = spawn(
  process.execPath,
  [cli, '--ws-port', '0', '--tcp-port', '-1', '--udp-port', '-1', '--http-port', '-1', '--host', '127.0.0.1', '--data-dir', dataDir, '--rate-burst', '0', '--log-level', 'error', ...serverFlags],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
const port = await new Promise((resolve, reject) => {
  let out = '';
  child.once('exit', (code) => reject(new Error(`server exited (${code})`)));
  child.stdout.on('data', (c) => {
    out += c;
    const m = /ws:\/\/[^:]+:(\d+)/.exec(out);
    if (m) resolve(Number(m[1]));
  });
});

const ws = new WebSocket(`ws://127.0.0.1:${port}/websocket`);
await new Promise((resolve) => ws.on('open', resolve));
ws.send(JSON.stringify({ type: 0, dataContent: JSON.stringify({ loginUserId: 'attacker', loginToken: 't', firstLoginTime: 0 }), from: 'attacker', to: '0' }));
await new Promise((resolve) => ws.once('message', resolve));

const before = dirBytes();
const started = process.hrtime.bigint();
const content = 'x'.repeat(CONTENT);
const outcomes = new Map();
let sent = 0;
let answered = 0;
await new Promise((resolve) => {
  const send = () => {
    if (sent >= COUNT) return;
    const i = sent++;
    const to = `${i}-`.padEnd(TO_CHARS, 'u');
    ws.send(JSON.stringify({ bridge: false, type: 2, dataContent: content, from: 'attacker', to, fp: `fp${i}`, QoS: true, typeu: -1, sm: -1 }));
  };
  ws.on('message', (data) => {
    const f = JSON.parse(data.toString());
    const key = f.type === 4 ? 'ACK' : f.type === 52 ? `error ${JSON.parse(f.dataContent).errorCode}` : null;
    if (!key) return;
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    if (++answered >= COUNT) resolve();
    else send();
  });
  for (let i = 0; i < WINDOW; i++) send();
});
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const grown = dirBytes() - before;
const files = readdirSync(dataDir).map((f) => `${f} ${(statSync(join(dataDir, f)).size / 1e6).toFixed(1)} MB`).join(', ');
console.log(
  `${COUNT} messages of ${CONTENT} bytes to ${COUNT} invented users (ids of ${TO_CHARS} chars) in ${seconds.toFixed(1)} s: ` +
    `${[...outcomes].map(([k, n]) => `${k} ${n}`).join(', ')}; data directory grew ${(grown / 1e6).toFixed(1)} MB (${files})`,
);
ws.terminate();
child.kill('SIGTERM');
await new Promise((resolve) => child.once('exit', resolve));
rmSync(dataDir, { recursive: true, force: true });
