import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatPage } from './chat-flow';
import { chromiumStatus, ensureRootBuilt, launchChromium, repoRoot } from './harness';

const chromium = chromiumStatus();

/** `npm start` minus the build: the serve script with the server CLI as its child, in its own process group. */
function startDemo(dataDir: string): { proc: ChildProcess; ready: Promise<string[]>; output: () => string } {
  const args = ['demo-h5/serve.mjs', '--port', '0', '--ws-port', '0', '--http-port', '0', '--tcp-port', '-1', '--udp-port', '-1'];
  args.push('--host', '127.0.0.1', '--data-dir', dataDir, '--log-level', 'warn');
  const proc = spawn(process.execPath, args, { cwd: repoRoot, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
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
