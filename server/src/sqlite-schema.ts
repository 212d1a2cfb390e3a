import type Database from 'better-sqlite3';

/**
 * Creates the `pending` table, keyed by (receiver, sender, fp), and its indexes. A database from before
 * the sender was part of the key (no `from_uid` column) is migrated in one transaction: each row's sender
 * is read from its stored frame, and `seq` values (the delivery order) and `created_ms` are kept.
 */
export function createPendingTable(db: Database.Database): void {
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
  db.exec('CREATE INDEX IF NOT EXISTS pending_by_created ON pending (created_ms)');
}
