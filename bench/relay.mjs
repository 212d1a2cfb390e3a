// Relay benchmark: N sender/receiver pairs of our SDK, QoS on, through the reference server, then the
// same load through a minimal raw ws relay, in the same run. Closed loop first (saturation), then open
// loop at fixed offered rates (by default fractions of our saturation rate, the same for both targets).
// Server and load generators are separate processes; server CPU comes from the server's own
// process.cpuUsage(). Prints a table and writes a JSON report; it never passes or fails.
//
//   npm run bench:relay -- [--pairs 50] [--loaders 2] [--duration 5000] [--rates 1000,2000] [--repeat 3] [--out file]
// With --repeat, each target runs that many times (alternating) and every figure is the median.
// `--clients raw` drives our server with bare sockets sending MobileIMSDK frames (QoS and ACKs, no SDK),
// the same clients the raw relay always gets (`npm run bench:frames`). `--profile DIR` runs each server
// child under `node --cpu-prof` and leaves the profiles in DIR.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuSeconds, parseFlags, requireBuild, ROOT, startChild, summarize, table, writeReport } from './lib/common.mjs';

const flags = parseFlags(process.argv.slice(2), {
  pairs: 50,
  loaders: 2,
  window: 8,
  warmup: 1000,
  duration: 5000,
  drain: 4000,
  rates: [],
  fractions: [0.1, 0.25, 0.5, 0.75],
  targets: 'ours,raw',
  store: 'disk',
  pin: true,
  repeat: 1,
  clients: 'sdk',
  profile: '',
  out: '',
});
if (flags.clients !== 'sdk' && flags.clients !== 'raw') throw new Error(`--clients is sdk or raw, not ${flags.clients}`);
requireBuild();

const serverScript = join(ROOT, 'bench/lib/server-child.mjs');
const loadScript = join(ROOT, 'bench/lib/relay-load.mjs');

/**
 * Runs the saturation step, then one open-loop step per offered rate, against one target. `ratesFor`
 * gets the saturation throughput and returns the offered rates.
 */
async function benchTarget(target, ratesFor) {
  const dataDir = flags.store === 'disk' && target === 'ours' ? mkdtempSync(join(tmpdir(), 'im-bench-')) : null;
  const execArgv = flags.profile ? ['--cpu-prof', '--cpu-prof-dir', flags.profile, '--cpu-prof-name', `${target}-${Date.now()}.cpuprofile`] : [];
  const server = startChild(serverScript, [target, JSON.stringify({ dataDir })], { cpus: flags.pin ? '1' : null, execArgv });
  const { port } = await server.waitFor((m) => m.type === 'ready');
  const url = `ws://127.0.0.1:${port}/websocket`;
  const loaders = Array.from({ length: flags.loaders }, () => startChild(loadScript, [], { cpus: flags.pin ? '0' : null }));
  await Promise.all(loaders.map((l) => l.waitFor((m) => m.type === 'ready')));
  const share = loaders.map(() => []);
  for (let i = 0; i < flags.pairs; i++) share[i % flags.loaders].push([`${target}-a${i}`, `${target}-b${i}`]);
  await Promise.all(loaders.map((l, i) => l.request({ cmd: 'setup', kind: target === 'raw' || flags.clients === 'raw' ? 'raw' : 'sdk', url, pairIds: share[i] })));

  const steps = [];
  const plan = [{ name: 'saturation', rate: 0 }];
  for (let k = 0; k < plan.length; k++) {
    const step = plan[k];
    const s0 = await server.request({ cmd: 'stats' });
    const t0 = Date.now();
    const parts = await Promise.all(
      loaders.map((l) =>
        l.request({ cmd: 'run', rate: step.rate / flags.loaders, window: flags.window, warmupMs: flags.warmup, durationMs: flags.duration, drainMs: flags.drain }),
      ),
    );
    const wallSec = (Date.now() - t0) / 1000;
    const s1 = await server.request({ cmd: 'stats' });
    const sum = (k) => parts.reduce((a, p) => a + p[k], 0);
    const lat = summarize(parts.flatMap((p) => p.latencies));
    const serverCpu = cpuSeconds(s0.cpu, s1.cpu);
    const delivered = sum('delivered');
    const row = {
      target,
      step: step.name,
      offered: step.rate,
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
      serverCpuPer1000: delivered > 0 ? (serverCpu / delivered) * 1000 : NaN,
      serverCores: serverCpu / wallSec,
      loadCores: sum('loadCpuSec') / wallSec,
      loopDelayP99: s1.loopDelay.p99Ms,
      loopDelayMax: s1.loopDelay.maxMs,
      serverHeapMiB: s1.mem.heapUsed / 1048576,
      serverRssMiB: s1.mem.rss / 1048576,
      framesIn: s1.frames.in - s0.frames.in,
      framesOut: s1.frames.out - s0.frames.out,
    };
    steps.push(row);
    if (k === 0) plan.push(...ratesFor(row.throughput).map((r) => ({ name: `${r}/s`, rate: r })));
    console.log(`  ${target} ${step.name}: ${Math.round(row.throughput)} msg/s, p50 ${row.p50} ms, p99 ${row.p99} ms, server ${row.serverCpuPer1000.toFixed(3)} CPU s per 1000`);
  }
  await Promise.all(loaders.map((l) => l.stop()));
  await server.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
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
    console.log(`${target}: ${flags.pairs} pairs (${target === 'raw' ? 'raw' : flags.clients} clients) over ${flags.loaders} load processes${flags.repeat > 1 ? `, run ${round + 1} of ${flags.repeat}` : ''}`);
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
const ours = results.ours ?? [];
const raw = results.raw ?? [];
for (const r of ours) {
  const base = raw.find((b) => b.step === r.step);
  if (!base) continue;
  r.cpuRatio = r.serverCpuPer1000 / base.serverCpuPer1000;
  r.p99Ratio = r.p99 / base.p99;
  if (r.step === 'saturation') r.throughputRatio = r.throughput / base.throughput;
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
  { key: 'serverCores', title: 'srv cores' },
  { key: 'loadCores', title: 'load cores' },
  { key: 'loopDelayMax', title: 'srv stall ms' },
  { key: 'refused', title: 'refused' },
  { key: 'undelivered', title: 'undeliv.' },
  { key: 'cpuRatio', title: 'CPU vs raw' },
  { key: 'throughputRatio', title: 'tput vs raw' },
]));
const file = writeReport('relay', { config: { ...flags, rates }, steps: rows }, flags.out);
console.log(`\nreport: ${file}`);
