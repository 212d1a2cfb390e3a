import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBrowserAdapter } from '../../adapters/browser';
import { IMClient, type IncomingMessage } from '../../src/index';
import { cliPath, ensureServerBuilt, sigkill, startChildServer, type ChildServer } from './child-server';
import { ackFrame, admin, dataFrame, login, WsClient, type RawClient } from './helpers';

const TOKEN = 'restart-token';
const children: ChildServer[] = [];
const clients: RawClient[] = [];
const sdkClients: IMClient[] = [];
let dataDir = '';

beforeAll(() => {
  ensureServerBuilt();
  dataDir = mkdtempSync(join(tmpdir(), 'im-restart-'));
}, 60000);

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const c of sdkClients.splice(0)) c.destroy();
  await Promise.all(children.splice(0).map(sigkill));
});

afterAll(() => {
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function start(): Promise<ChildServer> {
  const child = await startChildServer(dataDir, TOKEN);
  children.push(child);
  return child;
}

function sdk(port: number): IMClient {
  const c = new IMClient({
    url: `ws://127.0.0.1:${port}/websocket`,
    adapter: createBrowserAdapter({ WebSocket: WebSocket as never, window: null, document: null }),
  });
  sdkClients.push(c);
  return c;
}

async function open(child: ChildServer): Promise<WsClient> {
  const c = await WsClient.open(child.ports.ws);
  clients.push(c);
  return c;
}

describe('durability across SIGKILL (server as a real child process)', () => {
  it('loses no acknowledged message: offline C2C, S2C pushes and un-ACKed online deliveries all come back in order', async () => {
    const N = 40;
    let child = await start();
    const sender = await open(child);
    await login(sender, 'alice');
    const online = await open(child);
    await login(online, 'carol');

    for (let i = 0; i < N; i++) sender.send(dataFrame('alice', 'bob', `offline ${i}`, `fp-bob-${i}`));
    for (let i = 0; i < N; i++) expect((await sender.nextOfType(4)).dataContent).toBe(`fp-bob-${i}`);
    const push = await admin(child.ports.http, 'POST', '/api/send', { to: 'bob', content: 'pushed', fp: 'fp-push' }, TOKEN);
    expect(push.json.status).toBe('stored');
    sender.send(dataFrame('alice', 'carol', 'to carol', 'fp-carol'));
    expect((await online.nextOfType(2)).fp).toBe('fp-carol');
    expect((await sender.nextOfType(4)).dataContent).toBe('fp-carol');

    await sigkill(child);
    child = await start();

    const bob = await open(child);
    await login(bob, 'bob');
    const got: string[] = [];
    for (let i = 0; i <= N; i++) got.push((await bob.nextOfType(2)).fp as string);
    expect(got).toEqual([...Array.from({ length: N }, (_, i) => `fp-bob-${i}`), 'fp-push']);
    const carol = await open(child);
    await login(carol, 'carol');
    expect((await carol.nextOfType(2)).dataContent).toBe('to carol');

    // An ACK names the acknowledged message's sender in `to`, as MobileIMSDK clients do: the server's push is from "0".
    for (const fp of got) bob.send(ackFrame('bob', fp === 'fp-push' ? '0' : 'alice', fp));
    carol.send(ackFrame('carol', 'alice', 'fp-carol'));
    await expect.poll(async () => (await admin(child.ports.http, 'GET', '/api/metrics', undefined, TOKEN)).json.offlinePending).toBe(0);

    await sigkill(child);
    child = await start();
    const bobAgain = await open(child);
    await login(bobAgain, 'bob');
    expect(await bobAgain.quiet(300)).toEqual([]);
  });

  it('delivers what was ACKed before a SIGKILL of the server once it restarts, with our SDK on both ends', async () => {
    let child = await start();
    const dora = sdk(child.ports.ws);
    await dora.login({ userId: 'dora' });
    const receipts = [];
    for (let i = 0; i < 10; i++) receipts.push(await dora.send('erin', `m${i}`));
    dora.destroy();
    await sigkill(child);
    child = await start();
    const erin = sdk(child.ports.ws);
    const got: IncomingMessage[] = [];
    erin.on('message', (m) => void got.push(m));
    await erin.login({ userId: 'erin' });
    await expect.poll(() => got.map((m) => m.fp)).toEqual(receipts.map((r) => r.fp));
  });

  it('the built CLI prints its flags and environment variables with --help', () => {
    const text = execFileSync(process.execPath, [cliPath, '--help'], { encoding: 'utf8' });
    expect(text).toMatch(/--ws-port <n>\s+IM_WS_PORT/);
    expect(text).toMatch(/--admin-token <value>\s+IM_ADMIN_TOKEN/);
  });
});
