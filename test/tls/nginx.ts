/**
 * Debian's nginx as a child of the test: deploy/nginx/mobileimsdk.conf rendered with the test's port,
 * upstream and certificate, inside a minimal main config with every path (pid, logs, temp) in a temporary
 * prefix. `daemon off` and `master_process off` keep it one process, stopped by its pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireTool } from './pki';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The shipped configs, read by the test exactly as an administrator would install them. */
export const shippedConfig = join(repoRoot, 'deploy', 'nginx', 'mobileimsdk.conf');
export const shippedStreamConfig = join(repoRoot, 'deploy', 'nginx', 'mobileimsdk-stream.conf');
/** Debian's dynamic stream module (package libnginx-mod-stream). */
const STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

/** Replaces `from` in `text`, which must occur exactly once: the test fails if the shipped config changes shape. */
function replaceOnce(file: string, text: string, from: string, to: string): string {
  const parts = text.split(from);
  if (parts.length !== 2) throw new Error(`${file}: expected "${from}" exactly once, found ${parts.length - 1}`);
  return parts.join(to);
}

/** A shipped config with the test's listen port, upstream port and certificate files. */
export function renderConfig(
  file: string,
  o: { listen: string; listenPort: number; upstream: string; upstreamPort: number; cert: string; key: string },
): string {
  let text = readFileSync(file, 'utf8');
  text = replaceOnce(file, text, `listen ${o.listen} ssl;`, `listen 127.0.0.1:${o.listenPort} ssl;`);
  text = replaceOnce(file, text, `server ${o.upstream};`, `server 127.0.0.1:${o.upstreamPort};`);
  text = replaceOnce(file, text, '/etc/letsencrypt/live/im.example.com/fullchain.pem;', `${o.cert};`);
  text = replaceOnce(file, text, '/etc/letsencrypt/live/im.example.com/privkey.pem;', `${o.key};`);
  return text;
}

/** A port that was free a moment ago (nginx cannot listen on port 0 and report it). */
function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      ok(true);
    });
    socket.once('error', () => ok(false));
  });
}

/** A running nginx. */
export interface Nginx {
  /** The https:// / wss:// port. */
  port: number;
  /** The TLS TCP port, when started with `tcpUpstreamPort`. */
  tcpPort: number | null;
  /** nginx's error log so far. */
  errorLog(): string;
  stop(): Promise<void>;
}

/**
 * Starts nginx in front of the server's WebSocket port `upstreamPort` with the shipped config, and with
 * `tcpUpstreamPort` also the shipped stream config in front of its TCP port; fails (never skips) without nginx.
 */
export async function startNginx(o: { upstreamPort: number; tcpUpstreamPort?: number; cert: string; key: string }): Promise<Nginx> {
  const nginx = requireTool('nginx');
  if (o.tcpUpstreamPort !== undefined && !existsSync(STREAM_MODULE)) {
    throw new Error(`the TLS TCP proxy test needs nginx's stream module at ${STREAM_MODULE}: apt-get install -y libnginx-mod-stream (.ci/run installs it)`);
  }
  const prefix = mkdtempSync(join(tmpdir(), 'im-nginx-'));
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(prefix, d));
  const errorLogPath = join(prefix, 'error.log');
  const port = await freePort();
  const tcpPort = o.tcpUpstreamPort === undefined ? null : await freePort();
  const certs = { cert: o.cert, key: o.key };
  writeFileSync(join(prefix, 'mobileimsdk.conf'), renderConfig(shippedConfig, { listen: '443', listenPort: port, upstream: '127.0.0.1:3000', upstreamPort: o.upstreamPort, ...certs }));
  if (tcpPort !== null) {
    const rendered = renderConfig(shippedStreamConfig, { listen: '8901', listenPort: tcpPort, upstream: '127.0.0.1:9901', upstreamPort: o.tcpUpstreamPort!, ...certs });
    writeFileSync(join(prefix, 'mobileimsdk-stream.conf'), rendered);
  }
  writeFileSync(
    join(prefix, 'nginx.conf'),
    [
      ...(tcpPort === null ? [] : [`load_module ${STREAM_MODULE};`]),
      'daemon off;',
      'master_process off;',
      `pid ${join(prefix, 'nginx.pid')};`,
      `error_log ${errorLogPath} info;`,
      'events { worker_connections 64; }',
      'http {',
      `  access_log ${join(prefix, 'access.log')};`,
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${join(prefix, t === 'client_body' ? 'body' : t)};`),
      `  include ${join(prefix, 'mobileimsdk.conf')};`,
      '}',
      ...(tcpPort === null ? [] : [`stream { include ${join(prefix, 'mobileimsdk-stream.conf')}; }`]),
      '',
    ].join('\n'),
  );
  const proc: ChildProcess = spawn(nginx, ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', errorLogPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const errorLog = () => {
    try {
      return readFileSync(errorLogPath, 'utf8');
    } catch {
      return '';
    }
  };
  const exited = new Promise<void>((ok) => proc.once('exit', () => ok()));
  const deadline = Date.now() + 10000;
  while (!(await accepts(port)) || (tcpPort !== null && !(await accepts(tcpPort)))) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      rmSync(prefix, { recursive: true, force: true });
      throw new Error(`nginx did not start on port ${port}: ${out}${errorLog()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    tcpPort,
    errorLog,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      const killer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}
