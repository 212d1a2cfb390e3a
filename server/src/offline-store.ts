import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/** One message waiting for its receiver's ACK. */
export interface StoredMessage {
  /** Position in the store: later messages have larger values. */
  seq: number;
  /** The sender's user id ("0" for the server's own pushes). */
  from: string;
  fp: string;
  /** The frame's text exactly as it will be sent. */
  frame: string;
}

/**
 * Durable storage for QoS messages until their receiver ACKs them. Every method may be synchronous or
 * return a promise; `put` must not return before the message is durable, because the sender is ACKed
 * right after it.
 */
export interface OfflineStore {
  /**
   * Stores a message from `from` for `to`; false when one with the same fp from the same sender is
   * already stored for `to` (two senders' messages never collide, whatever fps they pick).
   */
  put(to: string, from: string, fp: string, frame: string): boolean | Promise<boolean>;
  /** The messages stored for `to` with `seq` above `afterSeq`, oldest first, at most `limit`. */
  list(to: string, afterSeq: number, limit: number): StoredMessage[] | Promise<StoredMessage[]>;
  /** Removes one message; true when it was there. */
  remove(to: string, from: string, fp: string): boolean | Promise<boolean>;
  /** Number of messages stored for `to`. */
  count(to: string): number | Promise<number>;
  /** Number of messages stored in all. */
  total(): number | Promise<number>;
  /** Releases the store. */
  close(): void | Promise<void>;
}

interface PendingPut {
  to: string;
  from: string;
  fp: string;
  frame: string;
  resolve(inserted: boolean): void;
  reject(err: unknown): void;
}

interface PendingRemove {
  to: string;
  from: string;
  fp: string;
  resolve(removed: boolean): void;
  reject(err: unknown): void;
}

/**
 * The default store: SQLite through better-sqlite3, in WAL mode. Writes are group-committed: every put
 * and remove queued in the same event-loop turn goes into one transaction, and a put's promise resolves
 * only after that transaction committed, so the sender's ACK still follows a durable write. A commit is
 * in the OS before it returns, so a SIGKILL of the process loses nothing; `synchronous: 'full'` also
 * survives power loss. A null `dataDir` keeps the database in memory (for tests and throwaway servers).
 */
export class SqliteOfflineStore implements OfflineStore {
  private readonly db: Database.Database;
  private readonly stmts: {
    put: Database.Statement;
    list: Database.Statement;
    remove: Database.Statement;
    count: Database.Statement;
    total: Database.Statement;
  };
  private puts: PendingPut[] = [];
  private removes: PendingRemove[] = [];
  private scheduled = false;
  /** Committed messages per receiver, cached for receivers that have some. */
  private readonly counts = new Map<string, number>();
  /** Puts per receiver waiting for the next commit. */
  private readonly queued = new Map<string, number>();
  private readonly commit: (puts: PendingPut[], removes: PendingRemove[]) => { inserted: boolean[]; removed: boolean[] };

  constructor(dataDir: string | null, synchronous: 'normal' | 'full' = 'normal') {
    let file = ':memory:';
    if (dataDir != null) {
      mkdirSync(dataDir, { recursive: true });
      file = join(dataDir, 'offline.db');
    }
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    createPendingTable(this.db);
    this.stmts = {
      put: this.db.prepare('INSERT OR IGNORE INTO pending (to_uid, from_uid, fp, frame, created_ms) VALUES (?, ?, ?, ?, ?)'),
      list: this.db.prepare('SELECT seq, from_uid AS "from", fp, frame FROM pending WHERE to_uid = ? AND seq > ? ORDER BY seq LIMIT ?'),
      remove: this.db.prepare('DELETE FROM pending WHERE to_uid = ? AND from_uid = ? AND fp = ?'),
      count: this.db.prepare('SELECT COUNT(*) AS n FROM pending WHERE to_uid = ?'),
      total: this.db.prepare('SELECT COUNT(*) AS n FROM pending'),
    };
    this.commit = this.db.transaction((puts: PendingPut[], removes: PendingRemove[]) => {
      const now = Date.now();
      const inserted = puts.map((p) => this.stmts.put.run(p.to, p.from, p.fp, p.frame, now).changes > 0);
      const removed = removes.map((r) => this.stmts.remove.run(r.to, r.from, r.fp).changes > 0);
      return { inserted, removed };
    });
  }

  put(to: string, from: string, fp: string, frame: string): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.puts.push({ to, from, fp, frame, resolve, reject });
      this.queued.set(to, (this.queued.get(to) ?? 0) + 1);
      this.schedule();
    });
  }

  remove(to: string, from: string, fp: string): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.removes.push({ to, from, fp, resolve, reject });
      this.schedule();
    });
  }

  list(to: string, afterSeq: number, limit: number): StoredMessage[] {
    this.flush();
    return this.stmts.list.all(to, afterSeq, limit) as StoredMessage[];
  }

  count(to: string): number {
    let n = this.counts.get(to);
    if (n === undefined) {
      n = (this.stmts.count.get(to) as { n: number }).n;
      if (n > 0) this.counts.set(to, n);
    }
    return n + (this.queued.get(to) ?? 0);
  }

  total(): number {
    this.flush();
    return (this.stmts.total.get() as { n: number }).n;
  }

  close(): void {
    if (!this.db.open) return;
    this.flush();
    this.db.close();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Commits every queued write in one transaction and settles their promises. */
  private flush(): void {
    this.scheduled = false;
    const puts = this.puts;
    const removes = this.removes;
    if (puts.length === 0 && removes.length === 0) return;
    this.puts = [];
    this.removes = [];
    this.queued.clear();
    let result: { inserted: boolean[]; removed: boolean[] };
    try {
      result = this.commit(puts, removes);
    } catch (err) {
      for (const p of [...puts, ...removes]) p.reject(err);
      return;
    }
    puts.forEach((p, i) => {
      if (result.inserted[i]) this.adjustCount(p.to, 1);
      p.resolve(result.inserted[i]);
    });
    removes.forEach((r, i) => {
      if (result.removed[i]) this.adjustCount(r.to, -1);
      r.resolve(result.removed[i]);
    });
  }

  private adjustCount(to: string, delta: number): void {
    const n = this.counts.get(to);
    if (n === undefined) return;
    if (n + delta <= 0) this.counts.delete(to);
    else this.counts.set(to, n + delta);
  }
}

/**
 * Creates the `pending` table, keyed by (receiver, sender, fp). A database from before the sender was
 * part of the key (no `from_uid` column) is migrated in one transaction: each row's sender is read from
 * its stored frame, and `seq` values (the delivery order) are kept.
 */
function createPendingTable(db: Database.Database): void {
  const columns = (db.prepare("SELECT name FROM pragma_table_info('pending')").all() as Array<{ name: string }>).map((c) => c.name);
  const create = (name: string) => `CREATE TABLE ${name} (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      to_uid TEXT NOT NULL,
      from_uid TEXT NOT NULL,
      fp TEXT NOT NULL,
      frame TEXT NOT NULL,
      created_ms INTEGER NOT NULL,
      UNIQUE (to_uid, from_uid, fp)
    )`;
  if (columns.length === 0) db.exec(create('pending'));
  else if (!columns.includes('from_uid')) {
    db.transaction(() => {
      db.exec(create('pending_keyed'));
      db.exec(`INSERT INTO pending_keyed (seq, to_uid, from_uid, fp, frame, created_ms)
        SELECT seq, to_uid, COALESCE(CASE WHEN json_valid(frame) THEN json_extract(frame, '$.from') END, ''), fp, frame, created_ms FROM pending ORDER BY seq`);
      db.exec('DROP TABLE pending');
      db.exec('ALTER TABLE pending_keyed RENAME TO pending');
    })();
  }
  db.exec('CREATE INDEX IF NOT EXISTS pending_by_user ON pending (to_uid, seq)');
}
