import Database from 'better-sqlite3';
import { tupleKey } from './bounds';
import { createPendingTable } from './sqlite-schema';
import { dataDirOpenError, fileIdentity, prepareDataDir, sameFile, type FileIdentity } from './data-dir';
import type { ExpiredMessage, OfflineStore, StoredMessage, StoreHealth } from './offline-store';
import { OfflineStoreError } from './store-error';
import { GroupCommit, type QueuedPut, type QueuedRemove } from './group-commit';
import { RecentKeys } from './recent-keys';
import { ExpirySweeper, unref, type StoreClock } from './store-expiry';
import { resolveStoreOptions, type ResolvedStoreOptions, type SqliteStoreOptions } from './sqlite-store-options';

export type { StoreClock } from './store-expiry';
export type { SqliteStoreOptions } from './sqlite-store-options';

/** The database file's name inside the data directory. */
const DB_FILE = 'offline.db';
/** Receivers whose message count (zero included) is cached at once (each entry holds a user id of up to 256 characters). */
const MAX_CACHED_COUNTS = 10000;
/** Held puts committed before their receiver's ACK came, remembered at once (each key holds two user ids and an fp). */
const MAX_LATELY_COMMITTED = 4096;

/**
 * The default store: SQLite through better-sqlite3, in WAL mode. Writes are group-committed
 * ({@link GroupCommit}): every put and remove queued in the same event-loop turn goes into one
 * transaction, and a put's promise resolves only after that transaction committed, so the sender's ACK
 * still follows a durable write. A commit is in the OS before it returns, so a SIGKILL of the process
 * loses nothing; `synchronous: 'full'` also survives power loss. A null `dataDir` keeps the database in
 * memory (for tests and throwaway servers).
 *
 * Held puts ({@link SqliteOfflineStore.putHeld}, a message being written to its online receiver): each
 * is committed `holdMs` after it was made, and a message its receiver ACKs before then is never written
 * at all; its put and its removal settle together.
 *
 * Bounded: at most `maxRows` messages and `maxBytes` bytes in all (a put beyond either is refused, never
 * dropped later); a message expires `ttlMs` after it was stored (it is never listed again, and a sweeper
 * removes expired rows in small batches). Before each commit of new messages it checks that the database
 * file is still the one it opened: a deleted data directory makes every later put fail ('unavailable')
 * and {@link SqliteOfflineStore.health} report it, because a commit into a deleted file is not durable.
 */
export class SqliteOfflineStore implements OfflineStore {
  /** One transaction per turn settles its writes in the order they were made (see OfflineStore). */
  readonly settlesInOrder = true;
  private readonly o: ResolvedStoreOptions;
  private readonly clock: StoreClock;
  private readonly db: Database.Database;
  /** The database file, or null for an in-memory store. */
  private readonly file: string | null;
  private readonly identity: FileIdentity | null;
  private readonly stmts: Record<'put' | 'list' | 'remove' | 'has' | 'count' | 'expire', Database.Statement>;
  /** The one transaction of a commit: inserts, then deletes. */
  private readonly transaction: (puts: QueuedPut[], removes: QueuedRemove[]) => { inserted: number[]; removed: number[] };
  /** The writes waiting for their transaction. */
  private readonly writes: GroupCommit;
  /**
   * Keys of held puts committed lately (their hold ended before their receiver's ACK came): that ACK
   * queues the removal of the row without looking it up first. A slow box at saturation commits a
   * quarter of the held puts or more, and each one's look-up was a SQLite query of its own
   * (bench/README.md, "Committed puts without a look-up"). Exact while it remembers a key: a commit
   * that deletes a row forgets its key, and the expiry sweeper, when it removes rows, forgets every
   * key. At most {@link MAX_LATELY_COMMITTED} keys, the oldest forgotten first (their ACKs look the row
   * up as before).
   */
  private readonly lately = new RecentKeys(MAX_LATELY_COMMITTED);
  /** Committed messages per receiver, cached for at most {@link MAX_CACHED_COUNTS} receivers. */
  private readonly counts = new Map<string, number>();
  /** Committed messages and their frame bytes in all. */
  private rows = 0;
  private bytes = 0;
  private full = false;
  /** Set for good once the database file is gone or replaced. */
  private lost: string | null = null;
  /** Set while the last commit failed (disk full, I/O error); a later successful commit clears it. */
  private writeFailure: string | null = null;
  private readonly sweeper: ExpirySweeper<ExpiredMessage & { bytes: number }>;
  private checkTimer: unknown = null;
  private closed = false;

  constructor(dataDir: string | null, options: SqliteStoreOptions = {}) {
    this.o = resolveStoreOptions(options);
    this.clock = this.o.clock;
    this.file = dataDir == null ? null : prepareDataDir(dataDir, DB_FILE);
    let db: Database.Database | null = null;
    try {
      db = new Database(this.file ?? ':memory:');
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${this.o.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
      createPendingTable(db);
      db.exec('CREATE INDEX IF NOT EXISTS pending_by_created ON pending (created_ms)');
    } catch (err) {
      db?.close();
      throw this.file ? dataDirOpenError(this.file, err) : err;
    }
    this.db = db;
    this.identity = this.file ? fileIdentity(this.file) : null;
    this.stmts = {
      put: db.prepare('INSERT OR IGNORE INTO pending (to_uid, from_uid, fp, frame, created_ms) VALUES (?, ?, ?, ?, ?)'),
      list: db.prepare('SELECT seq, from_uid AS "from", fp, frame FROM pending WHERE to_uid = ? AND seq > ? AND created_ms > ? ORDER BY seq LIMIT ?'),
      remove: db.prepare('DELETE FROM pending WHERE to_uid = ? AND from_uid = ? AND fp = ? RETURNING octet_length(frame) AS bytes'),
      has: db.prepare('SELECT 1 FROM pending WHERE to_uid = ? AND from_uid = ? AND fp = ?'),
      count: db.prepare('SELECT COUNT(*) AS n FROM pending WHERE to_uid = ?'),
      expire: db.prepare(
        `DELETE FROM pending WHERE seq IN (SELECT seq FROM pending WHERE created_ms <= ? ORDER BY created_ms LIMIT ?)
         RETURNING to_uid AS "to", fp, frame, octet_length(frame) AS bytes`,
      ),
    };
    this.transaction = db.transaction((puts: QueuedPut[], removes: QueuedRemove[]) => {
      const now = this.clock.now();
      const inserted = puts.map((p) => (this.stmts.put.run(p.to, p.from, p.fp, p.frame, now).changes > 0 ? p.bytes : -1));
      const removed = removes.map((r) => (this.stmts.remove.get(r.to, r.from, r.fp) as { bytes: number } | undefined)?.bytes ?? -1);
      return { inserted, removed };
    });
    const totals = db.prepare('SELECT COUNT(*) AS n, TOTAL(octet_length(frame)) AS b FROM pending').get() as { n: number; b: number };
    this.rows = totals.n;
    this.bytes = totals.b;
    this.writes = new GroupCommit(this.clock, this.o.holdMs, (puts, removes) => this.write(puts, removes));
    this.sweeper = new ExpirySweeper(
      {
        removeExpired: (cutoffMs, limit) => this.stmts.expire.all(cutoffMs, limit) as Array<ExpiredMessage & { bytes: number }>,
        removed: (rows) => this.expired(rows),
      },
      { clock: this.clock, ttlMs: this.o.ttlMs, intervalMs: this.o.sweepIntervalMs, batch: this.o.sweepBatch, logger: this.o.logger },
    );
    if (this.file) this.armCheck();
  }

  put(to: string, from: string, fp: string, frame: string): Promise<boolean> {
    let size: number;
    try {
      size = this.admit(to, from, fp, frame);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.writes.put(to, from, fp, frame, size, false);
  }

  /**
   * {@link put} for a message being written to its online receiver now (see `OfflineStore.putHeld`):
   * throws at once when it cannot be stored; otherwise committed `holdMs` after it was made (or with a
   * put someone waits for, or before a listing, if one comes first), or never written when
   * {@link remove} of the same message comes first (the answer is then true, as for a new message).
   */
  putHeld(to: string, from: string, fp: string, frame: string): Promise<boolean> {
    const size = this.admit(to, from, fp, frame);
    if (!this.writeFailure) return this.writes.put(to, from, fp, frame, size, this.o.holdMs > 0);
    // The last commit failed: this one is committed now, before the message is written to anyone, so
    // a failure is refused (error 325) as for a plain put rather than left unanswered after the write.
    const put = this.writes.put(to, from, fp, frame, size, false);
    this.writes.flush();
    if (!this.writeFailure) return put;
    put.catch(() => {});
    throw new OfflineStoreError('unavailable', this.writeFailure);
  }

  remove(to: string, from: string, fp: string): Promise<boolean> | boolean {
    if (this.closed) return Promise.reject(new OfflineStoreError('unavailable', 'the offline store is closed'));
    const key = this.writes.holding || this.lately.size > 0 ? tupleKey(to, from, fp) : '';
    // ACKed before it was written: delivered, so it is never written.
    const put = key && this.writes.holding ? this.writes.cancelHeld(key) : undefined;
    // A held put of this message was committed lately and its row not deleted since: the row is there.
    const committed = key !== '' && this.lately.size > 0 && this.lately.take(key);
    if (put) {
      // A twin put's row goes in the commit, and so does a row committed before (a retransmission whose
      // put was held): both are deleted.
      if (!put.twin && !committed && !this.hasRow(to, from, fp)) return true;
    } else if (!committed && this.writes.queuedFor(to) === 0 && !this.hasRow(to, from, fp)) {
      // Nothing of it committed or queued (a duplicate ACK): answered now, not at the next commit, which
      // may be holdMs away and would hold the receiver's next frames that long.
      return false;
    }
    const removal = this.writes.remove(to, from, fp);
    // This ACK settled a held put: delivered, whatever the deletion of the other row finds.
    return put ? removal.then(() => true) : removal;
  }

  list(to: string, afterSeq: number, limit: number): StoredMessage[] {
    this.writes.flush();
    return this.stmts.list.all(to, afterSeq, this.clock.now() - this.o.ttlMs, limit) as StoredMessage[];
  }

  count(to: string): number {
    let n = this.counts.get(to);
    if (n === undefined) {
      n = (this.stmts.count.get(to) as { n: number }).n;
      // Zero is cached too: a receiver who ACKs everything at once has none most of the time.
      if (this.counts.size >= MAX_CACHED_COUNTS) this.counts.delete(this.counts.keys().next().value as string);
      this.counts.set(to, n);
    }
    return n + this.writes.queuedFor(to);
  }

  total(): number {
    this.writes.flush();
    return this.rows;
  }

  /** Messages settled by their receiver's ACK while their put was held: never written to disk. */
  get spared(): number {
    return this.writes.spared;
  }

  /** Stored messages and their frame bytes in all (committed ones). */
  usage(): { rows: number; bytes: number } {
    return { rows: this.rows, bytes: this.bytes };
  }

  /**
   * Whether a put can succeed now. Not ok for good once the database file was deleted or replaced (the
   * server must be restarted on a usable data directory), and while the last commit failed.
   */
  health(): StoreHealth {
    if (this.closed) return { ok: false, reason: 'the offline store is closed' };
    this.checkFile();
    const reason = this.lost ?? this.writeFailure;
    return reason ? { ok: false, reason } : { ok: true };
  }

  close(): void {
    if (this.closed) return;
    this.sweeper.stop();
    this.clock.clearTimeout(this.checkTimer);
    this.checkTimer = null;
    this.writes.close();
    this.closed = true;
    this.db.close();
  }

  /** Whether a committed row of the message exists; the cached count spares the look-up when `to` has none at all (the usual case). */
  private hasRow(to: string, from: string, fp: string): boolean {
    return this.counts.get(to) !== 0 && !!this.stmts.has.get(to, from, fp);
  }

  /**
   * Checks that a message can be stored now (store open, file there, under the quota), throwing the
   * refusal; returns its frame's UTF-8 bytes.
   */
  private admit(to: string, from: string, fp: string, frame: string): number {
    if (this.closed) throw new OfflineStoreError('unavailable', 'the offline store is closed');
    if (this.lost) throw new OfflineStoreError('unavailable', this.lost);
    const size = Buffer.byteLength(frame, 'utf8');
    if (this.rows + this.writes.rows + 1 > this.o.maxRows || this.bytes + this.writes.bytes + size > this.o.maxBytes) {
      // A retransmission of a message already stored adds nothing: it is still accepted (and ACKed).
      if (!this.stmts.has.get(to, from, fp)) {
        this.noteFull(true);
        throw new OfflineStoreError('quota', `the offline store is full (${this.o.maxRows} messages or ${this.o.maxBytes} bytes)`);
      }
    } else this.noteFull(false);
    return size;
  }

  /**
   * Commits `puts` and `removes` (taken out of the queue) in one transaction and settles them. Called by
   * {@link GroupCommit} only, and never after close (it commits nothing once closed).
   */
  private write(puts: QueuedPut[], removes: QueuedRemove[]): void {
    if (puts.length > 0) this.checkFile();
    if (this.lost && puts.length > 0) {
      const refusal = new OfflineStoreError('unavailable', this.lost);
      for (const p of puts) p.reject(refusal);
      puts = [];
      if (removes.length === 0) return;
    }
    let result: { inserted: number[]; removed: number[] };
    try {
      result = this.transaction(puts, removes);
    } catch (err) {
      const code = (err as { code?: string }).code ?? (err as Error).message;
      if (!this.writeFailure) this.o.logger.error(`offline store: a write to ${this.file ?? 'the in-memory database'} failed (${code}); QoS messages are refused with error 325 until a write succeeds`, err);
      this.writeFailure = `the last write to the offline store failed (${code})`;
      const refusal = new OfflineStoreError('unavailable', this.writeFailure, { cause: err });
      for (const p of [...puts, ...removes]) p.reject(refusal);
      return;
    }
    if (this.writeFailure) this.o.logger.info('offline store: writes succeed again');
    this.writeFailure = null;
    puts.forEach((p, i) => {
      const size = result.inserted[i];
      if (size >= 0) this.added(p.to, 1, size);
      if (size >= 0 && p.key !== undefined) this.lately.add(p.key);
      p.resolve(size >= 0);
    });
    removes.forEach((r, i) => {
      const size = result.removed[i];
      if (size >= 0) this.added(r.to, -1, -size);
      // The transaction inserts before it deletes: a row deleted here is not there, whatever was added above.
      if (size >= 0 && this.lately.size > 0) this.lately.take(tupleKey(r.to, r.from, r.fp));
      r.resolve(size >= 0);
    });
  }

  /** Keeps the totals and the cached count of `to` in step with a committed change. */
  private added(to: string, rows: number, bytes: number): void {
    this.rows += rows;
    this.bytes += bytes;
    const n = this.counts.get(to);
    if (n === undefined) return;
    this.counts.set(to, Math.max(0, n + rows));
  }

  /**
   * Logs entering the full state once, not once per refused message, and leaving it once usage is below
   * 90 % of both limits again, so a store hovering at its limit does not log every message.
   */
  private noteFull(full: boolean): void {
    if (full === this.full) return;
    if (!full && (this.rows >= 0.9 * this.o.maxRows || this.bytes >= 0.9 * this.o.maxBytes)) return;
    this.full = full;
    if (full) this.o.logger.warn(`offline store: full (${this.rows} messages, ${this.bytes} bytes; limits ${this.o.maxRows} / ${this.o.maxBytes}): new messages are refused with error 324`);
    else this.o.logger.info('offline store: below its limits again, accepting messages');
  }

  /** Marks the store lost (for good) when its database file is no longer the one it opened. */
  private checkFile(): void {
    if (!this.file || this.lost || sameFile(fileIdentity(this.file), this.identity)) return;
    this.lost = `the database file ${DB_FILE} was deleted or replaced while the server ran; restart the server on a usable data directory`;
    this.o.logger.error(
      `offline store: ${this.file} was deleted or replaced while the server ran. Writes into it would be lost at the next start, ` +
        `so every QoS message is refused with error 325 (no ACK) until the server is restarted; the ${this.rows} messages it held are lost`,
    );
  }

  private armCheck(): void {
    this.checkTimer = this.clock.setTimeout(() => {
      this.checkFile();
      if (!this.closed && !this.lost) this.armCheck();
    }, this.o.checkIntervalMs);
    unref(this.checkTimer);
  }

  /** Accounts for rows the sweeper removed and reports them. */
  private expired(rows: Array<ExpiredMessage & { bytes: number }>): void {
    for (const r of rows) this.added(r.to, -1, -r.bytes);
    // Rows gone: the hint of rows committed lately must not name one of them (expiry is rare; all forgotten).
    if (rows.length > 0) this.lately.clear();
    this.o.logger.info(`offline store: ${rows.length} messages expired unACKed after ${this.o.ttlMs} ms and were removed`);
    try {
      this.o.onExpired?.(rows.map(({ to, fp, frame }) => ({ to, fp, frame })));
    } catch (err) {
      this.o.logger.error('offline store: onExpired failed', err);
    }
  }
}
