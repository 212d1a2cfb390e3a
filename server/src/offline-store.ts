import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/** One message waiting for its receiver's ACK. */
export interface StoredMessage {
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
  /** Stores a message for `to`; false when one with the same fp is already stored for `to`. */
  put(to: string, fp: string, frame: string): boolean | Promise<boolean>;
  /** The messages stored for `to`, oldest first, at most `limit`. */
  list(to: string, limit: number): StoredMessage[] | Promise<StoredMessage[]>;
  /** Removes one message; true when it was there. */
  remove(to: string, fp: string): boolean | Promise<boolean>;
  /** Number of messages stored for `to`. */
  count(to: string): number | Promise<number>;
  /** Number of messages stored in all. */
  total(): number | Promise<number>;
  /** Releases the store. */
  close(): void | Promise<void>;
}

/**
 * The default store: SQLite through better-sqlite3, in WAL mode. A commit is in the OS before `put`
 * returns, so a SIGKILL of the process loses nothing; `synchronous: 'full'` also survives power loss.
 * A null `dataDir` keeps the database in memory (for tests and throwaway servers).
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

  constructor(dataDir: string | null, synchronous: 'normal' | 'full' = 'normal') {
    let file = ':memory:';
    if (dataDir != null) {
      mkdirSync(dataDir, { recursive: true });
      file = join(dataDir, 'offline.db');
    }
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    this.db.exec(`CREATE TABLE IF NOT EXISTS pending (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      to_uid TEXT NOT NULL,
      fp TEXT NOT NULL,
      frame TEXT NOT NULL,
      created_ms INTEGER NOT NULL,
      UNIQUE (to_uid, fp)
    )`);
    this.stmts = {
      put: this.db.prepare('INSERT OR IGNORE INTO pending (to_uid, fp, frame, created_ms) VALUES (?, ?, ?, ?)'),
      list: this.db.prepare('SELECT fp, frame FROM pending WHERE to_uid = ? ORDER BY seq LIMIT ?'),
      remove: this.db.prepare('DELETE FROM pending WHERE to_uid = ? AND fp = ?'),
      count: this.db.prepare('SELECT COUNT(*) AS n FROM pending WHERE to_uid = ?'),
      total: this.db.prepare('SELECT COUNT(*) AS n FROM pending'),
    };
  }

  put(to: string, fp: string, frame: string): boolean {
    return this.stmts.put.run(to, fp, frame, Date.now()).changes > 0;
  }

  list(to: string, limit: number): StoredMessage[] {
    return this.stmts.list.all(to, limit) as StoredMessage[];
  }

  remove(to: string, fp: string): boolean {
    return this.stmts.remove.run(to, fp).changes > 0;
  }

  count(to: string): number {
    return (this.stmts.count.get(to) as { n: number }).n;
  }

  total(): number {
    return (this.stmts.total.get() as { n: number }).n;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
