// Connections benchmark: M logged-in clients keeping alive, spread over several load processes, against
// the reference server and, in the same run, against the raw ws relay (bare sockets, the same heartbeat
// interval). Reports the login rate while ramping up, server RSS and V8 heap per connection (after a
// forced GC), server CPU per 1000 heartbeats (net of the empty server's own CPU), and, for our server, the time until every client is back
// online after the server is killed and started again (the SDK's full-jitter backoff spreads the
// re-logins). Prints a table and writes a JSON report; it never passes or fails.
//
//   npm run bench:connections -- [--clients 2000] [--loaders 2] [--keep-alive 5000] [--source-addresses 1] [--marginal] [--out file]
// One process holds at most about 20,000 sockets here: see bench/README.md for bigger runs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuSeconds, parseFlags, requireBuild, ROOT, sleep, startChild, summarize, table, writeReport } from './lib/common.mjs';

const flags = parseFlags(process.argv.slice(2), {
  clients: 2000,
  loaders: 2,
  concurrency: 100,
  keepAlive: 5000,
  measure: 15000,
  idleMeasure: 3000,
  targets: 'ours,raw',
  restart: true,
  minDelay: 1000,
  maxDelay: 30000,
  restartTimeout: 120000,
  sourceAddresses: 1,
  pin: true,
  snapshot: '',
  serverFlags: '',
  settle: 0,
  marginal: false,
  out: '',
});
requireBuild();
if (flags.clients > 19500 || flags.clients / flags.loaders > 19000) {
  console.warn(`warning: a process here holds at most about 20,000 sockets (the ulimit -n cap); ${flags.clients} clients need a higher limit for the server and more --loaders`);
}
if (flags.clients > 25000 && flags.sourceAddresses <= 1) {
  console.warn('warning: one source address has about 28,000 ephemeral ports towards the server: add --source-addresses 4');
}

const serverScript = join(ROOT, 'bench/lib/server-child.mjs');
const loadScript = join(ROOT, 'bench/lib/conn-load.mjs');
const MB = 1024 * 1024;

function startServer(target, options) {
  const server = startChild(serverScript, [target, JSON.stringify(options)], { cpus: flags.pin ? '1' : null, execArgv: ['--expose-gc', ...flags.serverFlags.split(/\s+/).filter(Boolean)] });
  return server.waitFor((m) => m.type === 'ready').then((ready) => ({ server, ...ready }));
}

async function benchTarget(target) {
  const dataDir = target === 'ours' ? mkdtempSync(join(tmpdir(), 'im-bench-conn-')) : null;
  let { server, port } = await startServer(target, { dataDir });
  const url = `ws://127.0.0.1:${port}/websocket`;
  const idle = await server.request({ cmd: 'stats', gc: true, smaps: true, settleMs: flags.settle });
  if (flags.snapshot) await server.request({ cmd: 'snapshot', path: join(flags.snapshot, `${target}-empty.heapsnapshot`) });
  await sleep(flags.idleMeasure);
  const idleEnd = await server.request({ cmd: 'stats' });
  const idleCores = cpuSeconds(idle.cpu, idleEnd.cpu) / (flags.idleMeasure / 1000);
  const loaders = Array.from({ length: flags.loaders }, () => startChild(loadScript, [], { cpus: flags.pin ? '0' : null }));
  await Promise.all(loaders.map((l) => l.waitFor((m) => m.type === 'ready')));
  const ids = loaders.map(() => []);
  for (let i = 0; i < flags.clients; i++) ids[i % flags.loaders].push(`${target}-c${i}`);

  // With --marginal the ramp runs in two halves with the server measured (after a GC) between them, so the
  // second half's connections alone are costed: what grows with traffic, not with connections (V8's young
  // generation, compiled code, caches) is in both points and cancels out.
  const phases = flags.marginal ? [ids.map((l) => l.slice(0, Math.ceil(l.length / 2))), ids.map((l) => l.slice(Math.ceil(l.length / 2)))] : [ids];
  const ramp = [];
  let rampMs = 0;
  let rampCpu = 0;
  let half = null;
  let halfConnected = 0;
  for (const [k, phase] of phases.entries()) {
    if (k > 0) {
      await sleep(Math.min(flags.keepAlive, 5000));
      half = await server.request({ cmd: 'stats', gc: true });
      halfConnected = phases[0].reduce((a, l) => a + l.length, 0) - ramp.reduce((a, r) => a + r.failures, 0);
    }
    const phaseStart = await server.request({ cmd: 'stats' });
    const t0 = Date.now();
    const results = await Promise.all(
      loaders.map((l, i) =>
        l.request({ cmd: 'setup', kind: target, url, ids: phase[i], concurrency: flags.concurrency, keepAliveMs: flags.keepAlive, minDelayMs: flags.minDelay, maxDelayMs: flags.maxDelay, sourceAddresses: flags.sourceAddresses }),
      ),
    );
    rampMs += Date.now() - t0;
    const phaseEnd = await server.request({ cmd: 'stats' });
    rampCpu += cpuSeconds(phaseStart.cpu, phaseEnd.cpu);
    ramp.push(...results);
  }
  const failures = ramp.reduce((a, r) => a + r.failures, 0);
  const connected = flags.clients - failures;
  const logins = summarize(ramp.flatMap((r) => r.loginMs));
  if (failures > 0) console.log(`  ${target}: ${failures} logins failed, first: ${ramp.find((r) => r.firstFailure)?.firstFailure}`);

  await sleep(Math.min(flags.keepAlive, 5000));
  const full = await server.request({ cmd: 'stats', gc: true, smaps: true, settleMs: flags.settle });
  if (flags.snapshot) await server.request({ cmd: 'snapshot', path: join(flags.snapshot, `${target}-full.heapsnapshot`) });
  const s0 = await server.request({ cmd: 'stats' });
  await sleep(flags.measure);
  const s1 = await server.request({ cmd: 'stats' });
  const beats = s1.frames.in - s0.frames.in;
  const hbCpu = cpuSeconds(s0.cpu, s1.cpu);
  const row = {
    target,
    clients: connected,
    serverConnections: full.connections,
    rampSec: rampMs / 1000,
    loginRate: connected / (rampMs / 1000),
    loginP50: logins.p50,
    loginP99: logins.p99,
    serverCpuMsPerLogin: (rampCpu / connected) * 1000,
    serverCoresDuringRamp: rampCpu / (rampMs / 1000),
    rssMiB: full.mem.rss / MB,
    rssPerConnKiB: (full.mem.rss - idle.mem.rss) / connected / 1024,
    heapPerConnKiB: (full.mem.heapUsed - idle.mem.heapUsed) / connected / 1024,
    externalPerConnKiB: (full.mem.external - idle.mem.external) / connected / 1024,
    arrayBuffersPerConnKiB: (full.mem.arrayBuffers - idle.mem.arrayBuffers) / connected / 1024,
    // The V8 heap's committed size (all spaces) and the young generation's, empty and full: a young
    // generation grown by traffic shows in RSS without being per-connection state.
    heapCommittedMiB: [idle.mem.heapTotal / MB, full.mem.heapTotal / MB],
    newSpaceMiB: [idle.heapSpaces?.new_space?.physical / MB, full.heapSpaces?.new_space?.physical / MB],
    // Resident KiB per connection by kind of mapping (Linux), and RSS once more at the end of the keep-alive measurement.
    smapsPerConnKiB: full.smaps && idle.smaps ? Object.fromEntries(Object.keys(full.smaps).map((k) => [k, (full.smaps[k] - idle.smaps[k]) / connected])) : null,
    // With --marginal: the cost of the second half's connections alone (see above).
    marginalRssPerConnKiB: half ? (full.mem.rss - half.mem.rss) / (connected - halfConnected) / 1024 : null,
    marginalHeapPerConnKiB: half ? (full.mem.heapUsed - half.mem.heapUsed) / (connected - halfConnected) / 1024 : null,
    rssSettledPerConnKiB: full.settled ? (full.settled.mem.rss - idle.settled.mem.rss) / connected / 1024 : null,
    rssEndPerConnKiB: (s1.mem.rss - idle.mem.rss) / connected / 1024,
    heartbeatsPerSec: beats / (flags.measure / 1000),
    cpuPer1000Heartbeats: beats > 0 ? ((hbCpu - idleCores * (flags.measure / 1000)) / beats) * 1000 : NaN,
    emptyServerCores: idleCores,
    keepAliveServerCores: hbCpu / (flags.measure / 1000),
    // The server's GC during the keep-alive measurement (pauses on its main thread, and full collections):
    // what moves its CPU per heartbeat from run to run.
    keepAliveGcMs: s1.loopDelay?.gcMs ?? null,
    keepAliveGcMajor: s1.loopDelay?.gcMajor ?? null,
  };
  console.log(`  ${target}: ${connected} clients in ${row.rampSec.toFixed(1)} s, ${row.rssPerConnKiB.toFixed(2)} KiB RSS/conn, ${row.cpuPer1000Heartbeats.toFixed(4)} CPU s per 1000 heartbeats`);
  const kib = (v) => (Number.isFinite(v) ? v.toFixed(2) : '?');
  console.log(
    `  ${target}: per connection: heap ${kib(row.heapPerConnKiB)}, external ${kib(row.externalPerConnKiB)} (array buffers ${kib(row.arrayBuffersPerConnKiB)}) KiB; ` +
      (row.rssSettledPerConnKiB !== null ? `RSS ${kib(row.rssSettledPerConnKiB)} KiB ${flags.settle} ms after the GC, ` : '') +
      `RSS ${kib(row.rssEndPerConnKiB)} KiB at the end of the keep-alive measurement; resident by mapping ` +
      (row.smapsPerConnKiB ? Object.entries(row.smapsPerConnKiB).map(([k, v]) => `${k} ${kib(v)}`).join(', ') : '?') +
      (row.marginalRssPerConnKiB !== null ? `; the second half's connections alone: RSS ${kib(row.marginalRssPerConnKiB)}, heap ${kib(row.marginalHeapPerConnKiB)} KiB each` : '') +
      `; V8 committed ${row.heapCommittedMiB.map((v) => v.toFixed(1)).join(' -> ')} MiB, new space ${row.newSpaceMiB.map((v) => kib(v)).join(' -> ')} MiB`,
  );

  if (target === 'ours' && flags.restart) {
    await server.kill();
    const killedAt = Date.now();
    ({ server } = await startServer(target, { dataDir, port }));
    const upMs = Date.now() - killedAt;
    let online = 0;
    while (Date.now() - killedAt < flags.restartTimeout) {
      const counts = await Promise.all(loaders.map((l) => l.request({ cmd: 'online' })));
      online = counts.reduce((a, c) => a + c.online, 0);
      if (online >= connected) break;
      await sleep(250);
    }
    const back = await Promise.all(loaders.map((l) => l.request({ cmd: 'backTimes', sinceMs: killedAt })));
    const times = back.flatMap((b) => b.backAt).filter((t) => t > 0).map((t) => t - killedAt);
    const attempts = back.flatMap((b) => b.attempts);
    const buckets = new Map();
    for (const t of times) buckets.set(Math.floor(t / 100), (buckets.get(Math.floor(t / 100)) ?? 0) + 1);
    const perSecond = (list) => {
      const out = [];
      for (const t of list) out[Math.floor(t / 1000)] = (out[Math.floor(t / 1000)] ?? 0) + 1;
      return Array.from(out, (n) => n ?? 0);
    };
    const tries = back.flatMap((b) => b.attemptAt).map((t) => t - killedAt);
    const tryBuckets = new Map();
    for (const t of tries) tryBuckets.set(Math.floor(t / 100), (tryBuckets.get(Math.floor(t / 100)) ?? 0) + 1);
    const s = summarize(times);
    row.restart = {
      serverUpMs: upMs,
      backOnline: times.length,
      of: connected,
      p50Ms: s.p50,
      p90Ms: s.p90,
      p99Ms: s.p99,
      allBackMs: times.length === connected ? s.max : null,
      peakLoginsPerSec: Math.max(0, ...buckets.values()) * 10,
      meanAttempts: attempts.reduce((a, b) => a + b, 0) / Math.max(1, attempts.length),
      maxAttempts: Math.max(0, ...attempts),
      attemptsPerSecond: perSecond(tries),
      peakAttemptsPerSec: Math.max(0, ...tryBuckets.values()) * 10,
      backPerSecond: perSecond(times),
    };
    row.allBackSec = row.restart.allBackMs === null ? 'timeout' : row.restart.allBackMs / 1000;
    row.peakRelogins = row.restart.peakLoginsPerSec;
    row.peakAttempts = row.restart.peakAttemptsPerSec;
    console.log(`  ${target}: server up again after ${upMs} ms; ${times.length}/${connected} back online, p50 ${s.p50} ms, p99 ${s.p99} ms, all ${row.allBackSec} s; peak ${row.peakAttempts} attempts/s, ${row.peakRelogins} re-logins/s (100 ms buckets)`);
    console.log(`  ${target}: attempts per second after the kill: ${row.restart.attemptsPerSecond.join(' ')}; back online per second: ${row.restart.backPerSecond.join(' ')}`);
  }

  await Promise.all(loaders.map((l) => l.stop()));
  await server.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  return row;
}

const rows = [];
for (const target of flags.targets.split(',')) {
  console.log(`${target}: ${flags.clients} clients over ${flags.loaders} load processes, keep-alive every ${flags.keepAlive} ms`);
  rows.push(await benchTarget(target));
}
console.log(
  '\n' +
    table(rows, [
      { key: 'target', title: 'target' },
      { key: 'clients', title: 'clients' },
      { key: 'loginRate', title: 'logins/s' },
      { key: 'loginP50', title: 'login p50 ms' },
      { key: 'loginP99', title: 'login p99 ms' },
      { key: 'serverCpuMsPerLogin', title: 'srv CPU ms/login' },
      { key: 'rssPerConnKiB', title: 'RSS KiB/conn' },
      { key: 'heapPerConnKiB', title: 'heap KiB/conn' },
      { key: 'heartbeatsPerSec', title: 'beats/s' },
      { key: 'cpuPer1000Heartbeats', title: 'CPU s/1k beats' },
      { key: 'keepAliveGcMs', title: 'GC ms (beats)' },
      { key: 'keepAliveGcMajor', title: 'full GCs' },
      { key: 'allBackSec', title: 'all back s' },
      { key: 'peakAttempts', title: 'peak attempts/s' },
      { key: 'peakRelogins', title: 'peak relogins/s' },
    ]),
);
const file = writeReport('connections', { config: flags, results: rows }, flags.out);
console.log(`\nreport: ${file}`);
