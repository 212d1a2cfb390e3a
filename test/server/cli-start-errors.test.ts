import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPath, ensureServerBuilt } from './child-server';

let dataDir: string;
beforeAll(() => {
  ensureServerBuilt();
  dataDir = mkdtempSync(join(tmpdir(), 'im-cli-errors-'));
}, 120000);
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

/** Runs the CLI to its exit and returns the exit code and what it printed on stderr. */
function runCli(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const proc = spawn(process.execPath, [cliPath, '--host', '127.0.0.1', '--data-dir', dataDir, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10000);
  return new Promise((ok) =>
    proc.once('exit', (code) => {
      clearTimeout(timer);
      ok({ code, stderr });
    }),
  );
}

/** Holds a TCP port (or a UDP one) on 127.0.0.1 and returns it with a release function. */
async function occupy(kind: 'tcp' | 'udp'): Promise<{ port: number; release: () => void }> {
  if (kind === 'udp') {
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    return { port: sock.address().port, release: () => sock.close() };
  }
  const srv = createTcpServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return { port: (srv.address() as AddressInfo).port, release: () => srv.close() };
}

describe('the CLI when a port is taken', () => {
  const cases = [
    ['--ws-port', 'IM_WS_PORT', 'WebSocket gateway', 'tcp'],
    ['--tcp-port', 'IM_TCP_PORT', 'TCP gateway', 'tcp'],
    ['--udp-port', 'IM_UDP_PORT', 'UDP gateway', 'udp'],
    ['--http-port', 'IM_HTTP_PORT', 'admin API', 'tcp'],
  ] as const;
  it.each(cases)('names %s when its port is in use, and exits 1', async (flag, env, name, kind) => {
    const taken = await occupy(kind);
    try {
      const others = ['--ws-port', '--tcp-port', '--udp-port', '--http-port'].filter((f) => f !== flag).flatMap((f) => [f, '0']);
      const { code, stderr } = await runCli([...others, flag, String(taken.port)]);
      expect(code).toBe(1);
      expect(stderr).toContain(`port ${taken.port} (${name}) is already in use`);
      expect(stderr).toContain(`choose another port with ${flag} <port> (or ${env})`);
    } finally {
      taken.release();
    }
  });
});
