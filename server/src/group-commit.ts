import { tupleKey } from './bounds';
import { countDown, countUp, FlatMap } from './flat-map';
import type { StoreClock } from './store-expiry';

/** A put waiting for its transaction. */
export interface QueuedPut {
  to: string;
  from: string;
  fp: string;
  frame: string;
  /** The frame's UTF-8 bytes (what `octet_length(frame)` gives for the stored row). */
  bytes: number;
  resolve(inserted: boolean): void;
  reject(err: unknown): void;
  /** Settled without a write: its receiver ACKed it while it was held (see {@link GroupCommit.cancelHeld}). */
  cancelled?: boolean;
  /** Another put of the same message is queued too (a removal then has a row to delete after all). */
  twin?: boolean;
  /**
   * A held put: its key in `held` (`tupleKey(to, from, fp)`, set for held puts only and kept after the
   * commit: the store remembers the keys of committed held puts by it), and when it was made (it is
   * committed `holdMs` after that).
   */
  key?: string;
  heldAtMs?: number;
}

/** A removal waiting for its transaction. */
export interface QueuedRemove {
  to: string;
  from: string;
  fp: string;
  resolve(removed: boolean): void;
  reject(err: unknown): void;
}

/**
 * The offline store's writes waiting for their transaction, and when that transaction runs (the store
 * commits; this decides what and when). A put someone waits for is committed in the turn it was made,
 * with everything queued by then (held puts and removals included), in the order they were made. A held put ({@link put} with `held`, a message being written
 * to its online receiver) is committed `holdMs` after it was made, or never if its receiver's ACK takes it
 * back first ({@link cancelHeld}). Removals wait with the held puts, since nobody waits for them. (A hold
 * that ended at one timer for everything queued before it wrote every message made in the last moments
 * before the timer, a third of them at 16,000 msg/s: bench/README.md, Hot path.)
 *
 * Holds nothing the store did not admit: each put was checked against the store's quota first, and
 * {@link rows} and {@link bytes} count what waits here so the next check includes it. Not to be used
 * after {@link close} (the store refuses its calls once closed): nothing queued then is committed.
 */
export class GroupCommit {
  private puts: QueuedPut[] = [];
  private removes: QueuedRemove[] = [];
  /** Held puts not yet committed, by (to, from, fp). */
  private readonly held = new FlatMap<QueuedPut>();
  /** Queued puts settled without a write, skipped at the commit. */
  private cancelled = 0;
  private sparedWrites = 0;
  private immediate = false;
  /** Due when the oldest held put's hold ends (or `holdMs` after the oldest queued removal). */
  private holdTimer: unknown = null;
  private readonly flushNow = () => this.flush();
  private readonly flushHeldNow = () => this.flushHeld();
  /** Puts per receiver waiting for the next commit. */
  private readonly queued = new FlatMap<number>();
  private queuedRows = 0;
  private queuedBytes = 0;
  private closed = false;

  /** @param write commits the puts and removals given (taken out of the queue) in one transaction and settles them */
  constructor(
    private readonly clock: StoreClock,
    private readonly holdMs: number,
    private readonly write: (puts: QueuedPut[], removes: QueuedRemove[]) => void,
  ) {}

  /** Messages waiting for the next commit. */
  get rows(): number {
    return this.queuedRows;
  }

  /** Their frames' bytes. */
  get bytes(): number {
    return this.queuedBytes;
  }

  /** Whether a put is held now (only then can a removal take one back). */
  get holding(): boolean {
    return this.held.size > 0;
  }

  /** Messages taken back by their receiver's ACK while their put was held: never written. */
  get spared(): number {
    return this.sparedWrites;
  }

  /** Puts for `to` waiting for the next commit. */
  queuedFor(to: string): number {
    return this.queued.get(to) ?? 0;
  }

  /** Queues an admitted put; resolves with whether its row was inserted (false: it was there already). */
  put(to: string, from: string, fp: string, frame: string, bytes: number, held: boolean): Promise<boolean> {
    return new Promise((resolve, reject) => {
      const put: QueuedPut = { to, from, fp, frame, bytes, resolve, reject };
      const key = held || this.held.size > 0 ? tupleKey(to, from, fp) : '';
      // A second put of a held message (a retransmission): the held one can no longer be dropped alone.
      const first = this.held.size > 0 ? this.held.get(key) : undefined;
      if (first) {
        first.twin = true;
        held = false;
      }
      if (held) {
        put.key = key;
        put.heldAtMs = this.clock.now();
        this.held.set(key, put);
      }
      this.puts.push(put);
      countUp(this.queued, to);
      this.queuedRows++;
      this.queuedBytes += bytes;
      this.schedule(!held);
    });
  }

  /**
   * Takes back the held put of `key` (its receiver ACKed it before it was written), settling it as
   * inserted; returns it, or undefined when no put of that key is held.
   */
  cancelHeld(key: string): QueuedPut | undefined {
    const put = this.held.get(key);
    if (!put) return undefined;
    this.held.delete(key);
    put.cancelled = true;
    this.cancelled++;
    this.sparedWrites++;
    this.unqueue(put);
    put.resolve(true);
    return put;
  }

  /** Queues a removal for the next commit; resolves with whether it deleted a row. */
  remove(to: string, from: string, fp: string): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.removes.push({ to, from, fp, resolve, reject });
      this.schedule(false);
    });
  }

  /** Commits every queued write now, in one transaction. */
  flush(): void {
    this.immediate = false;
    this.clearHoldTimer();
    const puts = this.cancelled > 0 ? this.puts.filter((p) => !p.cancelled) : this.puts;
    const removes = this.removes;
    this.puts = [];
    this.removes = [];
    this.cancelled = 0;
    this.held.clear();
    this.queued.clear();
    this.queuedRows = this.queuedBytes = 0;
    if (this.closed || (puts.length === 0 && removes.length === 0)) return;
    this.write(puts, removes);
  }

  /** Commits what is queued and commits nothing after. */
  close(): void {
    this.flush();
    this.closed = true;
  }

  /** Takes a cancelled put out of the counts of queued work. */
  private unqueue(put: QueuedPut): void {
    countDown(this.queued, put.to);
    this.queuedRows--;
    this.queuedBytes -= put.bytes;
  }

  /**
   * Arranges the next commit: in this turn for work someone waits for (`urgent`: a put that is not
   * held), otherwise within `holdMs`, whichever comes first.
   */
  private schedule(urgent: boolean): void {
    if (this.immediate) return;
    if (urgent || this.holdMs === 0) {
      this.immediate = true;
      setImmediate(this.flushNow);
    } else this.holdTimer ??= this.clock.setTimeout(this.flushHeldNow, this.holdMs);
  }

  private clearHoldTimer(): void {
    if (this.holdTimer === null) return;
    this.clock.clearTimeout(this.holdTimer);
    this.holdTimer = null;
  }

  /**
   * The hold timer: commits the queued removals and the held puts whose hold has ended (a prefix, in the
   * order they were made), and waits for the next one's. A clock that went back ends every hold.
   */
  private flushHeld(): void {
    this.holdTimer = null;
    // A put someone waits for is queued: everything is committed this turn anyway, in order.
    if (this.immediate || this.closed) return;
    const now = this.clock.now();
    const due: QueuedPut[] = [];
    const kept: QueuedPut[] = [];
    for (const p of this.puts) {
      if (p.cancelled) continue;
      const held = p.heldAtMs ?? -Infinity;
      if (kept.length === 0 && (now - held >= this.holdMs || now < held)) due.push(p);
      else kept.push(p);
    }
    this.puts = kept;
    this.cancelled = 0;
    for (const p of due) {
      if (p.key !== undefined) this.held.delete(p.key);
      this.unqueue(p);
    }
    if (kept.length > 0) this.holdTimer = this.clock.setTimeout(this.flushHeldNow, Math.max(0, (kept[0].heldAtMs as number) + this.holdMs - now));
    const removes = this.removes;
    this.removes = [];
    if (due.length > 0 || removes.length > 0) this.write(due, removes);
  }
}
