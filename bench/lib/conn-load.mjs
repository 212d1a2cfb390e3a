// A load generator for the connections benchmark, in its own process: many logged-in clients that only
// keep alive. `ours`: IMClient through the browser adapter with `ws` (its own keep-alive and jittered
// re-login). `raw`: bare ws sockets that log in to the raw relay and send a heartbeat frame on the same
// interval. Reports login times, and after a server restart (or a cluster node killed) when each client
// dropped and when it was back online. `url` may be a list (the SDK's url list: each client walks it in its
// own random order, from a random start, moving on after a failed connect).
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { WebSocket } from 'ws';
import { serveRequests, ROOT } from './common.mjs';

const clients = [];

/**
 * The WebSocket class for the i-th client: with several source addresses (127.0.0.2, 127.0.0.3, ...)
 * the clients are spread over them, since one source address has only ~28,000 ephemeral ports towards
 * one server port.
 */
function socketClass(i, o) {
  if (!o.sourceAddresses || o.sourceAddresses <= 1) return WebSocket;
  const localAddress = `127.0.0.${2 + (i % o.sourceAddresses)}`;
  return class extends WebSocket {
    constructor(url, options = {}) {
      super(url, { ...options, localAddress });
    }
  };
}

async function sdkClient(url, userId, o, i) {
  const { IMClient } = await import(pathToFileURL(join(ROOT, 'dist/esm/src/index.js')).href);
  const { createBrowserAdapter } = await import(pathToFileURL(join(ROOT, 'dist/esm/adapters/browser.js')).href);
  const client = new IMClient({
    url,
    adapter: createBrowserAdapter({ WebSocket: socketClass(i, o), window: null, document: null }),
    keepAlive: { intervalMs: o.keepAliveMs, timeoutMs: o.keepAliveTimeoutMs ?? o.keepAliveMs + 3000 },
    reconnect: { minDelayMs: o.minDelayMs, maxDelayMs: o.maxDelayMs },
    loginTimeoutMs: 20000,
  });
  const entry = { userId, client, backAt: 0, droppedAt: 0, attempts: 0, attemptAt: [], close: () => client.destroy() };
  client.on('state', ({ from, to }) => {
    if (to === 'online') entry.backAt = Date.now();
    else if (from === 'online') entry.droppedAt = Date.now();
  });
  client.on('reconnect', ({ delayMs }) => {
    entry.attempts++;
    entry.attemptAt.push(Date.now() + delayMs);
  });
  const t0 = performance.now();
  try {
    await client.login({ userId, token: 'bench' });
  } catch (err) {
    // Counted as a failed login by setup: destroyed, so it does not go on reconnecting unseen.
    client.destroy();
    throw err;
  }
  entry.loginMs = performance.now() - t0;
  return entry;
}

async function rawClient(url, userId, o, i) {
  const t0 = performance.now();
  const WS = socketClass(i, o);
  const ws = new WS(url, { perMessageDeflate: false });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.on('error', () => undefined);
  const loggedIn = new Promise((r) => ws.once('message', r));
  ws.send(JSON.stringify({ bridge: false, type: 0, dataContent: JSON.stringify({ loginUserId: userId, loginToken: 'bench', extra: '', firstLoginTime: 0 }), from: '-1', to: '0', QoS: false, typeu: -1, sm: -1 }));
  await loggedIn;
  const beat = JSON.stringify({ bridge: false, type: 1, dataContent: '{}', from: userId, to: '0', QoS: false, typeu: -1, sm: -1 });
  const timer = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send(beat), o.keepAliveMs);
  return { userId, loginMs: performance.now() - t0, backAt: 0, attempts: 0, attemptAt: [], close: () => (clearInterval(timer), ws.terminate()) };
}

/** Logs every id in, at most `concurrency` logins at a time, and returns each login's duration. */
async function setup({ kind, url, ids, concurrency, ...o }) {
  const make = kind === 'raw' ? rawClient : sdkClient;
  const t0 = performance.now();
  let next = 0;
  const failures = [];
  const worker = async () => {
    while (next < ids.length) {
      const i = next++;
      try {
        clients.push(await make(url, ids[i], o, i));
      } catch (err) {
        failures.push(String(err && err.message ? err.message : err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, ids.length) }, worker));
  return { elapsedMs: performance.now() - t0, loginMs: clients.map((c) => Math.round(c.loginMs * 100) / 100), failures: failures.length, firstFailure: failures[0] ?? null };
}

serveRequests(async (m) => {
  switch (m.cmd) {
    case 'setup':
      return setup(m);
    case 'online':
      return { online: clients.filter((c) => c.client && c.client.state === 'online').length, total: clients.length };
    case 'backTimes':
      return {
        backAt: clients.map((c) => (c.backAt >= m.sinceMs ? c.backAt : 0)),
        droppedAt: clients.map((c) => (c.droppedAt >= m.sinceMs ? c.droppedAt : 0)),
        attempts: clients.map((c) => c.attempts),
        attemptAt: clients.flatMap((c) => c.attemptAt.filter((t) => t >= m.sinceMs)),
      };
    case 'stop':
      for (const c of clients) c.close();
      setImmediate(() => process.exit(0));
      return {};
    default:
      throw new Error(`unknown command ${m.cmd}`);
  }
});
process.send({ type: 'ready' });
