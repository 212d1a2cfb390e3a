// A private redis-server for the cluster benchmarks: a free loopback port, its own temporary directory,
// AOF on (appendfsync everysec, what a cluster node expects by default), RDB snapshots off. Its CPU time
// is read from /proc/<pid>/stat, so the benchmarks can report Redis's share beside the nodes'.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ; 100 on Linux). */
const TICKS_PER_SECOND = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** User + system CPU seconds a process has used so far, from /proc/<pid>/stat; NaN when unreadable. */
export function procCpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name in parentheses (which may contain spaces): state is field 3.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / TICKS_PER_SECOND;
  } catch {
    return NaN;
  }
}

/** Resident set size of a process in bytes, from /proc/<pid>/status; NaN when unreadable. */
export function procRssBytes(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/**
 * Starts redis-server (optionally pinned with taskset to `cpus`) and resolves, once it answers PING,
 * with `{ url, port, pid, cpuSeconds(), stop() }`. A missing redis-server is an error naming the package.
 */
export async function startRedis({ cpus = null } = {}) {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error) throw new Error(`redis-server is not installed (${probe.error.message}): the cluster benchmarks need it (apt-get install redis-server)`);
  const dir = mkdtempSync(join(tmpdir(), 'im-bench-redis-'));
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--daemonize', 'no', '--logfile', ''];
    const child = cpus !== null ? spawn('taskset', ['-c', String(cpus), 'redis-server', ...args], { stdio: 'ignore' }) : spawn('redis-server', args, { stdio: 'ignore' });
    const exited = new Promise((r) => child.once('exit', r));
    // Never outlive the benchmark, even when it fails or is interrupted.
    const reap = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    };
    process.once('exit', reap);
    exited.then(() => process.off('exit', reap));
    if (await waitPing(port, exited, 10000)) {
      return {
        url: `redis://127.0.0.1:${port}`,
        port,
        pid: child.pid,
        /** CPU seconds Redis has used so far (taskset execs redis-server in place, so the pid is Redis's). */
        cpuSeconds: () => procCpuSeconds(child.pid),
        rssBytes: () => procRssBytes(child.pid),
        /** SIGTERM, waits for the exit, removes the directory. */
        async stop() {
          if (child.exitCode === null && child.signalCode === null) {
            const t = setTimeout(() => child.kill('SIGKILL'), 5000);
            child.kill('SIGTERM');
            await exited;
            clearTimeout(t);
          }
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error('redis-server did not start on a free port in 5 attempts');
}

/** A port that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** True once the server answers +PONG; false if it exits first or `timeoutMs` passes. */
async function waitPing(port, exited, timeoutMs) {
  let gone = false;
  exited.then(() => (gone = true));
  const deadline = Date.now() + timeoutMs;
  while (!gone && Date.now() < deadline) {
    if (await ping(port)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

function ping(port) {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    let data = '';
    const end = (ok) => (sock.destroy(), resolve(ok));
    sock.setTimeout(1000, () => end(false));
    sock.on('error', () => end(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      data += d;
      if (data.includes('\r\n')) end(data.startsWith('+PONG'));
    });
  });
}
