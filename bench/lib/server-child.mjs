// A server under test, in its own process: `ours` (the reference server from server/dist; a cluster node
// when the options carry `cluster: { redisUrl }` and a `nodeId`) or `raw` (a minimal ws relay: login
// registers the socket, every other frame is forwarded untouched to the user named in its "to" field). It reports its own CPU time and memory on request, so the benchmarks count
// server CPU rather than wall time.
//
// usage (through startChild): server-child.mjs <ours|raw> '<json options>'
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import { pathToFileURL } from 'node:url';
import { pauseMonitor, ROOT, serveRequests } from './common.mjs';

const [kind, json = '{}'] = process.argv.slice(2);
const o = { port: 0, dataDir: null, senseMode: 2, cluster: null, nodeId: undefined, ...JSON.parse(json) };

/** Starts the minimal relay baseline and returns its port, counters and close function. */
async function startRaw() {
  const { WebSocketServer } = await import('ws');
  const users = new Map();
  const counts = { in: 0, out: 0 };
  const wss = new WebSocketServer({ port: o.port, host: '127.0.0.1', perMessageDeflate: false, clientTracking: true, maxPayload: 65536 });
  wss.on('connection', (ws) => {
    ws.on('error', () => undefined);
    ws.on('message', (data) => {
      counts.in++;
      const p = JSON.parse(data);
      if (p.type === 0) {
        const uid = JSON.parse(p.dataContent).loginUserId;
        users.set(uid, ws);
        ws.once('close', () => users.get(uid) === ws && users.delete(uid));
        ws.send('{"type":50,"dataContent":"{\\"code\\":0}","from":"0","to":"' + uid + '"}');
        counts.out++;
        return;
      }
      if (p.type === 1) {
        ws.send('{"type":51,"dataContent":"{}","from":"0"}');
        counts.out++;
        return;
      }
      const dst = users.get(p.to);
      if (dst) {
        dst.send(data, { binary: false });
        counts.out++;
      }
    });
  });
  await new Promise((r) => wss.once('listening', r));
  return {
    port: wss.address().port,
    info: () => ({ online: users.size, connections: wss.clients.size, frames: { ...counts } }),
    close: () =>
      new Promise((r) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => r());
      }),
  };
}

/**
 * Starts the reference server (WebSocket only, no rate limit, no cap on connections not logged in yet: every
 * load client comes from loopback and thousands connect at once) and returns the same shape. In cluster
 * mode the messages are stored in Redis, so `dataDir` does not apply.
 */
async function startOurs() {
  const { createServer, silentLogger } = await import(pathToFileURL(join(ROOT, 'server/dist/index.js')).href);
  const server = await createServer({
    ws: { port: o.port, host: '127.0.0.1' },
    tcp: false,
    udp: false,
    http: false,
    ...(o.cluster ? { cluster: o.cluster, nodeId: o.nodeId } : { dataDir: o.dataDir }),
    ...(o.storeHoldMs !== undefined ? { storeHoldMs: o.storeHoldMs } : {}),
    senseMode: o.senseMode,
    rateLimit: false,
    maxUnauthenticatedPerAddress: 0,
    logger: silentLogger,
  });
  return {
    port: server.ports.ws,
    info: () => {
      const m = server.metrics();
      return { online: m.onlineUsers, connections: m.connections.total, frames: { in: m.messagesIn, out: m.messagesOut }, metrics: m };
    },
    close: () => server.close(),
  };
}

/** Each V8 heap space's committed size and used bytes, by name. */
function heapSpaces() {
  const out = {};
  for (const sp of getHeapSpaceStatistics()) out[sp.space_name] = { size: sp.space_size, used: sp.space_used_size, physical: sp.physical_space_size };
  return out;
}

/** Resident KiB by kind of mapping (Linux): the brk heap (malloc's main arena), anonymous maps (V8's pages, other arenas), files. */
function smaps() {
  const out = { brkHeap: 0, anon: 0, file: 0, stack: 0 };
  let kind = 'anon';
  try {
    for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
      const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (head) {
        const name = head[1];
        kind = name === '[heap]' ? 'brkHeap' : name === '[stack]' ? 'stack' : name.startsWith('/') ? 'file' : 'anon';
        continue;
      }
      const rss = /^Rss:\s+(\d+) kB/.exec(line);
      if (rss) out[kind] += Number(rss[1]);
    }
  } catch {
    /* not Linux */
  }
  return out;
}

// Event-loop stalls and GC pauses, reported and reset at each stats request.
const pauses = pauseMonitor();
let lagReset = null;
const started = Date.now();
const server = kind === 'raw' ? await startRaw() : await startOurs();
process.send({ type: 'ready', port: server.port, startMs: Date.now() - started });

serveRequests(async (m) => {
  switch (m.cmd) {
    case 'stats': {
      if (m.gc && typeof globalThis.gc === 'function') {
        globalThis.gc();
        globalThis.gc();
      }
      const mem = process.memoryUsage();
      const spaces = heapSpaces();
      const maps = m.smaps ? smaps() : null;
      // The resident size again once the collector's concurrent sweeping and page release have had time
      // (the heap then holds the garbage of what arrived meanwhile, so only its RSS is worth reading).
      let settled = null;
      if (m.settleMs > 0) {
        await new Promise((r) => setTimeout(r, m.settleMs));
        settled = { mem: process.memoryUsage() };
      }
      const lag = pauses.read();
      pauses.reset();
      // The next figures count from `lagFromMs` on (the end of a step's warm-up), as its latencies do.
      clearTimeout(lagReset);
      if (m.lagFromMs > 0) lagReset = setTimeout(pauses.reset, m.lagFromMs);
      return { cpu: process.cpuUsage(), mem, heapSpaces: spaces, ...(maps ? { smaps: maps } : {}), ...(settled ? { settled } : {}), loopDelay: lag, ...server.info() };
    }
    case 'snapshot':
      // A V8 heap snapshot (after a forced GC) written to m.path, for the connections benchmark's --snapshot.
      if (typeof globalThis.gc === 'function') globalThis.gc();
      return { path: writeHeapSnapshot(m.path) };
    case 'stop':
      await server.close();
      setImmediate(() => process.exit(0));
      return {};
    default:
      throw new Error(`unknown command ${m.cmd}`);
  }
});
