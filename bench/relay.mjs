// Relay benchmark: N sender/receiver pairs of our SDK, QoS on, through the reference server, then the
// same load through a minimal raw ws relay, in the same run; optionally through cluster layouts too
// (two nodes on Redis with every message crossing nodes, `--workers`, ...: see lib/relay-targets.mjs).
// Closed loop first (saturation), then open loop at fixed offered rates (by default fractions of our
// saturation rate, the same for every target). Server and load generators are separate processes; server CPU comes from the server's own
// process.cpuUsage(). Prints a table and writes a JSON report; it never passes or fails.
//
//   npm run bench:relay -- [--pairs 50] [--loaders N] [--duration 5000] [--rates 1000,2000] [--repeat 3] [--out file]
//   npm run bench:cluster-relay     (= --targets ours,cluster2,raw)
// With --repeat, each target runs that many times (alternating) and every figure is the median.
// `--clients raw` drives our server with bare sockets sending MobileIMSDK frames (QoS and ACKs, no SDK),
// the same clients the raw relay always gets (`npm run bench:frames`). `--profile DIR` runs each server
// child under `node --cpu-prof` and leaves the profiles in DIR. `--targets ours,rawsdk,raw` adds the raw
// relay driven by the SDK clients, to tell the clients' share of a tail from the server's. `--hold-ms N`
// sets our single server's `storeHoldMs` (how long a put to an online receiver waits for its ACK before
// it is written): a small one has a fast box commit as many puts as a slow box does with the default.
// `--load-profile DIR` does for the load processes what `--profile` does for the servers.
// Load processes: by default one per core they may run on (one when pinned to CPU 0), at most one per
// pair. Two processes sharing one core take turns in slices of milliseconds, and each turn's wait lands
// in the latencies of the messages whose ends live in the process that waits.
import { join } from 'node:path';
import { parseFlags, requireBuild, ROOT, startChild, summarize, table, writeReport } from './lib/common.mjs';
import { loadCpus, loaderCount, startTarget } from './lib/relay-targets.mjs';

const flags = parseFlags(process.argv.slice(2), {
  pairs: 50,
  loaders: 0,
  window: 8,
  warmup: 1000,
  duration: 5000,
  drain: 4000,
  rates: [],
  fractions: [0.1, 0.25, 0.5, 0.75],
  targets: 'ours,raw',
  store: 'disk',
  nodeCpus: '1,1',
  recheckMs: 0,
  pin: true,
  repeat: 1,
  clients: 'sdk',
  profile: '',
  serverFlags: '',
  dedupMax: 0,
  holdMs: -1,
  loadProfile: '',
  out: '',
});
if (flags.clients !== 'sdk' && flags.clients !== 'raw') throw new Error(`--clients is sdk or raw, not ${flags.clients}`);
// A load process needs a pair: one without would wait for ever in the saturation step and crash in the next.
if (!Number.isInteger(flags.loaders) || flags.loaders < 0 || flags.loaders > flags.pairs) throw new Error(`--loaders is a whole number of processes, at most --pairs (${flags.pairs}), not ${flags.loaders}`);
if (!Number.isInteger(flags.dedupMax) || flags.dedupMax < 0) throw new Error(`--dedup-max is the SDK clients' receive window in messages (0: the SDK's default), not ${flags.dedupMax}`);
if (!Number.isInteger(flags.holdMs) || flags.holdMs < -1 || flags.holdMs > 1000) throw new Error(`--hold-ms is our server's storeHoldMs, 0–1000 (-1: its default), not ${flags.holdMs}`);
if (flags.dedupMax > 0 && flags.clients === 'raw') throw new Error('--dedup-max sets the SDK clients\' receive window; --clients raw runs none');
if (flags.clients === 'raw' && flags.targets.split(',').includes('rawsdk')) throw new Error('--targets rawsdk is the raw relay with SDK clients; it has no meaning with --clients raw');
requireBuild();
// Interrupted: exit through process.exit, so the private redis-server is killed too (its 'exit' hook).
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130));

const loadScript = join(ROOT, 'bench/lib/relay-load.mjs');

/** CPU seconds per node between two stats snapshots, and Redis's. */
function cpuBetween(a, b) {
  return { nodes: b.nodeCpu.map((v, i) => v - (a.nodeCpu[i] ?? 0)), redis: b.redisCpu - a.redisCpu };
}

/**
 * Runs the saturation step, then one open-loop step per offered rate, against one target. `ratesFor`
 * gets the saturation throughput and returns the offered rates.
 */
async function benchTarget(target, ratesFor) {
  const servers = await startTarget(target, flags);
  const loadArgs = flags.loadProfile ? ['--cpu-prof', '--cpu-prof-dir', flags.loadProfile] : [];
  const loaders = Array.from({ length: loaderCount(target, flags) }, () => startChild(loadScript, [], { cpus: loadCpus(target, flags.pin), execArgv: loadArgs }));
  await Promise.all(loaders.map((l) => l.waitFor((m) => m.type === 'ready')));
  const share = loaders.map(() => []);
  for (let i = 0; i < flags.pairs; i++) {
    share[i % loaders.length].push({ a: `${target}-a${i}`, b: `${target}-b${i}`, aUrl: servers.url(i, 0), bUrl: servers.url(i, 1) });
  }
  await Promise.all(loaders.map((l, i) => l.request({ cmd: 'setup', kind: target === 'raw' || flags.clients === 'raw' ? 'raw' : 'sdk', pairs: share[i], dedupMax: flags.dedupMax })));

  const steps = [];
  const plan = [{ name: 'saturation', rate: 0 }];
  for (let k = 0; k < plan.length; k++) {
    const step = plan[k];
    // The stall figure, like the latencies, leaves out the warm-up (a cold server's first turns).
    const s0 = await servers.stats({ lagFromMs: flags.warmup });
    const t0 = Date.now();
    const parts = await Promise.all(
      loaders.map((l) =>
        l.request({ cmd: 'run', rate: step.rate / loaders.length, window: flags.window, warmupMs: flags.warmup, durationMs: flags.duration, drainMs: flags.drain }),
      ),
    );
    const wallSec = (Date.now() - t0) / 1000;
    const s1 = await servers.stats();
    const sum = (k) => parts.reduce((a, p) => a + p[k], 0);
    const lat = summarize(parts.flatMap((p) => p.latencies));
    const cpu = cpuBetween(s0, s1);
    const serverCpu = cpu.nodes.reduce((a, b) => a + b, 0);
    const delivered = sum('delivered');
    const per1000 = (sec) => (delivered > 0 ? (sec / delivered) * 1000 : NaN);
    const row = {
      target,
      step: step.name,
      offered: step.rate,
      loaders: loaders.length,
      nodes: servers.nodes,
      sent: sum('sent'),
      delivered,
      refused: sum('refused'),
      undelivered: sum('sent') - sum('refused') - delivered,
      throughput: sum('deliveredInWindow') / (flags.duration / 1000),
      p50: lat.p50,
      p90: lat.p90,
      p99: lat.p99,
      max: lat.max,
      serverCpuSec: serverCpu,
      serverCpuPer1000: per1000(serverCpu),
      nodeCpuPer1000: cpu.nodes.map((c) => +per1000(c).toFixed(4)),
      nodeCpuList: cpu.nodes.map((c) => per1000(c).toFixed(3)).join('/'),
      redisCpuPer1000: per1000(cpu.redis),
      serverCores: serverCpu / wallSec,
      redisCores: cpu.redis / wallSec,
      loadCores: sum('loadCpuSec') / wallSec,
      // The load processes' own GC pauses while measured messages were in flight (all of them, ms), the
      // longest one, how many were full collections, and the longest event-loop stall of any of them.
      loadGcMs: sum('gcMs'),
      loadGcMaxMs: Math.max(...parts.map((p) => p.gcMaxMs)),
      loadGcMajor: sum('gcMajor'),
      loadStallMs: Math.max(...parts.map((p) => p.stallMs)),
      loopDelayMax: s1.loopDelayMax,
      // The server processes' GC pauses over the same span as the stall figure (summed over nodes).
      serverGcMs: s1.gcMs,
      serverGcMaxMs: s1.gcMaxMs,
      serverHeapMiB: s1.mem ? s1.mem.heapUsed / 1048576 : NaN,
      serverRssMiB: s1.mem ? s1.mem.rss / 1048576 : NaN,
      framesIn: s1.frames ? s1.frames.in - s0.frames.in : NaN,
      framesOut: s1.frames ? s1.frames.out - s0.frames.out : NaN,
    };
    steps.push(row);
    if (k === 0) plan.push(...ratesFor(row.throughput).map((r) => ({ name: `${r}/s`, rate: r })));
    const redisNote = Number.isFinite(row.redisCpuPer1000) ? `, Redis ${row.redisCpuPer1000.toFixed(3)}` : '';
    console.log(`  ${target} ${step.name}: ${Math.round(row.throughput)} msg/s, p50 ${row.p50} ms, p99 ${row.p99} ms, server ${row.serverCpuPer1000.toFixed(3)} CPU s per 1000 (per node ${row.nodeCpuList}${redisNote})`);
  }
  await Promise.all(loaders.map((l) => l.stop()));
  await servers.stop();
  return steps;
}

/** Per step, the median of every numeric field over the repeated runs (the first run's for the rest). */
function medianSteps(runs) {
  return runs[0].map((first, i) => {
    const out = { ...first, runs: runs.length };
    for (const [k, v] of Object.entries(first)) {
      if (typeof v !== 'number') continue;
      const vals = runs.map((r) => r[i][k]).sort((a, b) => a - b);
      out[k] = vals[Math.floor((vals.length - 1) / 2)];
    }
    return out;
  });
}

const targets = flags.targets.split(',');
const results = {};
let rates = flags.rates.filter((r) => r > 0);
const runs = Object.fromEntries(targets.map((t) => [t, []]));
for (let round = 0; round < flags.repeat; round++) {
  for (const target of targets) {
    console.log(`${target}: ${flags.pairs} pairs (${target === 'raw' ? 'raw' : flags.clients} clients) over ${loaderCount(target, flags)} load processes${flags.repeat > 1 ? `, run ${round + 1} of ${flags.repeat}` : ''}`);
    runs[target].push(
      await benchTarget(target, (saturated) => {
        if (rates.length === 0) rates = flags.fractions.map((f) => Math.max(100, Math.round((saturated * f) / 100) * 100));
        return rates;
      }),
    );
  }
}
for (const target of targets) results[target] = medianSteps(runs[target]);

const rows = Object.values(results).flat();
// Each target beside its baseline in the same run: raw for everything; a cluster layout also beside the
// single process it should be compared with (cluster2 and cluster1 beside ours, nodes2 beside nodes1,
// workers2 beside workers1), and ours beside rawsdk (the same SDK clients through the raw relay):
// throughput ratio, CPU ratio, the p99 difference in ms and the p99 ratio.
const baseOf = { ours: 'rawsdk', cluster1: 'ours', cluster2: 'ours', nodes2: 'nodes1', workers2: 'workers1' };
for (const [target, steps] of Object.entries(results)) {
  for (const r of steps) {
    const raw = (results.raw ?? []).find((b) => b.step === r.step);
    if (raw && target !== 'raw') {
      r.cpuRatio = r.serverCpuPer1000 / raw.serverCpuPer1000;
      r.p99Ratio = r.p99 / raw.p99;
      if (r.step === 'saturation') r.throughputRatio = r.throughput / raw.throughput;
    }
    const base = (results[baseOf[target]] ?? []).find((b) => b.step === r.step);
    if (!base) continue;
    r.baseline = baseOf[target];
    r.cpuVsBase = r.serverCpuPer1000 / base.serverCpuPer1000;
    r.p99MinusBase = r.p99 - base.p99;
    r.p99VsBase = r.p99 / base.p99;
    if (r.step === 'saturation') r.throughputVsBase = r.throughput / base.throughput;
  }
}

console.log('\n' + table(rows, [
  { key: 'target', title: 'target' },
  { key: 'step', title: 'step' },
  { key: 'throughput', title: 'msg/s' },
  { key: 'p50', title: 'p50 ms' },
  { key: 'p90', title: 'p90 ms' },
  { key: 'p99', title: 'p99 ms' },
  { key: 'max', title: 'max ms' },
  { key: 'serverCpuPer1000', title: 'srv CPU s/1k' },
  { key: 'nodeCpuList', title: 'per node' },
  { key: 'redisCpuPer1000', title: 'Redis s/1k' },
  { key: 'serverCores', title: 'srv cores' },
  { key: 'loadCores', title: 'load cores' },
  { key: 'loopDelayMax', title: 'srv stall ms' },
  { key: 'serverGcMs', title: 'srv GC ms' },
  { key: 'loadGcMs', title: 'load GC ms' },
  { key: 'loadGcMaxMs', title: 'load GC max' },
  { key: 'loadStallMs', title: 'load stall ms' },
  { key: 'refused', title: 'refused' },
  { key: 'undelivered', title: 'undeliv.' },
  { key: 'cpuRatio', title: 'CPU vs raw' },
  { key: 'throughputRatio', title: 'tput vs raw' },
  { key: 'baseline', title: 'vs' },
  { key: 'throughputVsBase', title: 'tput vs' },
  { key: 'cpuVsBase', title: 'CPU vs' },
  { key: 'p99MinusBase', title: 'p99 - vs ms' },
  { key: 'p99VsBase', title: 'p99 / vs' },
]));
const file = writeReport('relay', { config: { ...flags, rates }, steps: rows }, flags.out);
console.log(`\nreport: ${file}`);
