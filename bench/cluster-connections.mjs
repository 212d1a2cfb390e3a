// Cluster connections benchmark: many idle logged-in SDK clients spread over several cluster nodes on one
// private redis-server (one process holds at most ~20,000 descriptors here, so 100,000 clients need at
// least 6 nodes and 6 load processes), then a node killed under fewer clients.
//
// Phase 1 (capacity): --clients log in through the SDK's url list (every node's URL: a random start per
// client), bound round-robin to --source-addresses loopback addresses (127.0.0.2, ...) for the ephemeral
// ports. Reports the login rate, RSS and V8 heap per connection (each node's growth over its empty state,
// after forced GCs), Redis's RSS per connection, the kernel's slab growth, and server CPU per 1000
// heartbeats over one full keep-alive interval (every client beats once in it), net of the empty nodes'.
// Phase 2 (failover): --kill-clients log in over the first --kill-nodes nodes; one of them is SIGKILLed;
// every client it held must come back online on the others: when each dropped and when it was back.
// Prints tables and writes a JSON report; it never passes or fails. Nothing is pinned: every node, the
// load processes and Redis share the box's cores. The clients beat every --keep-alive ms but give the link
// up only after --keep-alive-timeout, and the nodes expire a session after MODE_120S's 125 s: with tens of
// processes on two cores a load process's timers run seconds late, and the tight MobileIMSDK margins
// (MODE_60S: 60 s interval, 65 s expiry) then drop healthy links and start a reconnect spiral.
//
//   npm run bench:cluster-connections -- [--clients 100000] [--nodes 7] [--loaders 7] [--source-addresses 8]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpuSeconds, parseFlags, requireBuild, ROOT, sleep, startChild, summarize, table, writeReport } from './lib/common.mjs';
import { startRedis } from './lib/redis-server.mjs';

const flags = parseFlags(process.argv.slice(2), {
  clients: 100000,
  nodes: 7,
  loaders: 7,
  sourceAddresses: 8,
  concurrency: 50,
  senseMode: 7,
  keepAlive: 60000,
  keepAliveTimeout: 120000,
  idleMeasure: 3000,
  killClients: 10000,
  killNodes: 3,
  killLoaders: 2,
  killTimeout: 60000,
  minDelay: 1000,
  maxDelay: 30000,
  out: '',
});
requireBuild();
// Interrupted: exit through process.exit, so the private redis-server is killed too (its 'exit' hook).
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130));
const perNode = flags.clients / flags.nodes;
const perLoader = flags.clients / flags.loaders;
if (perNode > 18000 || perLoader > 18000) {
  console.warn(`warning: ${Math.round(perNode)} clients per node, ${Math.round(perLoader)} per load process; one process holds at most ~20,000 descriptors here: add --nodes / --loaders`);
}
if (flags.clients / flags.sourceAddresses > 25000) console.warn('warning: one source address has ~28,000 ephemeral ports: add --source-addresses');

const serverScript = join(ROOT, 'bench/lib/server-child.mjs');
const loadScript = join(ROOT, 'bench/lib/conn-load.mjs');
const KiB = 1024;
const MiB = 1024 * 1024;

/** Kernel slab memory in bytes, from /proc/meminfo (sockets live there, outside every RSS). */
function slabBytes() {
  const m = /^Slab:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Starts `count` cluster nodes on `redis`, each a server child with --expose-gc. */
async function startNodes(redis, count, keyPrefix) {
  const nodes = [];
  for (let i = 0; i < count; i++) {
    const options = { cluster: { redisUrl: redis.url, keyPrefix }, nodeId: `node-${i}`, senseMode: flags.senseMode };
    const child = startChild(serverScript, ['ours', JSON.stringify(options)], { execArgv: ['--expose-gc'] });
    const { port } = await child.waitFor((m) => m.type === 'ready');
    nodes.push({ child, id: options.nodeId, url: `ws://127.0.0.1:${port}/websocket` });
  }
  return nodes;
}

const stats = (nodes, gc = false) => Promise.all(nodes.map((n) => n.child.request({ cmd: 'stats', gc })));
const sumCpu = (a, b) => a.reduce((s, x, i) => s + cpuSeconds(x.cpu, b[i].cpu), 0);

/** Starts load processes and logs `ids` in over `urls` (each client gets the whole list). */
async function logIn(count, prefix, urls, loaderCount) {
  const loaders = Array.from({ length: loaderCount }, () => startChild(loadScript, []));
  await Promise.all(loaders.map((l) => l.waitFor((m) => m.type === 'ready')));
  const ids = loaders.map(() => []);
  for (let i = 0; i < count; i++) ids[i % loaderCount].push(`${prefix}${i}`);
  const t0 = Date.now();
  const ramp = await Promise.all(
    loaders.map((l, i) =>
      l.request({ cmd: 'setup', kind: 'ours', url: urls, ids: ids[i], concurrency: flags.concurrency, keepAliveMs: flags.keepAlive, keepAliveTimeoutMs: flags.keepAliveTimeout, minDelayMs: flags.minDelay, maxDelayMs: flags.maxDelay, sourceAddresses: flags.sourceAddresses }),
    ),
  );
  const rampMs = Date.now() - t0;
  const failures = ramp.reduce((a, r) => a + r.failures, 0);
  if (failures > 0) console.log(`  ${failures} logins failed, first: ${ramp.find((r) => r.firstFailure)?.firstFailure}`);
  return { loaders, rampMs, failures, connected: count - failures, logins: summarize(ramp.flatMap((r) => r.loginMs)) };
}

async function capacity(redis) {
  const nodes = await startNodes(redis, flags.nodes, `cap${Date.now()}:`);
  const idle = await stats(nodes, true);
  const redisIdleRss = redis.rssBytes();
  const slab0 = slabBytes();
  const idleCpuRedis0 = redis.cpuSeconds();
  await sleep(flags.idleMeasure);
  const idleEnd = await stats(nodes);
  const idleCores = sumCpu(idle, idleEnd) / (flags.idleMeasure / 1000);
  const idleRedisCores = (redis.cpuSeconds() - idleCpuRedis0) / (flags.idleMeasure / 1000);
  console.log(`phase 1: ${flags.clients} clients over ${flags.nodes} nodes and ${flags.loaders} load processes, ${flags.sourceAddresses} source addresses, keep-alive every ${flags.keepAlive} ms`);

  const r0 = await stats(nodes);
  const redisCpu0 = redis.cpuSeconds();
  const { loaders, rampMs, connected, failures, logins } = await logIn(flags.clients, 'c', nodes.map((n) => n.url), flags.loaders);
  const r1 = await stats(nodes);
  const rampCpu = sumCpu(r0, r1);
  const rampRedisCpu = redis.cpuSeconds() - redisCpu0;
  console.log(`  ${connected} online in ${(rampMs / 1000).toFixed(1)} s (${Math.round(connected / (rampMs / 1000))}/s), per node ${r1.map((s) => s.online).join(' ')}`);

  await sleep(5000);
  const full = await stats(nodes, true);
  const slab1 = slabBytes();
  const redisRss = redis.rssBytes();
  const s0 = await stats(nodes);
  const hb0 = redis.cpuSeconds();
  const t0 = Date.now();
  await sleep(flags.keepAlive);
  const s1 = await stats(nodes);
  const measureSec = (Date.now() - t0) / 1000;
  const beats = s1.reduce((a, s, i) => a + s.frames.in - s0[i].frames.in, 0);
  const hbCpu = sumCpu(s0, s1);
  const hbRedis = redis.cpuSeconds() - hb0;
  const grow = (k) => full.reduce((a, s, i) => a + s.mem[k] - idle[i].mem[k], 0);
  const row = {
    clients: connected,
    failures,
    nodes: flags.nodes,
    perNode: full.map((s) => s.online).join('/'),
    rampSec: rampMs / 1000,
    loginRate: connected / (rampMs / 1000),
    loginP50: logins.p50,
    loginP99: logins.p99,
    serverCpuMsPerLogin: (rampCpu / connected) * 1000,
    redisCpuMsPerLogin: (rampRedisCpu / connected) * 1000,
    serverCoresDuringRamp: rampCpu / (rampMs / 1000),
    rssPerConnKiB: grow('rss') / connected / KiB,
    heapPerConnKiB: grow('heapUsed') / connected / KiB,
    redisRssPerConnKiB: (redisRss - redisIdleRss) / connected / KiB,
    slabPerConnKiB: (slab1 - slab0) / connected / KiB,
    totalServerRssMiB: full.reduce((a, s) => a + s.mem.rss, 0) / MiB,
    heartbeatsPerSec: beats / measureSec,
    cpuPer1000Heartbeats: beats > 0 ? ((hbCpu - idleCores * measureSec) / beats) * 1000 : NaN,
    redisCpuPer1000Heartbeats: beats > 0 ? ((hbRedis - idleRedisCores * measureSec) / beats) * 1000 : NaN,
    keepAliveServerCores: hbCpu / measureSec,
    keepAliveRedisCores: hbRedis / measureSec,
    emptyNodesCores: idleCores,
    maxStallMs: Math.max(...s1.map((s) => s.loopDelay.maxMs)),
  };
  console.log(`  ${row.rssPerConnKiB.toFixed(2)} KiB RSS/conn, ${row.heapPerConnKiB.toFixed(2)} KiB heap/conn, ${Math.round(row.heartbeatsPerSec)} beats/s at ${row.keepAliveServerCores.toFixed(3)} cores (nodes) + ${row.keepAliveRedisCores.toFixed(3)} (Redis)`);
  await Promise.all(loaders.map((l) => l.stop(20000)));
  await Promise.all(nodes.map((n) => n.child.stop(20000)));
  return row;
}

async function failover(redis) {
  const nodes = await startNodes(redis, flags.killNodes, `kill${Date.now()}:`);
  console.log(`phase 2: ${flags.killClients} clients over ${flags.killNodes} nodes, then one node SIGKILLed`);
  const { loaders, connected } = await logIn(flags.killClients, 'k', nodes.map((n) => n.url), flags.killLoaders);
  await sleep(2000);
  const before = await stats(nodes);
  const victim = nodes[0];
  const held = before[0].online;
  // Clients see their sockets close before this process hears of the exit: the clock starts at the signal.
  const killedAt = Date.now();
  await victim.child.kill();
  let online = 0;
  while (Date.now() - killedAt < flags.killTimeout) {
    const counts = await Promise.all(loaders.map((l) => l.request({ cmd: 'online' })));
    online = counts.reduce((a, c) => a + c.online, 0);
    if (online >= connected && Date.now() - killedAt > 1000) break;
    await sleep(100);
  }
  const waitedMs = Date.now() - killedAt;
  const back = await Promise.all(loaders.map((l) => l.request({ cmd: 'backTimes', sinceMs: killedAt })));
  const dropped = [];
  let notBack = 0;
  for (const b of back) {
    b.droppedAt.forEach((d, i) => {
      if (d === 0) return;
      if (b.backAt[i] >= d) dropped.push(b.backAt[i] - killedAt);
      else notBack++;
    });
  }
  const attempts = back.flatMap((b) => b.attempts.filter((_, i) => b.droppedAt[i] > 0));
  await sleep(2000);
  const after = await stats(nodes.slice(1));
  const s = summarize(dropped);
  const row = {
    clients: connected,
    nodes: flags.killNodes,
    heldByKilled: held,
    connectionsOnKilled: before[0].connections,
    perNodeBefore: before.map((x) => `${x.online} users/${x.connections} conns`).join(', '),
    dropped: dropped.length + notBack,
    back: dropped.length,
    notBack,
    p50Ms: s.p50,
    p99Ms: s.p99,
    maxMs: s.max,
    onlineAtEnd: online,
    serverSessionsAfter: after.reduce((a, x) => a + x.online, 0),
    perNodeAfter: after.map((x) => x.online).join('/'),
    meanAttempts: attempts.reduce((a, b) => a + b, 0) / Math.max(1, attempts.length),
    maxAttempts: Math.max(0, ...attempts),
    waitedMs,
  };
  console.log(`  before the kill: ${row.perNodeBefore}`);
  console.log(`  killed ${victim.id} holding ${held}; ${row.back}/${row.dropped} back, p50 ${s.p50} ms, p99 ${s.p99} ms, max ${s.max} ms; sessions on the other nodes ${row.perNodeAfter}`);
  await Promise.all(loaders.map((l) => l.stop(20000)));
  await Promise.all(nodes.slice(1).map((n) => n.child.stop(20000)));
  return row;
}

const redis = await startRedis();
const report = { config: flags, redisPid: redis.pid };
try {
  if (flags.clients > 0) report.capacity = await capacity(redis);
  if (flags.killClients > 0) report.failover = await failover(redis);
} finally {
  await redis.stop();
}
if (report.capacity) {
  console.log('\n' + table([report.capacity], [
    { key: 'clients', title: 'clients' },
    { key: 'perNode', title: 'per node' },
    { key: 'loginRate', title: 'logins/s' },
    { key: 'loginP50', title: 'login p50 ms' },
    { key: 'loginP99', title: 'login p99 ms' },
    { key: 'serverCpuMsPerLogin', title: 'nodes CPU ms/login' },
    { key: 'redisCpuMsPerLogin', title: 'Redis ms/login' },
    { key: 'rssPerConnKiB', title: 'RSS KiB/conn' },
    { key: 'heapPerConnKiB', title: 'heap KiB/conn' },
    { key: 'redisRssPerConnKiB', title: 'Redis KiB/conn' },
    { key: 'slabPerConnKiB', title: 'slab KiB/conn' },
    { key: 'heartbeatsPerSec', title: 'beats/s' },
    { key: 'cpuPer1000Heartbeats', title: 'CPU s/1k beats' },
    { key: 'keepAliveServerCores', title: 'keep-alive cores' },
  ]));
}
if (report.failover) {
  console.log('\n' + table([report.failover], [
    { key: 'clients', title: 'clients' },
    { key: 'heldByKilled', title: 'on killed node' },
    { key: 'back', title: 'back' },
    { key: 'notBack', title: 'not back' },
    { key: 'p50Ms', title: 'p50 ms' },
    { key: 'p99Ms', title: 'p99 ms' },
    { key: 'maxMs', title: 'max ms' },
    { key: 'meanAttempts', title: 'attempts (mean)' },
    { key: 'maxAttempts', title: 'attempts (max)' },
    { key: 'onlineAtEnd', title: 'online at end' },
    { key: 'perNodeAfter', title: 'sessions per node after' },
  ]));
}
const file = writeReport('cluster-connections', report, flags.out);
console.log(`\nreport: ${file}`);
