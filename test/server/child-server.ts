import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const serverDir = join(repoRoot, 'server');
const cli = join(serverDir, 'dist', 'cli.js');

/** Where the built CLI lives. */
export const cliPath = cli;

/** The newest mtime among the server's sources and the shared modules it bundles. */
function newestSource(): number {
  const serverSrc = join(serverDir, 'src');
  const files = [
    ...readdirSync(serverSrc).filter((f) => f.endsWith('.ts')).map((f) => join(serverSrc, f)),
    ...['protocol.ts', 'sense-mode.ts', 'length-prefix.ts'].map((f) => join(repoRoot, 'src', f)),
  ];
  return Math.max(...files.map((f) => statSync(f).mtimeMs));
}

/** Builds server/dist with rollup when it is missing or older than the sources. */
export function ensureServerBuilt(): void {
  if (existsSync(cli) && statSync(cli).mtimeMs >= newestSource()) return;
  const rollupBin = createRequire(import.meta.url).resolve('rollup/dist/bin/rollup');
  execFileSync(process.execPath, [rollupBin, '-c', 'rollup.config.mjs', '--silent'], { cwd: serverDir, stdio: 'pipe' });
}

/** A server running as a child process of the built CLI. */
export interface ChildServer {
  proc: ChildProcess;
  ports: { ws: number; http: number };
  output: () => string;
}

/**
 * Starts the CLI (WebSocket on `wsPort`, 0 = any free port; the admin API on a free port) and resolves
 * once it printed where it listens; `args` are added flags.
 */
export function startChildServer(dataDir: string, adminToken: string, wsPort = 0, args: string[] = []): Promise<ChildServer> {
  const proc = spawn(
    process.execPath,
    [cli, '--ws-port', String(wsPort), '--tcp-port', '-1', '--udp-port', '-1', '--http-port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--log-level', 'warn', ...args],
    { env: { ...process.env, IM_ADMIN_TOKEN: adminToken }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`child server did not start: ${out}`)), 10000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const ws = /websocket\s+ws:\/\/[^:]+:(\d+)/.exec(out);
      const http = /admin api\s+http:\/\/[^:]+:(\d+)/.exec(out);
      if (ws && http) {
        clearTimeout(timer);
        resolvePromise({ proc, ports: { ws: Number(ws[1]), http: Number(http[1]) }, output: () => out });
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child server exited (${code}): ${out}`));
    });
  });
}

/** Kills the child with SIGKILL and waits until it is gone. */
export function sigkill(child: ChildServer): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    child.proc.once('exit', () => r());
    child.proc.kill('SIGKILL');
  });
}
