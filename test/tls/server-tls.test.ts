/**
 * TLS on the server's own ports: the SDK over wss:// (browser adapter with `ws`) and over TLS TCP (TCP
 * adapter with node:tls), certificate reload without dropping connections, start-up errors, expiry logs.
 * Certificates come from a throwaway CA made with openssl at run time.
 */
import { once } from 'node:events';
import { copyFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import tls from 'node:tls';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTcpAdapter } from '../../adapters/tcp';
import type { IMClient } from '../../src/index';
import { createServer, type IMServer, type ServerOptions } from '../../server/src/index';
import { recorder } from '../adapters/conformance';
import { captureLogger, peerSerial, tlsTcpClient, wssClient } from './helpers';
import { TestPki, type ServerCert } from './pki';

let pki: TestPki;
let first: ServerCert;
let second: ServerCert;
const servers: IMServer[] = [];
const clients: IMClient[] = [];

beforeAll(() => {
  pki = new TestPki();
  first = pki.issue('first');
  second = pki.issue('second');
});
afterAll(() => pki?.dispose());
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  for (const s of servers.splice(0)) await s.close();
});

/** Copies a certificate and its key to fresh paths the server reads (and the test may overwrite). */
function liveFiles(name: string, from: ServerCert): { cert: string; key: string } {
  const cert = join(pki.dir, `${name}-live.pem`);
  const key = join(pki.dir, `${name}-live.key`);
  copyFileSync(from.certPath, cert);
  copyFileSync(from.keyPath, key);
  return { cert, key };
}

async function start(tlsOpts: ServerOptions['tls'], extra: ServerOptions = {}) {
  const { logger, lines } = captureLogger();
  const server = await createServer({
    ws: { port: 0, host: '127.0.0.1' },
    tcp: { port: 0, host: '127.0.0.1' },
    udp: false,
    http: false,
    logger,
    tls: tlsOpts,
    ...extra,
  });
  servers.push(server);
  return { server, lines, wssUrl: `wss://127.0.0.1:${server.ports.ws}/websocket`, tcpPort: server.ports.tcp! };
}

function track(c: IMClient): IMClient {
  clients.push(c);
  return c;
}

describe('TLS on the WebSocket and TCP gateways', () => {
  it('serves the SDK over wss:// and TLS TCP, and relays between them', async () => {
    const { wssUrl, tcpPort } = await start({ ...liveFiles('relay', first), watch: false, reloadOnSighup: false });
    const alice = track(wssClient(wssUrl, pki.caPem));
    const bob = track(tlsTcpClient(tcpPort, pki.caPem));
    const got: string[] = [];
    bob.on('message', (m) => void got.push(`${m.from}: ${m.content}`));
    await alice.login({ userId: 'alice', token: 't' });
    await bob.login({ userId: 'bob', token: 't' });
    expect((await alice.send('bob', 'over wss')).acked).toBe(true);
    await expect.poll(() => got).toEqual(['alice: over wss']);
    expect((await bob.echo()).rttMs).toBeGreaterThanOrEqual(0);
    expect(await peerSerial(tcpPort, pki.caPem)).toBe(first.serial);
  });

  it('the TCP adapter verifies the certificate by default: an unknown CA or another name is refused', async () => {
    const { tcpPort } = await start({ ...liveFiles('verify', first), watch: false, reloadOnSighup: false });
    const outcome = async (options: Parameters<typeof createTcpAdapter>[1]) => {
      const rec = recorder();
      createTcpAdapter(tls, options).connect(`tls://127.0.0.1:${tcpPort}`, rec.handlers);
      await expect.poll(() => rec.types().at(-1)).toMatch(/^(open|close)$/);
      const error = rec.events.find((e) => e.type === 'error');
      if (rec.types().includes('open')) rec.handlers.onClose({ code: 1000, reason: '' });
      return { types: rec.types(), code: (error && 'error' in error ? (error.error as NodeJS.ErrnoException).code : undefined) };
    };
    // Node's public CA bundle does not hold the test CA.
    expect(await outcome({})).toMatchObject({ types: ['error', 'close'], code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    // The certificate names 127.0.0.1 and localhost, not im.example.com.
    expect(await outcome({ ca: pki.caPem, servername: 'im.example.com' })).toMatchObject({ types: ['error', 'close'], code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    expect((await outcome({ ca: pki.caPem, servername: 'localhost' })).types[0]).toBe('open');
    // Only when asked explicitly does it accept any certificate.
    expect((await outcome({ rejectUnauthorized: false })).types[0]).toBe('open');
  });

  it('reloads on SIGHUP: open connections stay up, new handshakes get the new certificate', async () => {
    const listenersBefore = process.listenerCount('SIGHUP');
    const files = liveFiles('hup', first);
    const { wssUrl, tcpPort, server, lines } = await start({ ...files, watch: false });
    const alice = track(wssClient(wssUrl, pki.caPem));
    const bob = track(tlsTcpClient(tcpPort, pki.caPem));
    const transitions: string[] = [];
    for (const c of [alice, bob]) c.on('state', ({ to }) => void transitions.push(to));
    await alice.login({ userId: 'alice', token: 't' });
    await bob.login({ userId: 'bob', token: 't' });
    const before = transitions.length;
    expect(await peerSerial(server.ports.ws!, pki.caPem)).toBe(first.serial);

    copyFileSync(second.certPath, files.cert);
    copyFileSync(second.keyPath, files.key);
    process.emit('SIGHUP', 'SIGHUP');

    expect(await peerSerial(server.ports.ws!, pki.caPem)).toBe(second.serial);
    expect(await peerSerial(tcpPort, pki.caPem)).toBe(second.serial);
    expect(lines.filter((l) => l.includes('reloaded (SIGHUP)') && l.includes(`serial ${second.serial}`))).toHaveLength(2);
    // The sessions made over the old certificate are the same ones, still talking.
    expect((await alice.echo()).rttMs).toBeGreaterThanOrEqual(0);
    expect((await bob.echo()).rttMs).toBeGreaterThanOrEqual(0);
    expect(transitions.slice(before)).toEqual([]);
    expect(server.onlineUsers().sort()).toEqual(['alice', 'bob']);
    // One SIGHUP listener per TLS gateway, removed again by close().
    expect(process.listenerCount('SIGHUP')).toBe(listenersBefore + 2);
    await server.close();
    expect(process.listenerCount('SIGHUP')).toBe(listenersBefore);
  });

  it('reloads when the files change, and keeps the old certificate when the new one is broken', async () => {
    const files = liveFiles('watch', first);
    const { wssUrl, tcpPort, server, lines } = await start({ ...files, watchIntervalMs: 50, reloadOnSighup: false });
    const alice = track(wssClient(wssUrl, pki.caPem));
    await alice.login({ userId: 'alice', token: 't' });

    writeFileSync(files.cert, 'not a certificate\n');
    await expect.poll(() => lines.filter((l) => l.startsWith('error: ') && l.includes('reload (file changed) failed')).length, { timeout: 5000 }).toBe(2);
    expect(lines.find((l) => l.includes('failed'))).toContain(files.cert);
    expect(lines.find((l) => l.includes('failed'))).toContain(`keeping the certificate with serial ${first.serial}`);
    expect(await peerSerial(server.ports.ws!, pki.caPem)).toBe(first.serial);
    expect(await peerSerial(tcpPort, pki.caPem)).toBe(first.serial);

    copyFileSync(second.keyPath, files.key);
    copyFileSync(second.certPath, files.cert);
    await expect.poll(() => lines.filter((l) => l.includes('reloaded (file changed)') && l.includes(`serial ${second.serial}`)).length, { timeout: 5000 }).toBe(2);
    expect(await peerSerial(server.ports.ws!, pki.caPem)).toBe(second.serial);
    expect(await peerSerial(tcpPort, pki.caPem)).toBe(second.serial);
    expect((await alice.echo()).rttMs).toBeGreaterThanOrEqual(0);
  });

  it('refuses to start on a missing file or a key of another certificate, naming the paths', async () => {
    const missing = join(pki.dir, 'no-such-cert.pem');
    await expect(start({ cert: missing, key: first.keyPath })).rejects.toThrow(`TLS certificate (tls.cert) ${missing}: cannot read it (ENOENT)`);
    await expect(start({ cert: first.certPath, key: join(pki.dir, 'gone.key') })).rejects.toThrow(`TLS private key (tls.key) ${join(pki.dir, 'gone.key')}: cannot read it (ENOENT)`);
    await expect(start({ cert: first.certPath, key: first.keyPath, ca: join(pki.dir, 'gone-chain.pem') })).rejects.toThrow('gone-chain.pem');
    await expect(start({ cert: first.certPath, key: second.keyPath })).rejects.toThrow(`TLS ${first.certPath} with key ${second.keyPath}`);
    await expect(start({ cert: '', key: first.keyPath })).rejects.toThrow(TypeError);
    expect(servers).toHaveLength(0);
  });

  it('sends the chain given as tls.ca after the certificate', async () => {
    const { tcpPort } = await start({ cert: first.certPath, key: first.keyPath, ca: pki.caPath, watch: false, reloadOnSighup: false });
    const chain = await new Promise<string[]>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: tcpPort, ca: pki.caPem }, () => {
        const leaf = s.getPeerCertificate(true);
        resolve([leaf.serialNumber, String(leaf.issuerCertificate?.subject?.CN ?? '')]);
        s.destroy();
      });
      s.on('error', reject);
    });
    expect(chain).toEqual([first.serial, 'mobileimsdk-ts test CA']);
  });

  it('drops a client that never finishes its TLS handshake after handshakeTimeoutMs, on both ports', async () => {
    const { server } = await start({ ...liveFiles('stall', first), watch: false, reloadOnSighup: false, handshakeTimeoutMs: 1000 });
    const stalled = [server.ports.ws!, server.ports.tcp!].map((port) => {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      return s;
    });
    await Promise.all(stalled.map((s) => once(s, 'connect')));
    await new Promise((r) => setTimeout(r, 50));
    expect(stalled.map((s) => s.closed)).toEqual([false, false]);
    await expect.poll(() => stalled.map((s) => s.closed), { timeout: 5000 }).toEqual([true, true]);
  });

  it('close() does not wait for a connection still in its handshake', async () => {
    const { server } = await start({ ...liveFiles('closing', first), watch: false, reloadOnSighup: false });
    const stalled = [server.ports.ws!, server.ports.tcp!].map((port) => connect(port, '127.0.0.1').on('error', () => undefined));
    await Promise.all(stalled.map((s) => once(s, 'connect')));
    servers.splice(servers.indexOf(server), 1);
    // The handshake limit is 10 s; before the fix close() waited for it (the TCP side for ever).
    let deadline: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise((_, reject) => (deadline = setTimeout(() => reject(new Error('close() waited for a pending handshake')), 3000)));
    await Promise.race([server.close(), late]);
    clearTimeout(deadline);
    await expect.poll(() => stalled.map((s) => s.closed)).toEqual([true, true]);
  });

  it('logs a certificate that expires within 14 days at start', async () => {
    const soon = pki.issue('soon', 5);
    const { lines } = await start({ cert: soon.certPath, key: soon.keyPath, watch: false, reloadOnSighup: false });
    const warnings = lines.filter((l) => l.startsWith('warn: ') && l.includes('expires in 5 days'));
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain(soon.certPath);
    expect(warnings[0]).toContain(`serial ${soon.serial}`);
    // `first` is valid for 2 days: with a 1-day threshold there is nothing to say.
    const { lines: quiet } = await start({ cert: first.certPath, key: first.keyPath, watch: false, reloadOnSighup: false, expiryWarningMs: 24 * 3600 * 1000 });
    expect(quiet.filter((l) => l.includes('expires'))).toEqual([]);
  });
});
