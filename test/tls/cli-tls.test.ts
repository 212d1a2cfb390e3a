/**
 * TLS from the command line: --tls-cert/--tls-key/--tls-ca and --trusted-proxies, and the built CLI as a
 * child process that reloads its certificate on a real SIGHUP without dropping a connection.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { IMClient } from '../../src/index';
import { parseCli } from '../../server/src/cli-args';
import { resolveOptions } from '../../server/src/options';
import { cliPath, ensureServerBuilt } from '../server/child-server';
import { peerSerial, tlsTcpClient, wssClient } from './helpers';
import { TestPki, type ServerCert } from './pki';

let pki: TestPki;
let first: ServerCert;
let second: ServerCert;
let dataDir: string;
const procs: ChildProcess[] = [];
const clients: IMClient[] = [];

beforeAll(() => {
  pki = new TestPki();
  first = pki.issue('cli-first');
  second = pki.issue('cli-second');
  dataDir = mkdtempSync(join(tmpdir(), 'im-cli-tls-'));
  ensureServerBuilt();
}, 120000);
afterAll(() => {
  pki?.dispose();
  rmSync(dataDir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  for (const p of procs.splice(0)) {
    if (p.exitCode !== null || p.signalCode !== null) continue;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  }
});

/** Runs the CLI with `args`; `ready` resolves with the bound ports once it printed them, or with its exit. */
function runCli(args: string[]) {
  const proc = spawn(process.execPath, [cliPath, '--udp-port', '-1', '--http-port', '-1', '--host', '127.0.0.1', '--data-dir', dataDir, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  procs.push(proc);
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const ready = new Promise<{ ws: number; tcp: number } | { exitCode: number | null }>((resolve) => {
    const poll = setInterval(() => {
      const ws = /websocket\s+wss?:\/\/[^:]+:(\d+)/.exec(out);
      const tcp = /tcp\s+(?:tls:\/\/)?[^:\s]+:(\d+)/.exec(out);
      if (ws && tcp) {
        clearInterval(poll);
        resolve({ ws: Number(ws[1]), tcp: Number(tcp[1]) });
      }
    }, 20);
    proc.once('exit', (exitCode) => {
      clearInterval(poll);
      resolve({ exitCode });
    });
  });
  return { proc, ready, output: () => out };
}

describe('TLS flags', () => {
  it('maps --tls-cert/--tls-key/--tls-ca and their variables to the tls option, and --trusted-proxies to ws', () => {
    const c = parseCli(['--tls-cert', 'c.pem', '--tls-ca=chain.pem', '--trusted-proxies', '127.0.0.1, ::1'], { IM_TLS_KEY: 'k.pem' });
    expect(c.options.tls).toEqual({ cert: 'c.pem', key: 'k.pem', ca: 'chain.pem' });
    expect(c.options.ws).toMatchObject({ trustedProxies: ['127.0.0.1', '::1'] });
    expect(parseCli([], {}).options.tls).toBeUndefined();
    expect(() => parseCli(['--tls-cert', 'c.pem'], {})).toThrow('--tls-cert and --tls-key go together');
    expect(() => parseCli(['--tls-ca', 'chain.pem'], {})).toThrow('--tls-ca needs --tls-cert');
    expect(() => resolveOptions(parseCli(['--trusted-proxies', 'nginx.local'], {}).options)).toThrow('ws.trustedProxies must be an array of IP addresses');
  });
});

describe('the CLI with --tls-cert', () => {
  it('reloads on SIGHUP without dropping connections, and logs the near expiry at start', async () => {
    const cert = join(pki.dir, 'cli-live.pem');
    const key = join(pki.dir, 'cli-live.key');
    copyFileSync(first.certPath, cert);
    copyFileSync(first.keyPath, key);
    const cli = runCli(['--ws-port', '0', '--tcp-port', '0', '--tls-cert', cert, '--tls-key', key]);
    const ports = await cli.ready;
    if (!('ws' in ports)) throw new Error(`the CLI exited: ${cli.output()}`);
    // The test certificate is valid for 2 days: under the 14-day threshold.
    expect(cli.output()).toMatch(/expires in 2 days/);

    const alice = wssClient(`wss://127.0.0.1:${ports.ws}/websocket`, pki.caPem);
    const bob = tlsTcpClient(ports.tcp, pki.caPem);
    clients.push(alice, bob);
    const states: string[] = [];
    for (const c of [alice, bob]) c.on('state', ({ to }) => void states.push(to));
    await alice.login({ userId: 'alice', token: 't' });
    await bob.login({ userId: 'bob', token: 't' });
    const settled = states.length;
    expect(await peerSerial(ports.ws, pki.caPem)).toBe(first.serial);

    copyFileSync(second.certPath, cert);
    copyFileSync(second.keyPath, key);
    cli.proc.kill('SIGHUP');
    await expect.poll(() => cli.output().match(/TLS certificate reloaded \(SIGHUP\)/g)?.length ?? 0).toBe(2);
    expect(await peerSerial(ports.ws, pki.caPem)).toBe(second.serial);
    expect(await peerSerial(ports.tcp, pki.caPem)).toBe(second.serial);
    const got: string[] = [];
    bob.on('message', (m) => void got.push(m.content));
    expect((await alice.send('bob', 'after the reload')).acked).toBe(true);
    await expect.poll(() => got).toEqual(['after the reload']);
    expect(states.slice(settled)).toEqual([]);
    expect(cli.proc.exitCode).toBeNull();
  });

  it('exits at start with an error naming a missing certificate file', async () => {
    const missing = join(pki.dir, 'absent.pem');
    const cli = runCli(['--ws-port', '0', '--tcp-port', '-1', '--tls-cert', missing, '--tls-key', first.keyPath]);
    expect(await cli.ready).toEqual({ exitCode: 1 });
    expect(cli.output()).toContain(`TLS certificate (tls.cert) ${missing}: cannot read it (ENOENT)`);
  });
});
