import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A private redis-server started for one test file. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** The pid of the current process (a restart changes it). */
  readonly pid: number;
  /** Shuts it down (SIGTERM, the AOF flushed) and removes its directory. */
  stop(): Promise<void>;
  /**
   * SIGKILL: a crash of Redis's process. With `appendfsync everysec` Redis may have postponed its AOF
   * write (up to 2 s, while a background fsync is slow) and answered anyway, so the last writes can be
   * gone after {@link restart}: a test that counts on them surviving starts its server with
   * `appendfsync: 'always'`.
   */
  kill(): Promise<void>;
  /** Starts it again on the same port and directory: the AOF is reloaded. */
  restart(): Promise<void>;
}

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /** The AOF fsync policy (default 'everysec'). */
  appendfsync?: 'always' | 'everysec' | 'no';
  /** Longest wait for the server to answer PING (default 10000). */
  readyTimeoutMs?: number;
}

/**
 * Starts a private Debian `redis-server` on a free loopback port with its own temporary directory, AOF on
 * (`appendfsync everysec` unless told otherwise) and RDB snapshots off, and waits until it answers PING.
 * A missing `redis-server` is an error naming the package, never a skip: CI installs it (.ci/run).
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error) {
    throw new Error(`redis-server is not installed (${probe.error.message}): the Redis tests need it; install the Debian package redis-server (apt-get install redis-server; .ci/run does)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'imsdk-redis-'));
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  const args = (port: number) => [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes',
    '--appendfsync', options.appendfsync ?? 'everysec', '--save', '', '--daemonize', 'no', '--logfile', '',
  ];
  let child: ChildProcess | null = null;
  let port = 0;
  let lastError: unknown = null;
  // Another process may take the free port between our probe and redis-server's bind: retry on a new one.
  for (let attempt = 0; attempt < 5 && !child; attempt++) {
    port = await freePort();
    const c = spawn('redis-server', args(port), { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      await waitReady(c, port, readyTimeoutMs);
      child = c;
    } catch (err) {
      lastError = err;
      await stopChild(c, 'SIGKILL');
    }
  }
  if (!child) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`redis-server did not start: ${String(lastError)}`);
  }
  let current: ChildProcess | null = child;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return current?.pid ?? -1;
    },
    async stop() {
      if (current) await stopChild(current, 'SIGTERM');
      current = null;
      rmSync(dir, { recursive: true, force: true });
    },
    async kill() {
      if (current) await stopChild(current, 'SIGKILL');
      current = null;
    },
    async restart() {
      if (current) await stopChild(current, 'SIGTERM');
      const c = spawn('redis-server', args(port), { stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        await waitReady(c, port, readyTimeoutMs);
      } catch (err) {
        await stopChild(c, 'SIGKILL');
        throw err;
      }
      current = c;
    },
  };
}

/** A port that was free a moment ago (bound on port 0, then closed). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once the server answers PING; rejects if it exits first or the time is over. */
function waitReady(child: ChildProcess, port: number, timeoutMs: number): Promise<void> {
  let output = '';
  child.stdout?.on('data', (d: Buffer) => void (output = (output + d.toString()).slice(-4000)));
  child.stderr?.on('data', (d: Buffer) => void (output = (output + d.toString()).slice(-4000)));
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    let done = false;
    const onExit = (code: number | null, signal: string | null) => finish(new Error(`redis-server exited (${code ?? signal}) before answering PING on port ${port}:\n${output}`));
    const finish = (err: Error | null) => {
      if (done) return;
      done = true;
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    };
    child.once('exit', onExit);
    const attempt = () => {
      if (done) return;
      if (Date.now() > deadline) return finish(new Error(`redis-server did not answer PING on port ${port} within ${timeoutMs} ms:\n${output}`));
      ping(port).then(
        (ok) => (ok ? finish(null) : setTimeout(attempt, 20)),
        () => setTimeout(attempt, 20),
      );
    };
    attempt();
  });
}

/** One PING over a raw connection: true on +PONG (a server still loading its AOF answers -LOADING). */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    let data = '';
    const end = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => end(false));
    sock.on('error', () => end(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      data += d.toString();
      if (data.includes('\r\n')) end(data.startsWith('+PONG'));
    });
  });
}

/** Signals the process and waits for it to exit. */
function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}
