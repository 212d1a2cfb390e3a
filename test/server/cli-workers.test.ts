import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createTcpServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../helpers/redis-server';
import { cliPath, ensureServerBuilt } from './child-server';
import { ackFrame, dataFrame, errorOf, login, UdpClient, WsClient, type RawClient } from './helpers';

/**
 * `--workers N` end to end: the built CLI as a primary with real worker processes sharing the ports
 * through Node's cluster module, on a private redis-server.
 */

interface Primary {
  proc: ChildProcess;
  ports: { ws: number; udp: number; http: number };
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** This run's Redis key prefix. */
  prefix: string;
}

const children: ChildProcess[] = [];
const clients: RawClient[] = [];
const dirs: string[] = [];
const blockers: Server[] = [];
let redis: RedisServer;
let runs = 0;

beforeAll(async () => {
  ensureServerBuilt();
  redis = await startRedisServer();
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const b of blockers.splice(0)) b.close();
  for (const p of children.splice(0)) {
    if (p.exitCode === null && p.signalCode === null) {
      // The primary's workers die with its IPC channel; SIGKILL leaves none behind.
      for (const pid of workerPids(p)) killQuietly(pid);
      p.kill('SIGKILL');
    }
  }
});
afterAll(async () => {
  await redis?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const outputs = new WeakMap<ChildProcess, () => string>();

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

/** Runs the CLI with `args` and resolves with its exit code and everything it printed. */
function runCli(args: string[]): Promise<{ code: number | null; out: string }> {
  const proc = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  return new Promise((r) => proc.once('exit', (code) => r({ code, out })));
}

/** Starts `--workers N` with a fresh node id and resolves once the primary printed the banner. */
function startWorkers(n: number, extra: string[] = []): Promise<Primary> {
  const dataDir = mkdtempSync(join(tmpdir(), 'im-workers-'));
  dirs.push(dataDir);
  const nodeId = `wt${process.pid}-${++runs}`;
  const prefix = `${nodeId}:`;
  const argv = [
    cliPath, '--workers', String(n), '--redis-url', redis.url, '--node-id', nodeId, '--ws-port', '0', '--tcp-port', '0', '--udp-port', '0',
    '--http-port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--auth', 'none', '--admin-token', 'workers-admin', '--drain-ms', '2000', '--redis-prefix', prefix, ...extra,
  ];
  const proc = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  let out = '';
  const output = () => out;
  outputs.set(proc, output);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the primary did not print its banner: ${out}`)), 15000);
    proc.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const ws = /websocket\s+ws:\/\/[^:]+:(\d+)/.exec(out);
      const udp = /udp\s+[^:\s]+:(\d+)/.exec(out);
      const http = /admin api\s+http:\/\/[^:]+:(\d+)/.exec(out);
      if (ws && udp && http && /workers {4}\d+ processes/.test(out)) {
        clearTimeout(timer);
        resolve({ proc, ports: { ws: Number(ws[1]), udp: Number(udp[1]), http: Number(http[1]) }, output, exited, prefix });
      }
    });
    proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`the primary exited (${code}): ${out}`));
    });
  });
}

/** The JSON log lines printed so far (the primary's and every worker's, which share its stdout). */
function logLines(output: () => string): Array<Record<string, any>> {
  return output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, any>);
}

/** The pid of the current worker of each slot, from the primary's "worker N starting" lines. */
function workerPidsBySlot(output: () => string): Map<number, number> {
  const bySlot = new Map<number, number>();
  for (const l of logLines(output)) if (typeof l.worker === 'number' && /^worker \d+ starting$/.test(l.msg)) bySlot.set(l.worker, l.pid);
  return bySlot;
}

function workerPids(p: ChildProcess): number[] {
  const output = outputs.get(p);
  return output ? [...workerPidsBySlot(output).values()] : [];
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls until `check` returns a value (not undefined) or `withinMs` is over. */
async function until<T>(check: () => T | undefined, withinMs: number, what: string): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The node a user's login landed on, from that node's "login" log line. */
function loginNode(output: () => string, user: string): Promise<string> {
  return until(() => logLines(output).find((l) => l.msg === 'login' && l.user === user)?.node as string | undefined, 5000, `the login of ${user}`);
}

describe('--workers: refusals at start', () => {
  it('refuses --workers 2 without --redis-url, saying that workers share users only through Redis', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'im-workers-'));
    dirs.push(dataDir);
    const r = await runCli(['--workers', '2', '--data-dir', dataDir]);
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/^error: --workers 2 needs --redis-url \(or IM_REDIS_URL\): .*only through Redis/m);
  });

  it('refuses --workers 0 and --workers abc with what to pass instead', async () => {
    const zero = await runCli(['--workers', '0']);
    expect(zero.code).toBe(2);
    expect(zero.out).toContain('error: --workers 0: at least one process has to serve; pass 1');
    const abc = await runCli(['--workers', 'abc']);
    expect(abc.code).toBe(2);
    expect(abc.out).toContain('error: --workers must be a whole number 1..256 or "auto" (one per core), got "abc"');
  });

  it('exits 1 naming the port when a worker cannot listen, instead of restarting it forever', async () => {
    const blocker = createTcpServer();
    blockers.push(blocker);
    const port = await new Promise<number>((r) => blocker.listen(0, '127.0.0.1', () => r((blocker.address() as { port: number }).port)));
    const dataDir = mkdtempSync(join(tmpdir(), 'im-workers-'));
    dirs.push(dataDir);
    const r = await runCli(['--workers', '2', '--redis-url', redis.url, '--tcp-port', String(port), '--ws-port', '0', '--udp-port', '-1', '--http-port', '-1', '--host', '127.0.0.1', '--data-dir', dataDir, '--auth', 'none']);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`port ${port} (TCP gateway) is already in use`);
    expect(r.out).toContain('exited while starting: stopping the others');
  });
});

describe('--workers 2 with --redis-url', () => {
  it('runs two workers with their own node ids, restarts one killed with SIGKILL, and drains all on SIGTERM (exit 0)', async () => {
    const p = await startWorkers(2);
    const started = logLines(p.output).filter((l) => l.msg === 'started').map((l) => l.node as string);
    const base = /node ids (\S+)-w1\.\.w2/.exec(p.output())![1];
    expect(started.sort()).toEqual([`${base}-w1`, `${base}-w2`]);
    expect(p.output()).toContain('; udp on worker 1 only');

    const before = workerPidsBySlot(p.output);
    const victim = before.get(2)!;
    process.kill(victim, 'SIGKILL');
    const restarted = await until(() => {
      const pid = workerPidsBySlot(p.output).get(2);
      return pid !== victim && logLines(p.output).some((l) => l.msg === 'worker 2 ready' && l.pid === pid) ? pid : undefined;
    }, 10000, 'worker 2 to be restarted');
    expect(logLines(p.output).find((l) => l.msg === 'worker 2 exited: restarting it in 250 ms')).toMatchObject({ pid: victim, signal: 'SIGKILL' });
    expect(logLines(p.output).filter((l) => l.msg === 'started' && l.node === `${base}-w2`)).toHaveLength(2);

    // SIGHUP (a TLS reload elsewhere) must not end the primary, whose default action it would be.
    p.proc.kill('SIGHUP');
    await until(() => (logLines(p.output).some((l) => l.msg === 'SIGHUP: nothing to reload (no --tls-cert)') ? true : undefined), 5000, 'the SIGHUP log line');
    expect(p.proc.exitCode).toBe(null);
    expect([...workerPidsBySlot(p.output).values()].every(isAlive)).toBe(true);

    // A client of the restarted worker and one of the other are told to reconnect when the primary drains.
    const ws: WsClient[] = [];
    const nodes = new Set<string>();
    for (let i = 0; i < 8 && nodes.size < 2; i++) {
      const c = await WsClient.open(p.ports.ws);
      clients.push(c);
      expect((await login(c, `drain${i}`)).code).toBe(0);
      nodes.add(await loginNode(p.output, `drain${i}`));
      ws.push(c);
    }
    expect(nodes.size).toBe(2);
    p.proc.kill('SIGTERM');
    for (const c of ws) expect(errorOf(await c.nextOfType(52)).errorCode).toBe(336);
    expect(await p.exited).toEqual({ code: 0, signal: null });
    for (const pid of [before.get(1)!, restarted]) expect(isAlive(pid)).toBe(false);
    const lines = logLines(p.output);
    expect(lines.filter((l) => l.msg === 'the primary asked to drain: shutting down').map((l) => l.node).sort()).toEqual([`${base}-w1`, `${base}-w2`]);
    expect(lines.filter((l) => /^worker [12] exited$/.test(l.msg)).map((l) => l.code)).toEqual([0, 0]);
  });

  it('keeps every UDP peer on worker 1; /metrics has both workers\' series whichever worker takes the scrape', async () => {
    const p = await startWorkers(2);
    const base = /node ids (\S+)-w1\.\.w2/.exec(p.output())![1];
    const answeredBy = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const health = (await (await fetch(`http://127.0.0.1:${p.ports.http}/health`)).json()) as { node: string };
      answeredBy.add(health.node);
      const res = await fetch(`http://127.0.0.1:${p.ports.http}/metrics`);
      expect(res.status).toBe(200);
      const text = await res.text();
      for (const node of [`${base}-w1`, `${base}-w2`]) expect(text).toContain(`mobileimsdk_connections_opened_total{node="${node}"} `);
      const types = text.split('\n').filter((l) => l.startsWith('# TYPE '));
      expect(new Set(types).size).toBe(types.length);
    }
    expect([...answeredBy].every((n) => n === `${base}-w1` || n === `${base}-w2`)).toBe(true);
    for (let i = 0; i < 4; i++) {
      const u = await UdpClient.open(p.ports.udp);
      clients.push(u);
      expect((await login(u, `udp${i}`)).code).toBe(0);
      expect(await loginNode(p.output, `udp${i}`)).toBe(`${base}-w1`);
    }
  });

  it('relays a QoS C2C message between users logged in on different workers, both ways', async () => {
    const p = await startWorkers(2);
    const byNode = new Map<string, { c: WsClient; user: string }>();
    for (let i = 0; i < 12 && byNode.size < 2; i++) {
      const c = await WsClient.open(p.ports.ws);
      clients.push(c);
      const user = `c2c${i}`;
      expect((await login(c, user)).code).toBe(0);
      const node = await loginNode(p.output, user);
      if (!byNode.has(node)) byNode.set(node, { c, user });
    }
    expect(byNode.size).toBe(2);
    // Both workers are nodes in Redis presence, each holding its user.
    const r = new Redis(redis.url);
    try {
      expect((await r.smembers(`${p.prefix}nodes`)).sort()).toEqual([...byNode.keys()].sort());
    } finally {
      r.disconnect();
    }
    const [a, b] = [...byNode.values()];
    for (const [from, to, fp] of [[a, b, 'fp-ab'], [b, a, 'fp-ba']] as const) {
      from.c.send(dataFrame(from.user, to.user, `hello ${to.user}`, fp));
      const got = await to.c.next((f) => f.type === 2 && f.fp === fp, 5000);
      expect(got).toMatchObject({ from: from.user, to: to.user, dataContent: `hello ${to.user}`, QoS: true });
      to.c.send(ackFrame(to.user, from.user, fp));
      const ack = await from.c.next((f) => f.type === 4 && f.dataContent === fp, 5000);
      expect(ack).toMatchObject({ from: to.user, to: from.user });
    }
  });
});
