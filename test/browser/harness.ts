import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** Where each flow writes its end-of-flow screenshots (git-ignored). */
export const screenshotDir = join(repoRoot, 'test', 'browser', 'screenshots');

/** Debian's Chromium (`apt-get install chromium`); CHROMIUM_PATH points elsewhere. */
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** Whether the browser tests can run here; on CI a missing Chromium is a failure, elsewhere a skip. */
export function chromiumStatus(): { available: boolean; mustFail: boolean; message: string } {
  const available = existsSync(CHROMIUM);
  const ci = process.env.CI === 'true' || process.env.CI === '1';
  const message = `browser tests need Debian's Chromium at ${CHROMIUM} (apt-get install -y chromium)`;
  if (!available && !ci) console.warn(`skipping: ${message}`);
  return { available, mustFail: !available && ci, message };
}

/**
 * Launches headless Chromium with a fresh temporary profile and without any background traffic; `extraArgs`
 * are added to the command line (e.g. the TLS test's certificate pin).
 */
export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...extraArgs,
    ],
  });
}

/** Builds the SDK bundles and the server with `npm run build` when either output is missing. */
export function ensureRootBuilt(): void {
  const outputs = ['dist/umd/mobileimsdk.min.js', 'dist/esm/src/index.js', 'dist/esm/adapters/uni.js', 'server/dist/cli.js'];
  if (outputs.every((f) => existsSync(join(repoRoot, f)))) return;
  execFileSync(npm, ['run', 'build'], { cwd: repoRoot, stdio: 'pipe' });
}

function newestMtime(paths: string[]): number {
  let newest = 0;
  for (const p of paths) {
    if (!existsSync(p)) continue;
    const s = statSync(p);
    newest = Math.max(newest, s.isDirectory() ? newestMtime(readdirSync(p).map((f) => join(p, f))) : s.mtimeMs);
  }
  return newest;
}

/**
 * Installs demo-uniapp's own dependencies when they are missing, then builds its H5 output with the uni-app
 * CLI unless the build is newer than the demo's sources and the SDK build it bundles. Returns the output folder.
 */
export function ensureUniAppBuilt(): string {
  const dir = join(repoRoot, 'demo-uniapp');
  const out = join(dir, 'dist', 'build', 'h5');
  if (!existsSync(join(dir, 'node_modules', '@dcloudio', 'vite-plugin-uni', 'package.json'))) {
    execFileSync(npm, ['install', '--no-audit', '--no-fund', '--no-save'], { cwd: dir, stdio: 'pipe' });
  }
  const inputs = ['src', 'index.html', 'vite.config.js', 'package.json'].map((f) => join(dir, f));
  inputs.push(join(repoRoot, 'dist', 'esm'));
  const built = join(out, 'index.html');
  if (!existsSync(built) || statSync(built).mtimeMs < newestMtime(inputs)) {
    execFileSync(npm, ['run', 'build:h5'], { cwd: dir, stdio: 'pipe' });
  }
  return out;
}

/** The reference server's CLI as a child process, killed and restarted on the same ports. */
export class ServerProcess {
  readonly adminToken = 'browser-test-admin-token';
  ports = { ws: 0, http: 0 };
  private proc: ChildProcess | null = null;
  private readonly dataDir = mkdtempSync(join(tmpdir(), 'im-browser-'));

  /** The WebSocket URL the pages log in to. */
  get wsUrl(): string {
    return `ws://127.0.0.1:${this.ports.ws}/websocket`;
  }

  /** Starts the CLI (on free ports the first time, on the same ports afterwards) and waits until it listens. */
  async start(): Promise<void> {
    const cli = join(repoRoot, 'server', 'dist', 'cli.js');
    const args = [cli, '--ws-port', String(this.ports.ws), '--http-port', String(this.ports.http), '--tcp-port', '-1', '--udp-port', '-1'];
    args.push('--host', '127.0.0.1', '--data-dir', this.dataDir, '--log-level', 'warn');
    const proc = spawn(process.execPath, args, { env: { ...process.env, IM_ADMIN_TOKEN: this.adminToken }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    let out = '';
    await new Promise<void>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`the server did not start: ${out}`)), 15000);
      proc.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const ws = /websocket\s+ws:\/\/[^:]+:(\d+)/.exec(out);
        const http = /admin api\s+http:\/\/[^:]+:(\d+)/.exec(out);
        if (ws && http) {
          clearTimeout(timer);
          this.ports = { ws: Number(ws[1]), http: Number(http[1]) };
          ok();
        }
      });
      proc.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
      proc.once('exit', (code) => {
        clearTimeout(timer);
        fail(new Error(`the server exited (${code}): ${out}`));
      });
    });
  }

  /** Kills the server with SIGKILL, as a crash would, and waits until the process is gone. */
  kill(): Promise<void> {
    const proc = this.proc;
    this.proc = null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
    return new Promise((ok) => {
      proc.once('exit', () => ok());
      proc.kill('SIGKILL');
    });
  }

  /** Calls the admin HTTP API with the bearer token. */
  async admin(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
    const res = await fetch(`http://127.0.0.1:${this.ports.http}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.adminToken}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: await res.json() };
  }

  /** Stops the server and removes its data directory. */
  async dispose(): Promise<void> {
    await this.kill();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Creates the screenshot folder and returns the path of one screenshot in it. */
export function screenshotPath(name: string): string {
  mkdirSync(screenshotDir, { recursive: true });
  return join(screenshotDir, `${name}.png`);
}
