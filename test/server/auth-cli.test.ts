import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportPKCS8, exportSPKI, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { helpText, parseCli } from '../../server/src/cli-args';
import { ServerErrorCode } from '../../server/src/index';
import { cliPath, ensureServerBuilt } from './child-server';
import { WsClient, type RawClient } from './helpers';
import { tryLogin } from './auth-helpers';

const SECRET = 'cli-test-secret-that-is-32-bytes-or-more';
let dir: string;
let es256: { publicKey: CryptoKey; privateKey: CryptoKey };
let publicPem: string;
const children: ChildProcess[] = [];
const clients: RawClient[] = [];
const backends: Server[] = [];

beforeAll(async () => {
  ensureServerBuilt();
  dir = mkdtempSync(join(tmpdir(), 'im-auth-cli-'));
  // Keys are made for this run only and live in a temporary directory.
  es256 = await generateKeyPair('ES256', { extractable: true });
  publicPem = await exportSPKI(es256.publicKey);
  writeFileSync(join(dir, 'public.pem'), publicPem);
  writeFileSync(join(dir, 'private.pem'), await exportPKCS8(es256.privateKey));
  writeFileSync(join(dir, 'garbage.pem'), 'not a key');
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const b of backends.splice(0)) {
    b.closeAllConnections();
    b.close();
  }
  await Promise.all(children.splice(0).map(stop));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Kills a child with SIGKILL and waits until it is gone. */
function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    proc.once('exit', () => r());
    proc.kill('SIGKILL');
  });
}

/** Runs the built CLI with `args`; resolves once it printed its banner, or when it exits before that. */
function runCli(args: string[], env: Record<string, string> = {}) {
  const proc = spawn(
    process.execPath,
    [cliPath, '--ws-port', '0', '--tcp-port', '-1', '--udp-port', '-1', '--http-port', '-1', '--host', '127.0.0.1', '--data-dir', join(dir, `data-${children.length}`), '--log-level', 'warn', ...args],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(proc);
  let stdout = '';
  let stderr = '';
  return new Promise<{ wsPort: number | null; exitCode: number | null; stdout: () => string; stderr: () => string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the CLI neither started nor exited: ${stdout} ${stderr}`)), 10000);
    const result = (wsPort: number | null) => ({ wsPort, exitCode: proc.exitCode, stdout: () => stdout, stderr: () => stderr });
    proc.stdout!.on('data', (c: Buffer) => {
      stdout += c.toString();
      const ws = /websocket\s+ws:\/\/[^:]+:(\d+)/.exec(stdout);
      if (ws && stdout.includes('offline store:')) {
        clearTimeout(timer);
        resolve(result(Number(ws[1])));
      }
    });
    proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve(result(null));
    });
  });
}

async function client(port: number): Promise<WsClient> {
  const c = await WsClient.open(port);
  clients.push(c);
  return c;
}

const es256Token = (sub: string, aud = 'im') => new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setSubject(sub).setAudience(aud).setExpirationTime('1m').sign(es256.privateKey);

describe('auth flags', () => {
  it('map to the auth option, from flags or environment variables', () => {
    expect(parseCli([], {}).options.auth).toBeUndefined();
    expect(parseCli(['--auth', 'none'], {}).options.auth).toBe('none');
    expect(parseCli([], { IM_AUTH_JWT_SECRET: SECRET, IM_AUTH_JWT_AUDIENCE: 'im' }).options.auth).toEqual({ jwt: { secret: SECRET, audience: 'im', issuer: undefined } });
    const key = parseCli(['--auth-jwt-public-key', join(dir, 'public.pem'), '--auth-jwt-issuer', 'me'], {}).options.auth as { jwt: { publicKey: { asymmetricKeyType: string } } };
    expect(key.jwt.publicKey.asymmetricKeyType).toBe('ec');
    expect(parseCli(['--auth-webhook', 'http://127.0.0.1:9/v', '--auth-webhook-timeout-ms', '500', '--auth-webhook-max-in-flight', '8', '--auth-webhook-cache-ms', '0'], {}).options.auth).toEqual({
      webhook: { url: 'http://127.0.0.1:9/v', timeoutMs: 500, maxInFlight: 8, cacheTtlMs: 0 },
    });
    const text = helpText();
    for (const s of ['--auth ', 'IM_AUTH ', '--auth-jwt-secret', 'IM_AUTH_JWT_SECRET', '--auth-jwt-public-key', '--auth-jwt-audience', '--auth-jwt-issuer', '--auth-webhook', '--auth-webhook-timeout-ms', '--auth-webhook-max-in-flight', '--auth-webhook-cache-ms']) {
      expect(text).toContain(s);
    }
  });

  it('refuse conflicting or incomplete settings, and name the key file that cannot be used', () => {
    const missing = join(dir, 'nope', 'missing.pem');
    const cases: Array<[string[], RegExp]> = [
      [['--auth', 'jwt'], /--auth must be "none"/],
      [['--auth', 'none', '--auth-jwt-secret', SECRET], /choose one way/],
      [['--auth-jwt-secret', SECRET, '--auth-webhook', 'http://x/'], /choose one way/],
      [['--auth-jwt-secret', SECRET, '--auth-jwt-public-key', join(dir, 'public.pem')], /choose one of --auth-jwt-secret/],
      [['--auth-jwt-audience', 'im'], /--auth-jwt-audience needs --auth-jwt-secret/],
      [['--auth-webhook-timeout-ms', '5'], /needs --auth-webhook/],
      [['--auth-jwt-secret', 'short'], /--auth-jwt-secret: auth\.jwt\.secret must be at least 32 bytes/],
      [['--auth-webhook', 'ftp://x/'], /--auth-webhook: auth\.webhook\.url must be http/],
      [['--auth-webhook', 'http://x/', '--auth-webhook-timeout-ms', '0'], /--auth-webhook-timeout-ms must be an integer/],
      [['--auth-jwt-public-key', missing], new RegExp(`cannot read the key file ${missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(ENOENT\\)`)],
      [['--auth-jwt-public-key', join(dir, 'garbage.pem')], /garbage\.pem is not a PEM public key/],
      [['--auth-jwt-public-key', join(dir, 'private.pem')], /private\.pem holds a private key/],
    ];
    for (const [argv, message] of cases) expect(() => parseCli(argv, {}), argv.join(' ')).toThrow(message);
  });
});

describe('the CLI with authentication', () => {
  it('verifies ES256 tokens with --auth-jwt-public-key and --auth-jwt-audience: Mallory cannot log in as bob', async () => {
    const cli = await runCli(['--auth-jwt-public-key', join(dir, 'public.pem'), '--auth-jwt-audience', 'im']);
    expect(cli.stdout()).toContain('authentication: JWT ES256 (sub = user id, audience checked)');
    expect(cli.stdout()).not.toContain('WARNING');
    const port = cli.wsPort!;
    expect(await tryLogin(await client(port), 'bob', await es256Token('bob'))).toMatchObject({ code: 0 });
    expect(await tryLogin(await client(port), 'bob', await es256Token('mallory'))).toMatchObject({ code: ServerErrorCode.AUTH_INVALID_TOKEN, closed: true });
    expect(await tryLogin(await client(port), 'bob', await es256Token('bob', 'other-app'))).toMatchObject({ code: ServerErrorCode.AUTH_INVALID_TOKEN });
    expect(await tryLogin(await client(port), 'bob', 'anything')).toMatchObject({ code: ServerErrorCode.AUTH_INVALID_TOKEN });
  });

  it('takes the HS256 secret from IM_AUTH_JWT_SECRET, keeping it off the command line and out of the output', async () => {
    const cli = await runCli([], { IM_AUTH_JWT_SECRET: SECRET });
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setExpirationTime('1m').sign(new TextEncoder().encode(SECRET));
    expect(await tryLogin(await client(cli.wsPort!), 'alice', token)).toMatchObject({ code: 0 });
    expect(await tryLogin(await client(cli.wsPort!), 'bob', token)).toMatchObject({ code: ServerErrorCode.AUTH_INVALID_TOKEN });
    expect(cli.stdout() + cli.stderr()).not.toContain(SECRET);
  });

  it('asks the --auth-webhook backend', async () => {
    const backend = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const { userId, token } = JSON.parse(body) as { userId: string; token: string };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(token === `ok-${userId}` ? { ok: true } : { code: 1040 }));
      });
    });
    backends.push(backend);
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
    const cli = await runCli(['--auth-webhook', `http://127.0.0.1:${(backend.address() as AddressInfo).port}/verify`, '--auth-webhook-timeout-ms', '2000']);
    expect(cli.stdout()).toMatch(/authentication: webhook POST http:\/\/127\.0\.0\.1:\d+\/verify/);
    expect(await tryLogin(await client(cli.wsPort!), 'bob', 'ok-bob')).toMatchObject({ code: 0 });
    expect(await tryLogin(await client(cli.wsPort!), 'bob', 'ok-mallory')).toMatchObject({ code: 1040 });
  });

  it('exits with code 2 naming the path when the public key file is missing', async () => {
    const missing = join(dir, 'missing.pem');
    const cli = await runCli(['--auth-jwt-public-key', missing]);
    expect(cli.wsPort).toBeNull();
    expect(cli.exitCode).toBe(2);
    expect(cli.stderr()).toContain(`error: --auth-jwt-public-key: cannot read the key file ${missing} (ENOENT)`);
  });

  it('says loudly, in the banner and as a warn-level log line, that every login is accepted when no authentication is configured', async () => {
    const cli = await runCli([]);
    expect(cli.stdout()).toMatch(/WARNING: authentication: NOT CONFIGURED: every login is accepted/);
    // And as a warn-level (40) JSON log line, for whoever reads the logs rather than the terminal.
    await vi.waitFor(() => expect(cli.stdout()).toMatch(/\{"level":40,[^\n]*"msg":"authentication: NOT CONFIGURED/), { timeout: 5000 });
    expect(await tryLogin(await client(cli.wsPort!), 'bob', 'anything')).toMatchObject({ code: 0 });

    const none = await runCli(['--auth', 'none']);
    expect(none.stdout()).toMatch(/authentication: none \(auth: 'none'\): every login is accepted/);
    expect(none.stdout()).not.toContain('WARNING');
  });
});
