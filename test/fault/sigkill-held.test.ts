import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowserAdapter } from '../../adapters/browser';
import { IMClient } from '../../src/index';
import { ensureServerBuilt, sigkill, startChildServer, type ChildServer } from '../server/child-server';
import { FaultProxy, seededRandom } from './fault-proxy';
import { Ledger } from './ledger';

/**
 * Held puts under a SIGKILL: one server process (the CLI) with a long store hold, so that at each kill
 * many messages are written to their receivers but not yet on disk, is killed twice mid-run and started
 * again on the same port and data directory. Shortly before each kill a few connections stall (through a
 * proxy: no bytes, no close), so messages written to those receivers are neither read nor ACKed when the
 * process dies: only their senders' retransmissions can bring them, and only if they were never ACKed.
 * Every message must end delivered once or reported lost.
 */

const SEED = Number(process.env.FAULT_SEED ?? 20261130);
const USERS = 8;
const MESSAGES = 2400;
const SEND_MS = 8000;
const TICK_MS = 20;
const KILLS_AT_MS = [2500, 5500];
/** How long before each kill, and how many, connections stall. */
const STALL_BEFORE_KILL_MS = 400;
const STALLS_PER_KILL = 4;
const DOWN_MS = 300;
const SETTLE_MS = 20000;
/** Long enough that a receiver's ACK usually settles a put before its commit, and many are held at a kill. */
const HOLD_MS = 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let dataDir = '';

beforeAll(() => {
  ensureServerBuilt();
  dataDir = mkdtempSync(join(tmpdir(), 'im-sigkill-held-'));
}, 60000);

afterAll(() => {
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('held puts and SIGKILL (server as a real child process)', () => {
  it('settles every message as delivered once or reported lost when the server is killed twice with puts held', async () => {
    const start = (port = 0) => startChildServer(dataDir, 'sigkill-held', port, ['--store-hold-ms', String(HOLD_MS)]);
    let child: ChildServer = await start();
    const port = child.ports.ws;
    const clients: IMClient[] = [];
    const proxy = new FaultProxy(port, seededRandom(SEED + 1));
    const proxyPort = await proxy.listen();
    try {
      const ledger = new Ledger();
      const names = Array.from({ length: USERS }, (_, i) => `u${i}`);
      for (const [i, name] of names.entries()) {
        const c = new IMClient({
          url: `ws://127.0.0.1:${proxyPort}/websocket`,
          adapter: createBrowserAdapter({ WebSocket: WebSocket as never, window: null, document: null }),
          keepAlive: { intervalMs: 250, timeoutMs: 1000 },
          reconnect: { minDelayMs: 50, maxDelayMs: 400 },
          loginTimeoutMs: 1000,
          qos: { checkIntervalMs: 200, resendAfterMs: 500, maxRetries: 1000, maxPending: 5000, deliverTimeoutMs: 20000 },
          random: seededRandom(SEED + i),
        });
        c.on('message', (m) => ledger.received(m.content, name));
        c.on('lost', ({ message }) => ledger.lostEvent(message.content));
        clients.push(c);
      }
      await Promise.all(clients.map((c, i) => c.login({ userId: names[i], token: 't' })));

      const pick = seededRandom(SEED);
      const kills = [...KILLS_AT_MS];
      const stalls = KILLS_AT_MS.map((ms) => ms - STALL_BEFORE_KILL_MS);
      const killed: Promise<void>[] = [];
      let restarts = 0;
      const t0 = Date.now();
      const perTick = Math.ceil((MESSAGES * TICK_MS) / SEND_MS);
      for (let seq = 0; seq < MESSAGES; ) {
        if (stalls.length > 0 && Date.now() - t0 >= stalls[0]) {
          stalls.shift();
          for (let k = 0; k < STALLS_PER_KILL; k++) proxy.faultOne('stall');
        }
        if (kills.length > 0 && Date.now() - t0 >= kills[0]) {
          kills.shift();
          const victim = child;
          killed.push(
            sigkill(victim)
              .then(() => sleep(DOWN_MS))
              .then(() => start(port))
              .then((next) => {
                child = next;
                restarts++;
              }),
          );
        }
        for (let k = 0; k < perTick && seq < MESSAGES; k++, seq++) {
          const from = seq % USERS;
          let to = Math.floor(pick() * USERS);
          if (to === from) to = (from + 1) % USERS;
          const id = `${names[from]}>${names[to]}#${seq}`;
          ledger.sent(id, names[from], names[to]);
          clients[from].send(names[to], id, { qos: true, fp: id }).then(
            () => ledger.acked(id),
            () => ledger.rejected(id),
          );
        }
        await sleep(TICK_MS);
      }
      await Promise.all(killed);
      const deadline = Date.now() + SETTLE_MS;
      while (!ledger.quiet() && Date.now() < deadline) await sleep(100);
      await sleep(500);

      const all = ledger.counts();
      console.log(`SIGKILL with held puts (seed ${SEED}, hold ${HOLD_MS} ms): restarts ${restarts}, proxy ${JSON.stringify(proxy.counts)}, ${JSON.stringify(all)}`);
      expect(restarts).toBe(KILLS_AT_MS.length);
      expect(proxy.counts.stalls).toBe(KILLS_AT_MS.length * STALLS_PER_KILL);
      expect(all.sent).toBe(MESSAGES);
      expect(all).toMatchObject({ silent: 0, duplicates: 0, lostButDelivered: 0, unsettled: 0, lostEventMismatch: 0, wrongReceiver: 0, ackedNotDelivered: 0 });
      expect(all.delivered + all.lost).toBe(all.sent);
    } finally {
      for (const c of clients) c.destroy();
      await proxy.close();
      await sigkill(child);
    }
  }, 60000);
});
