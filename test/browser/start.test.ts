import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ChatPage } from './chat-flow';
import { chromiumStatus, ensureRootBuilt, launchChromium, repoRoot } from './harness';

const chromium = chromiumStatus();

/** `npm start` minus the build: the serve script with the server CLI as its child, in its own process group. */
function startDemo(dataDir: string, env: Record<string, string> = {}): { proc: ChildProcess; ready: Promise<string[]>; output: () => string } {
  const args = ['demo-h5/serve.mjs', '--port', '0', '--ws-port', '0', '--http-port', '0', '--tcp-port', '-1', '--udp-port', '-1'];
  args.push('--host', '127.0.0.1', '--data-dir', dataDir, '--log-level', 'warn');
  const proc = spawn(process.execPath, args, { cwd: repoRoot, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  const ready = new Promise<string[]>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`the demo did not start: ${out}`)), 15000);
    proc.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('Press Ctrl-C')) {
        clearTimeout(timer);
        ok(out.match(/http:\/\/\S+\/demo-h5\/\?user=\w+&to=\w+/g) ?? []);
      }
    });
    proc.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    proc.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`the demo exited (${code}): ${out}`));
    });
  });
  return { proc, ready, output: () => out };
}

/** Whether something accepts TCP connections on the port. */
function listening(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      ok(true);
    });
    socket.once('error', () => ok(false));
  });
}

/** The process ids of a process's children (Linux). */
function childPids(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
}

/** Polls `check` every 50 ms until it holds, or throws after `timeoutMs`. */
async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Logs in over a raw WebSocket and resolves with the login response code. */
function loginCode(port: number, path: string): Promise<number> {
  return new Promise((ok, fail) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
    ws.on('error', fail);
    ws.on('open', () =>
      ws.send(JSON.stringify({ type: 0, dataContent: JSON.stringify({ loginUserId: 'probe', loginToken: 't', firstLoginTime: 0 }), from: 'probe', to: '0' })),
    );
    ws.on('message', (data) => {
      const f = JSON.parse(data.toString()) as { type: number; dataContent: string };
      if (f.type !== 50) return;
      ws.terminate();
      ok((JSON.parse(f.dataContent) as { code: number }).code);
    });
  });
}

const wsAddress = (out: string) => [...out.matchAll(/websocket\s+ws:\/\/[^:]+:(\d+)(\/\S*)/g)].map((m) => ({ port: Number(m[1]), path: m[2] }));
const adminTokenOf = (out: string) => /Bearer ([^']+)'/.exec(out)?.[1];

describe('npm start keeps the demo page up when the IM server dies', () => {
  let dataDir: string;
  const demos: ChildProcess[] = [];

  beforeAll(() => {
    ensureRootBuilt();
    dataDir = mkdtempSync(join(tmpdir(), 'im-start-restart-'));
  }, 180000);

  afterAll(() => {
    for (const p of demos) if (p.pid && p.exitCode === null) process.kill(-p.pid, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('says it starts the server again, does so, and keeps the admin token across restarts and runs', async () => {
    const first = startDemo(dataDir, { DEMO_RESTART_DELAY_MS: '300' });
    demos.push(first.proc);
    const urls = await first.ready;
    expect(first.output()).toMatch(/esm\.html\?user=alice&to=bob/);
    const token = adminTokenOf(first.output());
    expect(token).toMatch(/^[\w-]{20,}$/);
    const [server] = childPids(first.proc.pid!);
    process.kill(server, 'SIGKILL');
    await until(() => /the IM server stopped \(SIGKILL\); the demo page stays up\. Starting the server again in 0\.3 s/.test(first.output()), 'the restart notice');
    expect((await fetch(urls[0])).status).toBe(200);
    await until(() => first.output().includes('the IM server is back'), 'the restarted server');
    const [, again] = wsAddress(first.output());
    expect(await loginCode(again.port, again.path)).toBe(0);
    expect(adminTokenOf(first.output().slice(first.output().indexOf('the IM server is back')))).toBeUndefined();

    const exited = new Promise<number | null>((ok) => first.proc.once('exit', (code) => ok(code)));
    process.kill(-first.proc.pid!, 'SIGINT');
    expect(await exited).toBe(0);
    const second = startDemo(dataDir);
    demos.push(second.proc);
    await second.ready;
    expect(adminTokenOf(second.output())).toBe(token);
    process.kill(-second.proc.pid!, 'SIGINT');
  }, 60000);
});

describe.skipIf(!chromium.available)('npm start (the serve script)', () => {
  let browser: Browser;
  let dataDir: string;
  let demo: ReturnType<typeof startDemo> | null = null;

  beforeAll(async () => {
    ensureRootBuilt();
    dataDir = mkdtempSync(join(tmpdir(), 'im-start-'));
    browser = await launchChromium();
  }, 180000);

  afterAll(async () => {
    if (demo?.proc.pid && demo.proc.exitCode === null) process.kill(-demo.proc.pid, 'SIGKILL');
    await browser?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('prints two URLs whose tabs chat without typing anything but the message, and Ctrl-C stops everything', async () => {
    demo = startDemo(dataDir);
    const urls = await demo.ready;
    expect(urls).toHaveLength(2);
    const pages = await Promise.all(urls.map((url, i) => ChatPage.open(browser, url, `start-${i}`)));
    try {
      const [alice, bob] = pages.map((p) => p.chat);
      for (const chat of [alice, bob]) {
        await chat.page.waitForFunction(() => /:\d+\/websocket$/.test((document.querySelector('.f-server') as HTMLInputElement).value));
        await chat.page.locator('.b-login').click();
        await chat.waitForState('online');
      }
      await alice.page.locator('.f-text').fill('out of the box');
      await alice.page.locator('.b-send').click();
      await alice.waitForRow('out', 'out of the box', 'delivered');
      await bob.waitForRow('in', 'out of the box');
      expect(await bob.page.locator('.me').innerText()).toBe('as bob');
      expect([...alice.failedRequests, ...bob.failedRequests]).toEqual([]);
      // No favicon 404 in a headed browser either: the page declares its icon, and the root one answers.
      expect(await alice.page.locator('link[rel="icon"]').count()).toBe(1);
      expect((await fetch(new URL('/favicon.ico', urls[0]))).status).toBe(204);
    } finally {
      await Promise.all(pages.map((p) => p.context.close()));
    }

    const ports = [Number(new URL(urls[0]).port), Number(/websocket\s+ws:\/\/[^:]+:(\d+)/.exec(demo.output())?.[1])];
    expect(await Promise.all(ports.map(listening))).toEqual([true, true]);
    const exited = new Promise<number | null>((ok) => demo!.proc.once('exit', (code) => ok(code)));
    process.kill(-demo.proc.pid!, 'SIGINT');
    expect(await exited).toBe(0);
    expect(await Promise.all(ports.map(listening))).toEqual([false, false]);
  }, 60000);
});

describe.runIf(chromium.mustFail)('browser tests on CI', () => {
  it('find Chromium', () => {
    throw new Error(chromium.message);
  });
});
