import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ensureServerBuilt } from './child-server';

/**
 * Floods each structure a logged-in client can grow (C2S and C2C de-duplication, the QoS table) and
 * checks the server's heap after a full GC stays under a fixed ceiling. The server runs in a child
 * process with a 128 MB old space, so a server without bounds dies of OOM instead of passing.
 */
const HEAP_CEILING_BYTES = 64 * 1024 * 1024;
const childScript = join(dirname(fileURLToPath(import.meta.url)), 'heap-child.mjs');

interface Child {
  proc: ChildProcess;
  ws: number;
  heapUsed(): Promise<number>;
  alive(): boolean;
  /** The end of the child's stderr (where V8 reports running out of heap). */
  stderr(): string;
}

const children: ChildProcess[] = [];
const sockets: WebSocket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.terminate();
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

beforeAll(() => ensureServerBuilt(), 120_000);

function startChild(options: Record<string, unknown>): Promise<Child> {
  const proc = spawn(process.execPath, ['--expose-gc', '--max-old-space-size=128', childScript, JSON.stringify(options)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(proc);
  let out = '';
  let err = '';
  const lines: Array<Record<string, number>> = [];
  const waiters: Array<() => void> = [];
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  proc.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    let i: number;
    while ((i = out.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(out.slice(0, i)) as Record<string, number>);
      out = out.slice(i + 1);
      for (const w of waiters.splice(0)) w();
    }
  });
  proc.on('exit', () => {
    for (const w of waiters.splice(0)) w();
  });
  const nextLine = async (): Promise<Record<string, number>> => {
    while (lines.length === 0) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`server process died (${proc.exitCode ?? proc.signalCode}): ${err.slice(-500)}`);
      await new Promise<void>((r) => waiters.push(r));
    }
    return lines.shift()!;
  };
  return nextLine().then((first) => ({
    proc,
    ws: first.ws,
    alive: () => proc.exitCode === null && proc.signalCode === null,
    stderr: () => err.slice(-300),
    heapUsed: async () => {
      proc.stdin!.write('heap\n');
      return (await nextLine()).heapUsed;
    },
  }));
}

/** A raw WebSocket logged in as `userId`, counting the frames it gets by type (and dropping them); a `sink` only reads. */
async function loggedIn(port: number, userId: string, sink = false): Promise<{ ws: WebSocket; count: (type: number) => number; codes: number[] }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/websocket`);
  sockets.push(ws);
  const counts = new Map<number, number>();
  const codes: number[] = [];
  let loggedInResolve!: () => void;
  const loggedInPromise = new Promise<void>((r) => (loggedInResolve = r));
  ws.on('message', (data) => {
    if (sink && counts.size > 0) return;
    const f = JSON.parse(data.toString()) as { type: number; dataContent: string };
    counts.set(f.type, (counts.get(f.type) ?? 0) + 1);
    if (f.type === 52) codes.push((JSON.parse(f.dataContent) as { errorCode: number }).errorCode);
    if (f.type === 50) loggedInResolve();
  });
  ws.on('error', () => undefined);
  await new Promise<void>((r, j) => {
    ws.once('open', () => r());
    ws.once('error', j);
  });
  ws.send(JSON.stringify({ type: 0, dataContent: JSON.stringify({ loginUserId: userId, loginToken: 't', extra: '' }), from: '-1', to: '0' }));
  await loggedInPromise;
  return { ws, count: (t) => counts.get(t) ?? 0, codes };
}

/** Sends `n` frames, waiting for the socket to drain every 100 so the flood stays on the wire, not in our memory. */
async function flood(ws: WebSocket, n: number, frame: (i: number) => string, child: Child): Promise<void> {
  for (let i = 0; i < n; i++) {
    if (ws.readyState !== WebSocket.OPEN) {
      await new Promise((r) => setTimeout(r, 500));
      throw new Error(`the connection closed after ${i} frames of the flood; server ${child.alive() ? 'alive' : `died: ${child.stderr()}`}`);
    }
    ws.send(frame(i));
    if (i % 100 === 99) while (ws.bufferedAmount > 8 * 1024 * 1024 && ws.readyState === WebSocket.OPEN) await new Promise((r) => setTimeout(r, 5));
  }
}

/** Waits until the server has handled every frame `m` sent before: frames of a connection are handled in order. */
async function handled(m: { ws: WebSocket; count: (type: number) => number }, child: Child): Promise<void> {
  const echoes = m.count(53);
  m.ws.send(JSON.stringify({ type: 5, dataContent: 'sync', from: '-1', to: '0' }));
  await until(() => m.count(53) > echoes, child);
}

async function until(pred: () => boolean, child: Child, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (!child.alive()) throw new Error('the server process died (out of memory?)');
    if (Date.now() > deadline) throw new Error('timed out waiting for the server to answer the flood');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const N = 3000;
/**
 * Write buffers are outside the heap, and the test process reads slower than the server writes: a high
 * slow-consumer limit keeps the connections open, so what is measured is what the server holds.
 */
const BUFFERED = 256 * 1024 * 1024;
const bigFp = (i: number) => `${i}-`.padEnd(60_000, 'f');

describe('a logged-in client flooding the server stays within a fixed heap ceiling', () => {
  it('C2S frames with 60 KB fps (the de-duplication window): each refused with 320', async () => {
    const child = await startChild({ maxBufferedBytes: BUFFERED });
    const m = await loggedIn(child.ws, 'mallory');
    await flood(m.ws, N, (i) => JSON.stringify({ type: 2, dataContent: 'x', from: 'mallory', to: '0', fp: bigFp(i), QoS: true }), child);
    await handled(m, child);
    expect(m.codes.filter((c) => c === 320)).toHaveLength(N);
    expect(await child.heapUsed()).toBeLessThan(HEAP_CEILING_BYTES);
  }, 120_000);

  it('C2C frames with 60 KB fps (the C2C window, the QoS table): each refused with 320', async () => {
    const child = await startChild({ noStore: true, maxBufferedBytes: BUFFERED });
    const m = await loggedIn(child.ws, 'mallory');
    await loggedIn(child.ws, 'accomplice', true);
    await flood(m.ws, N, (i) => JSON.stringify({ type: 2, dataContent: 'x', from: 'mallory', to: 'accomplice', fp: bigFp(i), QoS: true }), child);
    await handled(m, child);
    expect(m.codes.filter((c) => c === 320)).toHaveLength(N);
    expect(await child.heapUsed()).toBeLessThan(HEAP_CEILING_BYTES);
  }, 120_000);

  it('small C2C messages to online receivers that never ACK: the QoS table holds no more heap than its maxBytes', async () => {
    const maxBytes = 16 * 1024 * 1024;
    // Only the table's byte bound binds: entries and each receiver's share are set out of reach, and the
    // C2C window (bounded on its own) is kept small so that what grows is the table.
    const child = await startChild({
      noStore: true,
      maxBufferedBytes: BUFFERED,
      qos: { maxBytes, maxEntries: 1_000_000, maxEntriesPerReceiver: 1_000_000, maxBytesPerReceiver: maxBytes },
      c2cDedup: { max: 100 },
    });
    const m = await loggedIn(child.ws, 'mallory');
    await loggedIn(child.ws, 'accomplice', true);
    // Warm up first (code, the table's first growth), so the measurement holds what the table holds.
    await flood(m.ws, 200, (i) => JSON.stringify({ type: 2, dataContent: 'warm', from: 'mallory', to: 'nobody', fp: `w-${i}`, QoS: true }), child);
    await handled(m, child);
    const before = await child.heapUsed();
    const acksBefore = m.count(4);
    const refusedBefore = m.codes.filter((c) => c === 321).length;
    const n = 60_000;
    const content = 'x'.repeat(100);
    await flood(m.ws, n, (i) => JSON.stringify({ type: 2, dataContent: content, from: 'mallory', to: 'accomplice', fp: `fp-${i}-0123456789abcdef`, QoS: true }), child);
    await handled(m, child);
    const refused = m.codes.filter((c) => c === 321).length - refusedBefore;
    // The bound was reached, and everything below it was taken.
    expect(refused).toBeGreaterThan(0);
    expect(m.count(4) - acksBefore + refused).toBe(n);
    const grown = (await child.heapUsed()) - before;
    expect(grown).toBeLessThan(maxBytes);
  }, 180_000);

  it('60 KB C2C messages to an online receiver that never ACKs (the QoS table): refused with 321 past its 32 MiB', async () => {
    const child = await startChild({ noStore: true, maxBufferedBytes: BUFFERED });
    const m = await loggedIn(child.ws, 'mallory');
    await loggedIn(child.ws, 'accomplice', true);
    const content = 'x'.repeat(60_000);
    await flood(m.ws, N, (i) => JSON.stringify({ type: 2, dataContent: content, from: 'mallory', to: 'accomplice', fp: `fp-${i}`, QoS: true }), child);
    await handled(m, child);
    expect(m.count(4)).toBeGreaterThan(0);
    expect(m.count(4) + m.codes.filter((c) => c === 321).length).toBe(N);
    expect(m.codes.filter((c) => c === 321).length).toBeGreaterThan(N / 2);
    expect(await child.heapUsed()).toBeLessThan(HEAP_CEILING_BYTES);
  }, 120_000);
});
