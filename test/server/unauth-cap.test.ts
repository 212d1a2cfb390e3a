import { connect as tcpConnect } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { AddressCap, refusalLogger } from '../../server/src/address-cap';
import { silentLogger, type ServerOptions } from '../../server/src/index';
import { login, TcpClient, useServers, WsClient, type RawClient } from './helpers';

const { setup, track } = useServers();

/** A WebSocket client bound to `from`: the client once upgraded, or the HTTP status it was refused with. */
function openWs(port: number, from: string, headers: Record<string, string> = {}): Promise<WsClient | number> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/websocket`, { localAddress: from, headers });
  const c = track(new WsClient(ws));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(c));
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

/** A TCP client bound to `from`, connected (the server may still close it at once). */
async function openTcp(port: number, from: string): Promise<TcpClient> {
  const socket = tcpConnect({ port, host: '127.0.0.1', localAddress: from });
  const c = track(new TcpClient(socket));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  return c;
}

/** True when the server serves the connection: an echo comes back. False when it closed it instead. */
async function served(c: RawClient): Promise<boolean> {
  c.send({ type: 5, dataContent: 'ping', from: 'x', to: '0' });
  try {
    await c.nextOfType(53, 2000);
    return true;
  } catch {
    return c.closeInfo === null ? Promise.reject(new Error('neither an echo nor a close')) : false;
  }
}

async function wsAccepted(port: number, from: string, headers?: Record<string, string>): Promise<WsClient> {
  const c = await openWs(port, from, headers);
  if (typeof c === 'number') throw new Error(`refused with HTTP ${c}`);
  return c;
}

const CAP = 3;
const opts: ServerOptions = { maxUnauthenticatedPerAddress: CAP };

describe('connections not logged in yet, capped per source IP (WebSocket and TCP)', () => {
  it('WebSocket: the connection over the cap is refused with 429 before the upgrade; another IP, a login or a close frees the way', async () => {
    const { server } = await setup(opts);
    const port = server.ports.ws!;
    const first: WsClient[] = [];
    for (let i = 0; i < CAP; i++) first.push(await wsAccepted(port, '127.0.0.2'));
    expect(await openWs(port, '127.0.0.2')).toBe(429);
    expect(await served(await wsAccepted(port, '127.0.0.3'))).toBe(true);
    // One of the first logs in: it no longer counts.
    expect((await login(first[0], 'u-ws')).code).toBe(0);
    const fourth = await wsAccepted(port, '127.0.0.2');
    expect(await openWs(port, '127.0.0.2')).toBe(429);
    // A close frees its slot.
    first[1].close();
    await first[1].closed;
    await waitFor(async () => typeof (await openWs(port, '127.0.0.2')) !== 'number');
    expect(await served(first[2])).toBe(true);
    expect(await served(fourth)).toBe(true);
  });

  it('TCP: the connection over the cap is closed at accept; another IP, a login or a close frees the way', async () => {
    const { server } = await setup(opts);
    const port = server.ports.tcp!;
    const first: TcpClient[] = [];
    for (let i = 0; i < CAP; i++) first.push(await openTcp(port, '127.0.0.2'));
    for (const c of first) expect(await served(c)).toBe(true);
    const over = await openTcp(port, '127.0.0.2');
    expect(await served(over)).toBe(false);
    expect(over.closeInfo).toEqual({ code: 0, reason: 'tcp-close' });
    expect(await served(await openTcp(port, '127.0.0.3'))).toBe(true);
    expect((await login(first[0], 'u-tcp')).code).toBe(0);
    expect(await served(await openTcp(port, '127.0.0.2'))).toBe(true);
    expect(await served(await openTcp(port, '127.0.0.2'))).toBe(false);
    first[1].close();
    await waitFor(async () => served(await openTcp(port, '127.0.0.2')));
  });

  it('counts WebSocket and TCP connections of one IP together, and warns once per gateway for a burst of refusals', async () => {
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (m: string) => void warnings.push(m) };
    const { server } = await setup({ maxUnauthenticatedPerAddress: 2, logger });
    await wsAccepted(server.ports.ws!, '127.0.0.2');
    expect(await served(await openTcp(server.ports.tcp!, '127.0.0.2'))).toBe(true);
    expect(await served(await openTcp(server.ports.tcp!, '127.0.0.2'))).toBe(false);
    expect(await served(await openTcp(server.ports.tcp!, '127.0.0.2'))).toBe(false);
    expect(await openWs(server.ports.ws!, '127.0.0.2')).toBe(429);
    expect(await openWs(server.ports.ws!, '127.0.0.2')).toBe(429);
    expect(warnings.filter((w) => w.includes('refused'))).toEqual([
      'tcp gateway: refused 1 connection(s) over the cap of 2 not logged in per address (latest from 127.0.0.2)',
      'ws gateway: refused 1 connection(s) over the cap of 2 not logged in per address (latest from 127.0.0.2)',
    ]);
  });

  it('behind a trusted proxy counts the forwarded client address, not the proxy', async () => {
    const { server } = await setup({ maxUnauthenticatedPerAddress: 2, ws: { port: 0, host: '127.0.0.1', trustedProxies: ['127.0.0.1'] } });
    const port = server.ports.ws!;
    const from = (ip: string) => ({ 'x-forwarded-for': ip });
    await wsAccepted(port, '127.0.0.1', from('10.0.0.1'));
    await wsAccepted(port, '127.0.0.1', from('::ffff:10.0.0.1'));
    expect(await openWs(port, '127.0.0.1', from('10.0.0.1'))).toBe(429);
    expect(await served(await wsAccepted(port, '127.0.0.1', from('10.0.0.2')))).toBe(true);
    // The proxy naming no client, and TCP from the proxy (no client address at all): not counted.
    for (let i = 0; i < 3; i++) expect(await served(await wsAccepted(port, '127.0.0.1'))).toBe(true);
    for (let i = 0; i < 3; i++) expect(await served(await openTcp(server.ports.tcp!, '127.0.0.1'))).toBe(true);
    // Anyone else is counted by its own address, whatever header it sends.
    await wsAccepted(port, '127.0.0.2', from('10.0.0.9'));
    await wsAccepted(port, '127.0.0.2', from('10.0.0.8'));
    expect(await openWs(port, '127.0.0.2', from('10.0.0.7'))).toBe(429);
  });

  it('0 turns the cap off', async () => {
    const { server } = await setup({ maxUnauthenticatedPerAddress: 0 });
    for (let i = 0; i < 5; i++) await wsAccepted(server.ports.ws!, '127.0.0.2');
    for (let i = 0; i < 5; i++) expect(await served(await openTcp(server.ports.tcp!, '127.0.0.2'))).toBe(true);
  });

  it('refuses a bad option value naming it', async () => {
    await expect(setup({ maxUnauthenticatedPerAddress: -1 })).rejects.toThrow(/maxUnauthenticatedPerAddress/);
    await expect(setup({ maxUnauthenticatedPerAddress: 1.5 })).rejects.toThrow(/maxUnauthenticatedPerAddress/);
  });
});

describe('AddressCap', () => {
  afterEach(() => void vi.useRealTimers());

  it('refusal warnings: at most one per 10 s, naming how many were refused since the last', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const lines: string[] = [];
    const refused = refusalLogger((m) => void lines.push(m), 'tcp gateway', 64);
    refused('10.0.0.1');
    refused('10.0.0.1');
    vi.advanceTimersByTime(9_999);
    refused('10.0.0.2');
    expect(lines).toHaveLength(1);
    vi.advanceTimersByTime(1);
    refused('10.0.0.3');
    expect(lines).toEqual([
      'tcp gateway: refused 1 connection(s) over the cap of 64 not logged in per address (latest from 10.0.0.1)',
      'tcp gateway: refused 3 connection(s) over the cap of 64 not logged in per address (latest from 10.0.0.3)',
    ]);
  });

  it('holds an entry only while its count is above zero, IPv4-mapped IPv6 counted as IPv4', () => {
    const cap = new AddressCap(2);
    const a = cap.acquire('::ffff:127.0.0.2')!;
    const b = cap.acquire('127.0.0.2')!;
    expect(cap.acquire('127.0.0.2')).toBeNull();
    const c = cap.acquire('127.0.0.3')!;
    expect(cap.addresses).toBe(2);
    a.release();
    a.release(); // idempotent: login then close
    expect(cap.countOf('127.0.0.2')).toBe(1);
    const d = cap.acquire('127.0.0.2')!;
    for (const s of [b, c, d]) s.release();
    expect(cap.addresses).toBe(0);
  });
});

/** Retries `check` until it holds (a close reaches the server a moment after the client's). */
async function waitFor(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('condition never held');
}
