import { afterEach, describe, expect, it } from 'vitest';
import { helpText, parseCli } from '../../server/src/cli-args';
import type { IMServer } from '../../server/src/index';
import { createServer, silentLogger } from '../../server/src/index';
import { closeAll, login, startServer, TcpClient, type RawClient } from './helpers';

const clients: RawClient[] = [];
const servers: IMServer[] = [];
afterEach(async () => {
  await closeAll(clients.splice(0), servers.splice(0));
});

describe('CLI arguments', () => {
  it('defaults to every gateway on its MobileIMSDK port and a generated admin token', () => {
    const c = parseCli([], {});
    expect(c.options.ws).toEqual({ port: 3000, host: undefined, path: '/websocket' });
    expect(c.options.tcp).toEqual({ port: 8901, host: undefined });
    expect(c.options.udp).toEqual({ port: 7901, host: undefined });
    expect(c.options.http).toMatchObject({ port: 8080 });
    expect(c.adminTokenGenerated).toBe(true);
    expect(c.options.dataDir).toBe('data');
  });

  it('reads environment variables, lets flags win, and turns a gateway off with -1', () => {
    const c = parseCli(['--ws-port=0', '--udp-port', '-1', '--sense-mode', '2'], { IM_WS_PORT: '4000', IM_TCP_PORT: '9000', IM_ADMIN_TOKEN: 'sekrit' });
    expect(c.options.ws).toMatchObject({ port: 0 });
    expect(c.options.tcp).toMatchObject({ port: 9000 });
    expect(c.options.udp).toBe(false);
    expect(c.options.http).toMatchObject({ adminToken: 'sekrit' });
    expect(c.adminTokenGenerated).toBe(false);
    expect(c.options.senseMode).toBe(2);
  });

  it('refuses unknown flags and bad values with a readable message', () => {
    expect(() => parseCli(['--nope'], {})).toThrow(/unknown flag --nope/);
    expect(() => parseCli(['--tcp-port', '70000'], {})).toThrow(/--tcp-port must be an integer/);
    expect(() => parseCli(['--sense-mode', '9'], {})).toThrow(/--sense-mode/);
    expect(() => parseCli(['--data-dir'], {})).toThrow(/needs a value/);
  });

  it('lists every flag with its environment variable in --help', () => {
    const text = helpText();
    for (const s of ['--ws-port', 'IM_WS_PORT', '--tcp-port', '--udp-port', '--http-port', '--admin-token', 'IM_ADMIN_TOKEN', '--sense-mode', '--data-dir', 'IM_DATA_DIR']) {
      expect(text).toContain(s);
    }
    expect(parseCli(['--help'], {}).help).toBe(true);
  });
});

describe('createServer options and limits', () => {
  it('validates options up front', async () => {
    await expect(createServer({ ws: { port: 70000 }, logger: silentLogger })).rejects.toThrow(RangeError);
    await expect(createServer({ senseMode: 42, logger: silentLogger })).rejects.toThrow(/senseMode/);
    await expect(createServer({ ws: { port: 0, path: 'websocket' }, logger: silentLogger })).rejects.toThrow(TypeError);
    const bad: Array<[Parameters<typeof createServer>[0], RegExp]> = [
      [{ rateLimit: { burst: 10, perSecond: 0 } }, /rateLimit.perSecond/],
      [{ rateLimit: { burst: 10, perSecond: -5 } }, /rateLimit.perSecond/],
      [{ qos: { maxRetries: -1 } }, /qos.maxRetries/],
      [{ qos: { maxRetries: 1.5 } }, /qos.maxRetries/],
      [{ qos: { resendAfterMs: -1 } }, /qos.resendAfterMs/],
      [{ dedup: { ttlMs: 0 } }, /dedup.ttlMs/],
      [{ dedup: { max: Number.NaN } }, /dedup.max/],
    ];
    for (const [o, message] of bad) await expect(createServer({ ...o, logger: silentLogger })).rejects.toThrow(message);
  });

  it('starts only the gateways asked for and reports their bound ports', async () => {
    const server = await createServer({ ws: { port: 0 }, tcp: false, udp: false, http: false, logger: silentLogger });
    servers.push(server);
    expect(Object.keys(server.ports)).toEqual(['ws']);
    expect(server.ports.ws).toBeGreaterThan(0);
  });

  it('fails cleanly when a port is taken, closing what it had started', async () => {
    const first = await startServer();
    servers.push(first);
    await expect(createServer({ ws: { port: 0 }, tcp: { port: first.ports.tcp! }, udp: false, http: false, logger: silentLogger })).rejects.toThrow(/EADDRINUSE/);
  });

  it('drops a TCP client that stops reading once its write queue passes the limit', async () => {
    const server = await startServer({ maxBufferedBytes: 64 * 1024 });
    servers.push(server);
    const c = await TcpClient.open(server.ports.tcp!);
    clients.push(c);
    await login(c, 'slow');
    c.socket.pause();
    const big = 'x'.repeat(4000);
    for (let i = 0; i < 3000 && server.onlineUsers().includes('slow'); i++) {
      await server.sendToUser('slow', big, { qos: false });
      if (i % 100 === 0) await new Promise((r) => setImmediate(r));
    }
    await expect.poll(() => server.onlineUsers()).toEqual([]);
  });
});
