import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { createServer, silentLogger, type IMServer, type SendResult } from '../../server/src/index';

// A server that is shut down while a QoS push waits for the client's ACK: the message is safe in the
// durable store and will be delivered at the user's next login, so the caller awaiting sendToUser()
// should hear "stored" rather than wait for ever.

const dataDir = mkdtempSync(join(tmpdir(), 'im-close-push-'));
const cleanups: Array<() => unknown> = [];

afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  rmSync(dataDir, { recursive: true, force: true });
});

/** Logs a raw WebSocket client in as `userId` and resolves with its socket and the frames it receives. */
async function rawLogin(port: number, userId: string): Promise<{ ws: WebSocket; frames: Array<Record<string, unknown>> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/websocket`);
  ws.on('error', () => undefined);
  cleanups.push(() => ws.terminate());
  const frames: Array<Record<string, unknown>> = [];
  ws.on('message', (data) => frames.push(JSON.parse(data.toString()) as Record<string, unknown>));
  await new Promise((r) => ws.once('open', r));
  const loginInfo = JSON.stringify({ loginUserId: userId, loginToken: 't', extra: '', firstLoginTime: 0 });
  ws.send(JSON.stringify({ bridge: false, type: 0, dataContent: loginInfo, from: userId, to: '0', QoS: false, typeu: -1, sm: -1 }));
  await waitFor(() => frames.some((f) => f.type === 50));
  return { ws, frames };
}

async function waitFor(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('closing the server while a QoS push waits for its ACK', () => {
  it('settles the sendToUser() promise (the message stays stored for the next login)', async () => {
    const server: IMServer = await createServer({ ws: { port: 0, host: '127.0.0.1' }, tcp: false, udp: false, http: false, dataDir, logger: silentLogger });
    cleanups.push(() => server.close());
    const { frames } = await rawLogin(server.ports.ws as number, 'quiet');
    const push = server.sendToUser('quiet', 'never acknowledged');
    await waitFor(() => frames.some((f) => f.type === 2));
    await server.close();
    const outcome = await Promise.race([push, new Promise<'pending'>((r) => setTimeout(() => r('pending'), 1000))]);
    expect(outcome === 'pending' ? 'still pending 1 s after close()' : (outcome as SendResult).status).toBe('stored');

    const again = await createServer({ ws: { port: 0, host: '127.0.0.1' }, tcp: false, udp: false, http: false, dataDir, logger: silentLogger });
    cleanups.push(() => again.close());
    const back = await rawLogin(again.ports.ws as number, 'quiet');
    await waitFor(() => back.frames.some((f) => f.type === 2 && f.dataContent === 'never acknowledged'));
  });
});
