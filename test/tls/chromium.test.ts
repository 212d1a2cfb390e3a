/**
 * The SDK's UMD bundle in real Chromium over wss://, straight to the server's own TLS port and through the
 * shipped nginx config. Chromium trusts exactly the test certificate's public key
 * (--ignore-certificate-errors-spki-list), not every certificate: a page still fails on another one.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { IMClient } from '../../src/index';
import { createServer, silentLogger, type IMServer } from '../../server/src/index';
import { CHROMIUM, ensureRootBuilt, launchChromium, repoRoot } from '../browser/harness';
import { wssClient } from './helpers';
import { startNginx, type Nginx } from './nginx';
import { requireTool, TestPki, type ServerCert } from './pki';


let pki: TestPki;
let trusted: ServerCert;
let other: ServerCert;
let browser: Browser;
let page: Page;
const servers: IMServer[] = [];
const proxies: Nginx[] = [];
const clients: IMClient[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`the TLS browser test needs Debian's Chromium at ${CHROMIUM}: apt-get install -y chromium (.ci/run installs it)`);
  requireTool('nginx');
  pki = new TestPki();
  trusted = pki.issue('chromium');
  other = pki.issue('not-trusted');
  ensureRootBuilt();
  // Accepts a certificate chain containing this public key (and only this one): our throwaway CA is not in
  // Chromium's store, and --ignore-certificate-errors would accept anything.
  browser = await launchChromium([`--ignore-certificate-errors-spki-list=${trusted.spkiSha256}`]);
  page = await browser.newPage();
  await page.addScriptTag({ content: readFileSync(join(repoRoot, 'dist', 'umd', 'mobileimsdk.min.js'), 'utf8') });
}, 180000);
afterAll(async () => {
  await browser?.close();
  pki?.dispose();
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  for (const p of proxies.splice(0)) await p.stop();
  for (const s of servers.splice(0)) await s.close();
});

/** Logs in from the page over `url` and sends one message to `to`; resolves with what the page saw. */
function chatFromPage(url: string, to: string): Promise<{ userId: string; acked: boolean }> {
  return page.evaluate(
    async ({ url, to }) => {
      const sdk = (globalThis as unknown as { MobileIMSDK: typeof import('../../adapters/browser-bundle') }).MobileIMSDK;
      const client = new sdk.IMClient({ url, adapter: sdk.createBrowserAdapter() });
      try {
        const r = await client.login({ userId: 'in-chromium', token: 't' });
        const receipt = await client.send(to, 'hello from chromium');
        return { userId: r.userId, acked: receipt.acked };
      } finally {
        client.destroy();
      }
    },
    { url, to },
  );
}

/** Whether a plain page WebSocket to `url` opens (false: the TLS handshake was refused). */
function pageCanOpen(url: string): Promise<boolean> {
  return page.evaluate(
    (url) =>
      new Promise<boolean>((resolve) => {
        const ws = new WebSocket(url);
        ws.onopen = () => {
          ws.close();
          resolve(true);
        };
        ws.onerror = () => resolve(false);
      }),
    url,
  );
}

async function serverWith(tls: ServerCert | null): Promise<IMServer> {
  const server = await createServer({
    ws: { port: 0, host: '127.0.0.1' },
    tcp: false,
    udp: false,
    http: false,
    logger: silentLogger,
    tls: tls && { cert: tls.certPath, key: tls.keyPath, watch: false, reloadOnSighup: false },
  });
  servers.push(server);
  return server;
}

/** A Node SDK client logs in over `url`; the page logs in and sends it a message, which arrives. */
async function chatWithNode(url: string): Promise<void> {
  const node = wssClient(url, pki.caPem);
  clients.push(node);
  const got: string[] = [];
  node.on('message', (m) => void got.push(`${m.from}: ${m.content}`));
  await node.login({ userId: 'in-node', token: 't' });
  expect(await chatFromPage(url, 'in-node')).toEqual({ userId: 'in-chromium', acked: true });
  await expect.poll(() => got).toEqual(['in-chromium: hello from chromium']);
}

describe('the SDK in Chromium over wss://', () => {
  it("talks to the server's own wss:// port", async () => {
    const server = await serverWith(trusted);
    const url = `wss://127.0.0.1:${server.ports.ws}/websocket`;
    await chatWithNode(url);
  });

  it('talks to the server through nginx, and refuses a certificate it was not told to trust', async () => {
    const server = await serverWith(null);
    const nginx = await startNginx({ upstreamPort: server.ports.ws!, cert: trusted.certPath, key: trusted.keyPath });
    proxies.push(nginx);
    const url = `wss://127.0.0.1:${nginx.port}/websocket`;
    await chatWithNode(url);

    const untrusted = await startNginx({ upstreamPort: server.ports.ws!, cert: other.certPath, key: other.keyPath });
    proxies.push(untrusted);
    expect(await pageCanOpen(`wss://127.0.0.1:${untrusted.port}/websocket`)).toBe(false);
    expect(await pageCanOpen(url)).toBe(true);
  });
});
