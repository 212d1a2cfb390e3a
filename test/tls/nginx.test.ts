/**
 * The shipped nginx config (deploy/nginx/mobileimsdk.conf) in front of the server: nginx terminates TLS
 * for /websocket and proxies a plain WebSocket to the server, which names the real client in its logs only
 * when told to trust the proxy.
 */
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { IMClient } from '../../src/index';
import { SenseMode, senseModeTimings } from '../../src/sense-mode';
import { createServer, type ConnectionInfo, type IMServer, type ServerOptions } from '../../server/src/index';
import { captureLogger, tlsTcpClient, wssClient } from './helpers';
import { shippedConfig, shippedStreamConfig, startNginx, type Nginx } from './nginx';
import { TestPki, type ServerCert } from './pki';

let pki: TestPki;
let cert: ServerCert;
const servers: IMServer[] = [];
const proxies: Nginx[] = [];
const clients: IMClient[] = [];

beforeAll(() => {
  pki = new TestPki();
  cert = pki.issue('nginx');
});
afterAll(() => pki?.dispose());
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  for (const p of proxies.splice(0)) await p.stop();
  for (const s of servers.splice(0)) await s.close();
});

/** A plain server on loopback (as behind nginx) and nginx in front of it (of its TCP port too with `tcp`). */
async function setup(ws: ServerOptions['ws'] = {}, hooks: ServerOptions['hooks'] = {}, tcp = false) {
  const { logger, lines } = captureLogger();
  const server = await createServer({ ws: { port: 0, host: '127.0.0.1', ...ws }, tcp: tcp && { port: 0, host: '127.0.0.1' }, udp: false, http: false, logger, hooks });
  servers.push(server);
  const nginx = await startNginx({ upstreamPort: server.ports.ws!, tcpUpstreamPort: server.ports.tcp, cert: cert.certPath, key: cert.keyPath });
  proxies.push(nginx);
  return { server, nginx, lines, url: `wss://127.0.0.1:${nginx.port}/websocket` };
}

/** One raw WebSocket login through `url`; resolves with the login response's text. */
function rawLogin(url: string, userId: string, options: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<{ text: string; ws: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { ca: pki.caPem, ...options });
    ws.on('error', reject);
    ws.on('open', () => {
      ws.send(JSON.stringify({ bridge: false, type: 0, dataContent: JSON.stringify({ loginUserId: userId, loginToken: 't', firstLoginTime: 0 }), from: userId, to: '0', QoS: false, typeu: -1, sm: -1 }));
    });
    ws.on('message', (data) => resolve({ text: String(data), ws }));
  });
}

describe('behind nginx (deploy/nginx/mobileimsdk.conf)', () => {
  it('carries wss:// and TLS TCP sessions of the SDK, and a raw MobileIMSDK login, to the plain server', async () => {
    const { server, url, nginx } = await setup({}, {}, true);
    const { text, ws } = await rawLogin(url, 'raw-user');
    console.log(`wss via nginx, login response: ${text}`);
    expect(JSON.parse(text)).toMatchObject({ type: 50, from: '0', to: 'raw-user' });
    expect(JSON.parse(JSON.parse(text).dataContent as string)).toMatchObject({ code: 0 });
    ws.close();

    const alice = wssClient(url, pki.caPem);
    const bob = wssClient(url, pki.caPem);
    clients.push(alice, bob);
    const got: string[] = [];
    bob.on('message', (m) => void got.push(`${m.from}: ${m.content}`));
    const r = await alice.login({ userId: 'alice', token: 't' });
    console.log(`wss via nginx, SDK login result: ${JSON.stringify(r)}`);
    await bob.login({ userId: 'bob', token: 't' });
    expect((await alice.send('bob', 'through nginx')).acked).toBe(true);
    await expect.poll(() => got).toEqual(['alice: through nginx']);

    // TLS TCP through nginx's stream proxy (deploy/nginx/mobileimsdk-stream.conf), verified against the CA.
    const carol = tlsTcpClient(nginx.tcpPort!, pki.caPem);
    clients.push(carol);
    await carol.login({ userId: 'carol', token: 't' });
    expect((await carol.send('bob', 'tls tcp through nginx')).acked).toBe(true);
    await expect.poll(() => got).toEqual(['alice: through nginx', 'carol: tls tcp through nginx']);
    expect(server.onlineUsers().sort()).toEqual(['alice', 'bob', 'carol']);
  });

  it('answers 404 for any other path, without reaching the server', async () => {
    const { lines } = await setup();
    const before = lines.length;
    const err = await new Promise<Error>((resolve) => {
      const ws = new WebSocket(`wss://127.0.0.1:${proxies[0].port}/other`, { ca: pki.caPem });
      ws.on('error', resolve);
    });
    expect(err.message).toContain('404');
    // The server logged nothing after its start-up lines: the request never reached it.
    expect(lines.slice(before)).toEqual([]);
  });

  it('keeps a proxied connection open well past the longest idle expiry of any sense mode', () => {
    const longest = Math.max(...Object.values(SenseMode).map((m) => senseModeTimings(m).serverExpiryMs));
    const checks: Array<[string, string]> = [
      [shippedConfig, 'proxy_read_timeout'],
      [shippedConfig, 'proxy_send_timeout'],
      [shippedStreamConfig, 'proxy_timeout'],
    ];
    for (const [file, directive] of checks) {
      const seconds = Number(new RegExp(`^\\s*${directive} (\\d+)s;`, 'm').exec(readFileSync(file, 'utf8'))?.[1]);
      // nginx's default, 60 s, would cut a quiet MODE_60S/MODE_120S session that the server still holds.
      expect(seconds * 1000).toBeGreaterThanOrEqual(2 * longest);
    }
  });

  it('names the client from X-Real-IP / X-Forwarded-For only with ws.trustedProxies (opt-in)', async () => {
    const seen: string[] = [];
    const hooks = { verifyLogin: (_u: string, _t: string, _e: string, conn: ConnectionInfo) => (seen.push(conn.remote), 0) };
    // The client connects from 127.0.0.2 (any 127/8 address is local on Linux), nginx from 127.0.0.1.
    const trusting = await setup({ trustedProxies: ['127.0.0.1'] }, hooks);
    (await rawLogin(trusting.url, 'u1', { localAddress: '127.0.0.2' })).ws.close();
    // A client cannot forge its address: nginx overwrites the headers.
    (await rawLogin(trusting.url, 'u2', { localAddress: '127.0.0.2', headers: { 'X-Forwarded-For': '203.0.113.9', 'X-Real-IP': '203.0.113.9' } })).ws.close();
    // Direct to the server, the headers come from the client itself: not believed.
    (await rawLogin(`ws://127.0.0.1:${trusting.server.ports.ws}/websocket`, 'u3', { localAddress: '127.0.0.2', headers: { 'X-Forwarded-For': '203.0.113.9' } })).ws.close();
    const plain = await setup({}, hooks);
    (await rawLogin(plain.url, 'u4', { localAddress: '127.0.0.2' })).ws.close();
    expect(seen[0]).toMatch(/^127\.0\.0\.2 via 127\.0\.0\.1:\d+$/);
    expect(seen[1]).toMatch(/^127\.0\.0\.2 via 127\.0\.0\.1:\d+$/);
    expect(seen[2]).toMatch(/^127\.0\.0\.2:\d+$/);
    expect(seen[3]).toMatch(/^127\.0\.0\.1:\d+$/);
  });
});
