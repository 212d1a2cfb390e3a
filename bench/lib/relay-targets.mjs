// The servers behind each relay benchmark target, started and measured the same way:
//   ours      one reference server (durable SQLite store), pinned to CPU 1
//   raw       the minimal ws relay, pinned to CPU 1
//   rawsdk    the same relay driven by the SDK clients `ours` gets (with `--clients sdk`): the clients'
//             own share of the tail and of the load processes' CPU, without our server's
//   cluster2  two cluster nodes (A, B) on one private redis-server; every pair's sender logs in on A and
//             its receiver on B, so every message crosses nodes. Nodes on --node-cpus (default both on
//             CPU 1, the single server's budget), Redis on CPU 0 with the load processes
//   cluster1  one cluster node on its own redis-server, placed like cluster2's node A: the cluster mode's
//             cost without the hop
//   nodes1, nodes2  one or two cluster nodes on one redis-server, nothing pinned (all processes share both
//             cores); with two, the ends of the pairs are spread over the nodes like a load balancer would
//             (half the pairs on one node, half across): the stand-in for `--workers 2`
//   workers1, workers2  the CLI with `--workers N` on one port (Node's cluster module spreads the
//             connections), on one redis-server, nothing pinned
// Each returns { url(pair, end), stats(), stop(), nodes } where stats() gives per-node CPU seconds used so
// far, Redis's, the longest event-loop stall and the frame counters when known.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuSeconds, ROOT, sleep, startChild } from './common.mjs';
import { freePort, procCpuSeconds, startRedis } from './redis-server.mjs';

const serverScript = join(ROOT, 'bench/lib/server-child.mjs');

/** Every target this module knows. */
export const TARGETS = ['ours', 'raw', 'rawsdk', 'cluster1', 'cluster2', 'nodes1', 'nodes2', 'workers1', 'workers2'];

/** Where the load processes run for a target: CPU 0 when pinned, else anywhere. */
export function loadCpus(target, pin) {
  return pin && !/^(nodes|workers)/.test(target) ? '0' : null;
}

/**
 * How many load processes a target gets: `loaders` when above 0, else one per core they may run on
 * (`cores` when unpinned), and never more than `pairs`: a load process without a pair has nothing to send.
 */
export function loaderCount(target, { loaders, pairs, pin }, cores = availableParallelism()) {
  if (loaders > 0) return loaders;
  const cpus = loadCpus(target, pin);
  return Math.max(1, Math.min(pairs, cpus ? cpus.split(',').length : cores));
}

/** Starts the servers of `target`; `o` holds { pin, store, nodeCpus, recheckMs (0: the server's default), holdMs (-1: the default), profile (a directory or '') }. */
export async function startTarget(target, o) {
  if (target === 'ours' || target === 'raw') return singleServer(target, o);
  if (target === 'rawsdk') return singleServer('raw', o, 'rawsdk');
  if (target === 'cluster1' || target === 'cluster2' || target === 'nodes1' || target === 'nodes2') return clusterNodes(target, o);
  if (target === 'workers1' || target === 'workers2') return workers(Number(target.slice(-1)), o);
  throw new Error(`unknown target ${target}; known: ${TARGETS.join(', ')}`);
}

/** One server child of `kind` (ours or raw); `name` tells its profile apart. */
async function singleServer(kind, o, name = kind) {
  const dataDir = o.store === 'disk' && kind === 'ours' ? mkdtempSync(join(tmpdir(), 'im-bench-')) : null;
  const server = startChild(serverScript, [kind, JSON.stringify({ dataDir, ...(o.holdMs >= 0 ? { storeHoldMs: o.holdMs } : {}) })], { cpus: o.pin ? '1' : null, execArgv: profArgs(o, name) });
  const { port } = await server.waitFor((m) => m.type === 'ready');
  const url = `ws://127.0.0.1:${port}/websocket`;
  return {
    nodes: 1,
    url: () => url,
    stats: async (o = {}) => {
      const s = await server.request({ cmd: 'stats', ...o });
      return { nodeCpu: [cpuSeconds({ user: 0, system: 0 }, s.cpu)], redisCpu: NaN, loopDelayMax: s.loopDelay.maxMs, gcMs: s.loopDelay.gcMs, gcMaxMs: s.loopDelay.gcMaxMs, frames: s.frames, mem: s.mem };
    },
    stop: async () => {
      await server.stop();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function clusterNodes(target, o) {
  const count = target.endsWith('2') ? 2 : 1;
  const pinned = o.pin && target.startsWith('cluster');
  const nodeCpus = String(o.nodeCpus).split(',');
  const redis = await startRedis({ cpus: pinned ? '0' : null });
  const keyPrefix = `bench${Date.now()}:`;
  const servers = [];
  const urls = [];
  for (let i = 0; i < count; i++) {
    const nodeId = `node-${'AB'[i]}`;
    const cluster = { redisUrl: redis.url, keyPrefix, ...(o.recheckMs > 0 ? { recheckMs: o.recheckMs } : {}) };
    const child = startChild(serverScript, ['ours', JSON.stringify({ cluster, nodeId })], { cpus: pinned ? nodeCpus[i] ?? '1' : null, execArgv: profArgs(o, nodeId) });
    const { port } = await child.waitFor((m) => m.type === 'ready');
    servers.push(child);
    urls.push(`ws://127.0.0.1:${port}/websocket`);
  }
  // cluster2: sender on A, receiver on B. nodes2: pair j's sender on node j % 2, receiver on
  // floor(j / 2) % 2, so the four placements come equally often (half the pairs cross).
  const url =
    target === 'cluster2' ? (_pair, end) => urls[end] : target === 'nodes2' ? (pair, end) => urls[end === 0 ? pair % 2 : Math.floor(pair / 2) % 2] : () => urls[0];
  return {
    nodes: count,
    url,
    stats: async (o = {}) => {
      const all = await Promise.all(servers.map((s) => s.request({ cmd: 'stats', ...o })));
      return {
        nodeCpu: all.map((s) => cpuSeconds({ user: 0, system: 0 }, s.cpu)),
        redisCpu: redis.cpuSeconds(),
        loopDelayMax: Math.max(...all.map((s) => s.loopDelay.maxMs)),
        gcMs: all.reduce((a, s) => a + s.loopDelay.gcMs, 0),
        gcMaxMs: Math.max(...all.map((s) => s.loopDelay.gcMaxMs)),
        frames: { in: all.reduce((a, s) => a + s.frames.in, 0), out: all.reduce((a, s) => a + s.frames.out, 0) },
        mem: all[0].mem,
      };
    },
    stop: async () => {
      await Promise.all(servers.map((s) => s.stop()));
      await redis.stop();
    },
  };
}

/** The CLI with `--workers n`: per-process CPU from /proc (the primary and each worker). */
async function workers(n, o) {
  const redis = await startRedis();
  const port = await freePort();
  const args = [
    join(ROOT, 'server/dist/cli.js'),
    '--workers', String(n),
    '--ws-port', String(port), '--host', '127.0.0.1', '--tcp-port', '-1', '--udp-port', '-1', '--http-port', '-1',
    '--redis-url', redis.url, '--redis-prefix', `bench${Date.now()}:`, '--node-id', `w${n}`,
    '--auth', 'none', '--rate-burst', '0', '--max-unauth-per-address', '0', '--sense-mode', '2', '--log-level', 'error',
  ];
  const primary = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise((r) => primary.once('exit', r));
  await waitPort(port, exited, 30000);
  // The workers have all bound once the primary has as many children as asked for.
  const deadline = Date.now() + 30000;
  while (childPids(primary.pid).length < n && Date.now() < deadline) await sleep(100);
  await sleep(500);
  const url = `ws://127.0.0.1:${port}/websocket`;
  return {
    nodes: n,
    url: () => url,
    stats: async () => {
      const pids = [primary.pid, ...childPids(primary.pid)];
      return { nodeCpu: pids.map(procCpuSeconds), redisCpu: redis.cpuSeconds(), loopDelayMax: NaN, gcMs: NaN, gcMaxMs: NaN, frames: null, mem: null };
    },
    stop: async () => {
      if (primary.exitCode === null && primary.signalCode === null) {
        const t = setTimeout(() => primary.kill('SIGKILL'), 10000);
        primary.kill('SIGTERM');
        await exited;
        clearTimeout(t);
      }
      await redis.stop();
    },
  };
}

/** With `o.profile` (a directory): V8 CPU profiling of a server process, written there when it exits; then `o.serverFlags` (V8 flags). */
function profArgs(o, name) {
  const extra = String(o.serverFlags ?? '').split(/\s+/).filter(Boolean);
  return [...(o.profile ? ['--cpu-prof', '--cpu-prof-dir', o.profile, '--cpu-prof-name', `${name}-${Date.now()}.cpuprofile`] : []), ...extra];
}

/** Pids of the direct children of `pid`, from /proc/<each>/stat's ppid field. */
export function childPids(pid) {
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      /* exited meanwhile */
    }
  }
  return out.sort((a, b) => a - b);
}

/** Resolves once something accepts on `port`; rejects if `exited` settles first or time runs out. */
async function waitPort(port, exited, timeoutMs) {
  let gone = false;
  exited.then(() => (gone = true));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (gone) throw new Error('the server CLI exited before listening');
    const ok = await new Promise((r) => {
      const s = createConnection({ host: '127.0.0.1', port });
      s.once('error', () => r(false));
      s.once('connect', () => (s.destroy(), r(true)));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`the server CLI did not listen on ${port} within ${timeoutMs} ms`);
}
