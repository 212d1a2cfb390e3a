import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cliPath, ensureServerBuilt } from './child-server';
import { errorOf, login, TcpClient, WsClient, type RawClient } from './helpers';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const serverDir = join(repoRoot, 'server');
const version = (JSON.parse(readFileSync(join(serverDir, 'package.json'), 'utf8')) as { version: string }).version;

interface Child {
  proc: ChildProcess;
  ports: { ws: number; tcp: number; http: number };
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children: Child[] = [];
const clients: RawClient[] = [];
const sockets: Socket[] = [];
const dirs: string[] = [];

beforeAll(() => ensureServerBuilt());
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  for (const s of sockets.splice(0)) s.destroy();
  for (const c of children.splice(0)) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** Starts the built CLI on free ports (optionally under `ulimit -n`) and resolves once it printed them. */
function startCli(args: string[], fdLimit?: number): Promise<Child> {
  const argv = [cliPath, '--ws-port', '0', '--tcp-port', '0', '--udp-port', '-1', '--http-port', '0', '--host', '127.0.0.1', '--data-dir', tempDir('im-ops-'), ...args];
  const proc =
    fdLimit === undefined
      ? spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('/bin/sh', ['-c', `ulimit -n ${fdLimit} && exec "$0" "$@"`, process.execPath, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`the CLI did not start: ${out}`)), 10000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const ws = /websocket\s+ws:\/\/[^:]+:(\d+)/.exec(out);
      const tcp = /tcp\s+[^:\s]+:(\d+)/.exec(out);
      const http = /admin api\s+http:\/\/[^:]+:(\d+)/.exec(out);
      if (ws && tcp && http) {
        clearTimeout(timer);
        const child = { proc, ports: { ws: Number(ws[1]), tcp: Number(tcp[1]), http: Number(http[1]) }, output: () => out, exited };
        children.push(child);
        resolvePromise(child);
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`the CLI exited (${code}): ${out}`));
    });
  });
}

/** The child's JSON log lines. */
function logLines(child: Child): Array<Record<string, unknown>> {
  return child
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A WebSocket connection that completes the upgrade and then never reads or answers a close. */
async function stuckWebSocket(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => undefined);
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.write(
    'GET /websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  await new Promise<void>((r) => socket.once('data', () => r()));
  return socket;
}

const track = <T extends RawClient>(c: T): T => (clients.push(c), c);

describe('graceful shutdown (SIGTERM)', () => {
  it('sends every client error 336, closes WebSocket clients with 1001, and exits 0 once they are gone', async () => {
    const child = await startCli(['--drain-ms', '5000']);
    const ws = track(await WsClient.open(child.ports.ws));
    const tcp = track(await TcpClient.open(child.ports.tcp));
    await login(ws, 'w1');
    await login(tcp, 't1');
    child.proc.kill('SIGTERM');
    expect(errorOf(await ws.nextOfType(52))).toEqual({ errorCode: 336, errorMsg: 'server shutting down; reconnect' });
    expect(errorOf(await tcp.nextOfType(52)).errorCode).toBe(336);
    expect((await ws.closed).code).toBe(1001);
    await tcp.closed;
    expect(await child.exited).toEqual({ code: 0, signal: null });
    const msgs = logLines(child).map((l) => l.msg);
    expect(msgs).toEqual(expect.arrayContaining(['SIGTERM: shutting down', 'draining: clients are told to reconnect (error 336)', 'stopped']));
    expect(msgs).not.toContain('drain time over: closing what is left');
  });

  it('stops accepting while it drains, answers /ready 503, and exits at once on a second signal', async () => {
    const child = await startCli(['--drain-ms', '60000', '--log-level', 'info']);
    await stuckWebSocket(child.ports.ws);
    child.proc.kill('SIGTERM');
    await expect.poll(() => child.output()).toContain('draining');
    await expect(WsClient.open(child.ports.ws)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    const ready = await fetch(`http://127.0.0.1:${child.ports.http}/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ ready: false, draining: true });
    expect(child.proc.exitCode).toBe(null);
    child.proc.kill('SIGTERM');
    // The drain had 60 s left and the stuck client would hold it for ws's 30 s close timeout.
    const exit = await Promise.race([child.exited, new Promise((r) => setTimeout(() => r('still running'), 5000))]);
    expect(exit).toEqual({ code: 1, signal: null });
  });

  it('gives up on clients that do not leave after --drain-ms and exits by itself', async () => {
    const child = await startCli(['--drain-ms', '300']);
    await stuckWebSocket(child.ports.ws);
    child.proc.kill('SIGTERM');
    const exit = await Promise.race([child.exited, new Promise((r) => setTimeout(() => r('still running'), 8000))]);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(logLines(child).map((l) => l.msg)).toContain('drain time over: closing what is left');
  });
});

describe('descriptor exhaustion', () => {
  it('is logged, and the clients already connected go on being served', async () => {
    // The per-address cap on connections not logged in would stop the flood before it exhausts anything: off here.
    const child = await startCli(['--log-level', 'info', '--max-unauth-per-address', '0'], 128);
    const a = track(await TcpClient.open(child.ports.tcp));
    await login(a, 'early');
    // Well past the 128 descriptors the process may hold: the excess ones are accepted and closed by libuv.
    for (let i = 0; i < 200; i++) {
      const s = connect(child.ports.tcp, '127.0.0.1');
      s.on('error', () => undefined);
      sockets.push(s);
    }
    await expect
      .poll(() => logLines(child).find((l) => typeof l.msg === 'string' && l.msg.includes('file descriptors exhausted')), { timeout: 8000 })
      .toMatchObject({ level: 50, code: expect.stringMatching(/^E[MN]FILE$/) });
    a.send({ bridge: false, type: 1, dataContent: '{}', from: 'early', to: '0', QoS: false, typeu: -1, sm: -1 });
    expect((await a.nextOfType(51)).to).toBe('early');
    for (const s of sockets.splice(0)) s.destroy();
    const b = await (async () => {
      for (;;) {
        try {
          const c = track(await TcpClient.open(child.ports.tcp));
          return { c, r: await login(c, 'later') };
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    })();
    expect(b.r.code).toBe(0);
  });
});

describe('packaging', () => {
  it('prints the package version with --version', () => {
    expect(execFileSync(process.execPath, [cliPath, '--version'], { encoding: 'utf8' }).trim()).toBe(version);
  });

  it('runs through npm exec from the workspace', () => {
    const out = execFileSync('npm', ['exec', '--offline', '--', 'mobileimsdk-ts-server', '--version'], { cwd: serverDir, encoding: 'utf8' });
    expect(out.trim()).toBe(version);
  });

  it('runs through npx from an installed `npm pack` tarball: executable bin with a shebang, dist only', () => {
    const dir = tempDir('im-pack-');
    const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: serverDir, encoding: 'utf8' })) as Array<{
      filename: string;
      files: Array<{ path: string; mode: number }>;
    }>;
    const files = packed[0].files;
    expect(files.find((f) => f.path === 'dist/cli.js')?.mode).toBe(0o755);
    expect(files.filter((f) => f.path.startsWith('src/'))).toEqual([]);
    // Installed as npm would, with the dependencies the repository already has (no network in tests).
    const pkgDir = join(dir, 'node_modules', 'mobileimsdk-ts-server');
    mkdirSync(pkgDir, { recursive: true });
    execFileSync('tar', ['xzf', join(dir, packed[0].filename), '-C', pkgDir, '--strip-components=1']);
    expect(readFileSync(join(pkgDir, 'dist', 'cli.js'), 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { bin: Record<string, string>; dependencies: Record<string, string> };
    for (const dep of Object.keys(pkg.dependencies)) symlinkSync(join(repoRoot, 'node_modules', dep), join(dir, 'node_modules', dep));
    mkdirSync(join(dir, 'node_modules', '.bin'));
    symlinkSync(join('..', 'mobileimsdk-ts-server', pkg.bin['mobileimsdk-ts-server']), join(dir, 'node_modules', '.bin', 'mobileimsdk-ts-server'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app', private: true, dependencies: { 'mobileimsdk-ts-server': version } }));
    expect(execFileSync('npx', ['--offline', 'mobileimsdk-ts-server', '--version'], { cwd: dir, encoding: 'utf8' }).trim()).toBe(version);
  });
});
