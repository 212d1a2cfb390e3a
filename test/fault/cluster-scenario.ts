import { expect } from 'vitest';
import { WebSocket } from 'ws';
import { createBrowserAdapter } from '../../adapters/browser';
import { IMClient } from '../../src/index';
import { seededRandom } from '../helpers/random';
import { Ledger, type LedgerCounts } from './ledger';

/** Set FAULT_SEED to replay another sequence; the default is fixed so runs repeat. */
export const CLUSTER_SEED = Number(process.env.FAULT_SEED ?? 20261129);
const TICK_MS = 20;
const SETTLE_MS = 20_000;

/** What {@link runClusterScenario} does. */
export interface ClusterScenarioOptions {
  /** Every node's WebSocket URL, in node order. */
  urls: string[];
  /** Users, spread evenly: user i starts at node `i % urls.length`. */
  users: number;
  /** C2C messages sent in all, evenly over `sendMs`. */
  messages: number;
  sendMs: number;
  /**
   * Run (not awaited by the send loop) `atMs` after the first send; the scenario waits for it before
   * settling. `send` sends one more C2C message through the ledger (`from>to#extra-N`).
   */
  fault: { atMs: number; run(io: { send(from: string, to: string): void }): Promise<void> };
  /** Added to CLUSTER_SEED so each case draws its own sequence. */
  seed: number;
}

/** What a run saw: the ledger, when each message left, and each user's connection history. */
export interface ClusterScenarioReport {
  all: LedgerCounts;
  ledger: Ledger;
  /** ms since the first send at which each message id was handed to send(). */
  sentAtMs: Map<string, number>;
  /** ms since the first send at which each message id first reached its receiving application. */
  deliveredAtMs: Map<string, number>;
  /** ms since the first send at which the fault started. */
  faultAtMs: number;
  /** The URL each user logged in at first (its home node). */
  home: Map<string, string>;
  /** Per user: [ms since the first send, URL] at each later login (after a reconnect). */
  relogins: Map<string, Array<{ atMs: number; url: string }>>;
  /** Per user: why and when (ms since the first send) its session went down. */
  drops: Map<string, Array<{ atMs: number; reason: string }>>;
  /** Per user: the SDK's `lost` events, by error code. */
  lostCodes: Record<string, number>;
  /** Time from the first send until every message settled (or the settle deadline). */
  settledMs: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The index `new IMClient` will start at in a list of `n` URLs, given the client's `random`. */
function firstPick(seed: number, n: number): number {
  return (seededRandom(seed)() * n) | 0;
}

/**
 * SDK clients (WebSocket, QoS on, the URL list of every node) exchange C2C messages while `fault` runs:
 * each user's list is ordered so that its seeded random start is its home node, user i's node i % n.
 * Resolves with the ledger once every message settled and every ACKed one arrived, or the settle
 * deadline passed; destroys every client either way.
 */
export async function runClusterScenario(o: ClusterScenarioOptions): Promise<ClusterScenarioReport> {
  const seed = CLUSTER_SEED + o.seed;
  const pick = seededRandom(seed);
  const n = o.urls.length;
  const names = Array.from({ length: o.users }, (_, i) => `u${i}`);
  const ledger = new Ledger();
  const clients = new Map<string, IMClient>();
  const home = new Map<string, string>();
  const relogins = new Map<string, Array<{ atMs: number; url: string }>>();
  const drops = new Map<string, Array<{ atMs: number; reason: string }>>();
  const sentAtMs = new Map<string, number>();
  const deliveredAtMs = new Map<string, number>();
  const lostCodes: Record<string, number> = {};
  let t0 = 0;
  try {
    for (const [i, name] of names.entries()) {
      const clientSeed = seed + 100 + i;
      const start = firstPick(clientSeed, n);
      // Rotated so that entry `start` (the first draw's pick, where the client begins) is node i % n; it then
      // walks its own random order of the others.
      const urls = Array.from({ length: n }, (_, k) => o.urls[(i + k - start + n * 2) % n]);
      const c = new IMClient({
        url: urls,
        adapter: createBrowserAdapter({ WebSocket: WebSocket as never, window: null, document: null }),
        keepAlive: { intervalMs: 1000, timeoutMs: 5000 },
        reconnect: { minDelayMs: 250, maxDelayMs: 1000 },
        loginTimeoutMs: 1000,
        qos: { checkIntervalMs: 200, resendAfterMs: 500, maxRetries: 1000, maxPending: 5000, deliverTimeoutMs: 60_000 },
        random: seededRandom(clientSeed),
      });
      clients.set(name, c);
      expect(c.url).toBe(o.urls[i % n]);
      home.set(name, c.url);
      relogins.set(name, []);
      c.on('message', (m) => {
        ledger.received(m.content, name);
        if (!deliveredAtMs.has(m.content)) deliveredAtMs.set(m.content, Date.now() - t0);
      });
      c.on('lost', ({ message, error }) => {
        ledger.lostEvent(message.content);
        const code = `${error.code}${error.serverCode !== undefined ? `/${error.serverCode}` : ''}`;
        lostCodes[code] = (lostCodes[code] ?? 0) + 1;
      });
    }
    await Promise.all([...clients].map(([name, c]) => c.login({ userId: name, token: 't' })));
    for (const [name, c] of clients) {
      drops.set(name, []);
      c.on('state', ({ from, to, reason }) => {
        if (to === 'online') relogins.get(name)?.push({ atMs: Date.now() - t0, url: c.url });
        if (from === 'online') drops.get(name)?.push({ atMs: Date.now() - t0, reason });
      });
    }

    const send = (from: string, to: string, id: string): void => {
      ledger.sent(id, from, to);
      sentAtMs.set(id, Date.now() - t0);
      (clients.get(from) as IMClient).send(to, id, { qos: true, fp: id }).then(
        () => ledger.acked(id),
        () => ledger.rejected(id),
      );
    };

    t0 = Date.now();
    let faultDone: Promise<void> | null = null;
    let faultAtMs = -1;
    const perTick = Math.ceil((o.messages * TICK_MS) / o.sendMs);
    let seq = 0;
    while (seq < o.messages) {
      if (!faultDone && Date.now() - t0 >= o.fault.atMs) {
        faultAtMs = Date.now() - t0;
        let extra = 0;
        faultDone = o.fault.run({ send: (from, to) => send(from, to, `${from}>${to}#extra-${extra++}`) });
      }
      for (let k = 0; k < perTick && seq < o.messages; k++, seq++) {
        const from = names[seq % o.users];
        let to = names[Math.floor(pick() * o.users)];
        if (to === from) to = names[(names.indexOf(from) + 1) % o.users];
        send(from, to, `${from}>${to}#${seq}`);
      }
      await sleep(TICK_MS);
    }
    await faultDone;
    const deadline = Date.now() + SETTLE_MS;
    while (!ledger.quiet() && Date.now() < deadline) await sleep(100);
    const settledMs = Date.now() - t0;
    // Room for a late duplicate to show up.
    await sleep(500);
    return { all: ledger.counts(), ledger, sentAtMs, deliveredAtMs, faultAtMs, home, relogins, drops, lostCodes, settledMs };
  } finally {
    for (const c of clients.values()) c.destroy();
  }
}

/**
 * The QoS promise on a run: every message delivered once to its addressee or reported lost to its
 * sender (promise and `lost` event agreeing), nothing silent or unsettled, no duplicate the application
 * sees, no loss report for a message that arrived.
 */
export function expectQosPromiseKept(r: ClusterScenarioReport, messages: number): void {
  expect(r.all.sent).toBe(messages + [...r.sentAtMs.keys()].filter((id) => id.includes('#extra-')).length);
  expect(r.all).toMatchObject({ silent: 0, duplicates: 0, lostButDelivered: 0, unsettled: 0, lostEventMismatch: 0, wrongReceiver: 0 });
  expect(r.all.delivered + r.all.lost).toBe(r.all.sent);
}

/** One line of figures for the test's output. */
export function describeRun(name: string, r: ClusterScenarioReport): string {
  const c = r.all;
  return (
    `${name} (seed ${CLUSTER_SEED}): sent ${c.sent}, delivered ${c.delivered}, lost ${c.lost} ${JSON.stringify(r.lostCodes)}, ` +
    `duplicates ${c.duplicates}, silent ${c.silent}, lostButDelivered ${c.lostButDelivered}, unsettled ${c.unsettled}; ` +
    `fault at ${r.faultAtMs} ms, all settled at ${r.settledMs} ms`
  );
}

/** The receiver of a message id `from>to#seq`. */
export function receiverOf(id: string): string {
  return id.slice(id.indexOf('>') + 1, id.indexOf('#'));
}

/** Minimum, median and maximum of `values` (ms; NaN for what never happened), for the test's output. */
export function spread(values: number[]): string {
  const v = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  const missing = values.length - v.length ? `, ${values.length - v.length} never` : '';
  if (v.length === 0) return `none${missing}`;
  return `min ${v[0]}, median ${v[v.length >> 1]}, max ${v[v.length - 1]} ms (${v.length}${missing})`;
}
