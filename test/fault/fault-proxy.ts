import { connect, createServer, type Server, type Socket } from 'node:net';

/** How often each fault strikes; every probability is per connection or per chunk, as named. */
export interface FaultSettings {
  /** Per connection: chance it is cut (both sides destroyed) at a random moment within `faultWithinMs`. */
  dropRate: number;
  /** Per connection: chance it stalls at a random moment: no more bytes, no close, in either direction. */
  stallRate: number;
  /** Window, from the connection's start, in which a drop or a stall strikes. */
  faultWithinMs: number;
  /** Per chunk: chance it is held back for up to `maxDelayMs` (order is always kept). */
  delayRate: number;
  maxDelayMs: number;
  /** Per chunk: chance it is written in several small pieces, a few milliseconds apart. */
  splitRate: number;
}

/** What the proxy did, for the test's report. */
export interface FaultCounts {
  connections: number;
  refused: number;
  drops: number;
  stalls: number;
  delayedChunks: number;
  splitChunks: number;
}

/** No faults at all: a plain pipe. */
export const NO_FAULTS: FaultSettings = { dropRate: 0, stallRate: 0, faultWithinMs: 0, delayRate: 0, maxDelayMs: 0, splitRate: 0 };

interface Pair {
  client: Socket;
  upstream: Socket;
  stalled: boolean;
  closed: boolean;
  timer: ReturnType<typeof setTimeout> | null;
}

/**
 * One direction of a pair: chunks leave in arrival order, each possibly late and possibly in pieces.
 * Nothing is written once the pair is stalled or closed.
 */
class Pump {
  private readonly queue: Buffer[] = [];
  private busy = false;

  constructor(private readonly proxy: FaultProxy, private readonly pair: Pair, private readonly to: Socket) {}

  push(chunk: Buffer): void {
    if (this.pair.stalled || this.pair.closed) return;
    this.queue.push(chunk);
    if (!this.busy) void this.run();
  }

  private async run(): Promise<void> {
    this.busy = true;
    while (this.queue.length > 0) {
      const chunk = this.queue.shift() as Buffer;
      const f = this.proxy.faults;
      if (f.delayRate > 0 && this.proxy.random() < f.delayRate) {
        this.proxy.counts.delayedChunks++;
        await sleep(Math.floor(this.proxy.random() * f.maxDelayMs));
      }
      if (this.pair.stalled || this.pair.closed) break;
      if (chunk.length > 1 && f.splitRate > 0 && this.proxy.random() < f.splitRate) {
        this.proxy.counts.splitChunks++;
        let at = 0;
        while (at < chunk.length) {
          const n = 1 + Math.floor(this.proxy.random() * Math.min(64, chunk.length - at));
          this.to.write(chunk.subarray(at, at + n));
          at += n;
          await sleep(1);
          if (this.pair.stalled || this.pair.closed) break;
        }
      } else {
        this.to.write(chunk);
      }
    }
    this.queue.length = 0;
    this.busy = false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * A TCP proxy that misbehaves on purpose, for fault-injection tests. It forwards the raw bytes between
 * clients and one upstream port, so it sits under any protocol that runs over TCP (WebSocket here), and
 * can cut a connection, stall it half-open, delay or split its chunks. All choices come from the given
 * `random()`, so a seed makes the sequence of faults repeatable.
 */
export class FaultProxy {
  readonly counts: FaultCounts = { connections: 0, refused: 0, drops: 0, stalls: 0, delayedChunks: 0, splitChunks: 0 };
  faults: FaultSettings = NO_FAULTS;
  private readonly pairs = new Set<Pair>();
  private server: Server | null = null;
  private accepting = true;

  constructor(private readonly upstreamPort: number, readonly random: () => number) {}

  /** Starts listening on a free loopback port and resolves with it. */
  listen(): Promise<number> {
    const server = createServer((client) => this.accept(client));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const addr = server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : 0);
      });
    });
  }

  /** Whether new connections are forwarded (false: they are refused at once, as a dead host would). */
  setAccepting(accepting: boolean): void {
    this.accepting = accepting;
  }

  /** Number of connection pairs open now (stalled ones included). */
  get open(): number {
    return this.pairs.size;
  }

  /**
   * Cuts (`drop`) or stalls (`stall`: no data, no close either way) the oldest open connection now, so
   * every run has at least one of each whatever the timing of the random faults; returns whether there
   * was a connection to act on.
   */
  faultOne(kind: 'drop' | 'stall'): boolean {
    for (const pair of this.pairs) {
      if (pair.stalled || pair.closed) continue;
      if (kind === 'drop') {
        this.counts.drops++;
        this.finish(pair);
      } else {
        if (pair.timer) clearTimeout(pair.timer);
        pair.stalled = true;
        this.counts.stalls++;
      }
      return true;
    }
    return false;
  }

  /**
   * Stalls every open connection whose upstream socket `match` picks (e.g. by its local port, as the
   * upstream server lists its clients): its bytes are read and dropped both ways, nothing is closed.
   * Returns how many it stalled.
   */
  stallWhere(match: (upstream: Socket) => boolean): number {
    let n = 0;
    for (const pair of this.pairs) {
      if (pair.stalled || pair.closed || !match(pair.upstream)) continue;
      if (pair.timer) clearTimeout(pair.timer);
      pair.stalled = true;
      this.counts.stalls++;
      n++;
    }
    return n;
  }

  /** Cuts every connection at once. */
  dropAll(): void {
    for (const p of this.pairs) this.finish(p);
  }

  /** Cuts every connection and stops listening. */
  async close(): Promise<void> {
    this.dropAll();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  private accept(client: Socket): void {
    client.on('error', () => undefined);
    if (!this.accepting) {
      this.counts.refused++;
      client.destroy();
      return;
    }
    this.counts.connections++;
    const upstream = connect(this.upstreamPort, '127.0.0.1');
    upstream.on('error', () => undefined);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const pair: Pair = { client, upstream, stalled: false, closed: false, timer: null };
    this.pairs.add(pair);
    const up = new Pump(this, pair, upstream);
    const down = new Pump(this, pair, client);
    client.on('data', (chunk: Buffer) => up.push(chunk));
    upstream.on('data', (chunk: Buffer) => down.push(chunk));
    // A stalled pair forwards no close either: the far side must find out by itself (the half-open case).
    client.on('close', () => {
      if (!pair.stalled) this.finish(pair);
    });
    upstream.on('close', () => this.finish(pair));
    const f = this.faults;
    const roll = this.random();
    const at = Math.floor(this.random() * f.faultWithinMs);
    if (roll < f.dropRate) {
      pair.timer = setTimeout(() => {
        if (pair.closed) return;
        this.counts.drops++;
        this.finish(pair);
      }, at);
    } else if (roll < f.dropRate + f.stallRate) {
      pair.timer = setTimeout(() => {
        if (pair.closed) return;
        this.counts.stalls++;
        pair.stalled = true;
      }, at);
    }
  }

  private finish(pair: Pair): void {
    if (pair.closed) return;
    pair.closed = true;
    if (pair.timer) clearTimeout(pair.timer);
    this.pairs.delete(pair);
    pair.client.destroy();
    pair.upstream.destroy();
  }
}

export { seededRandom } from '../helpers/random';
