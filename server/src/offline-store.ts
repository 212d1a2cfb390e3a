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

/** A stored message that reached its time to live before its receiver ACKed it; it is gone. */
export interface ExpiredMessage {
  to: string;
  fp: string;
  frame: string;
}

/** Whether the store can take writes now; `reason` says why not (for /health and /ready). */
export interface StoreHealth {
  ok: boolean;
  reason?: string;
}

/**
 * Durable storage for QoS messages until their receiver ACKs them. Every method may be synchronous or
 * return a promise; `put` must not return before the message is durable, because the sender is ACKed
 * right after it. A `put` that cannot store the message throws (or rejects with) an
 * {@link OfflineStoreError}: the sender then gets an error code instead of an ACK. Any other error from
 * `put` is treated as "unavailable" too.
 */
export interface OfflineStore {
  /**
   * True when `put` settles its promises in the order it was called (true of the SQLite store; a held
   * put settled early by its removal is already written to its receiver, so only its sender's ACK comes
   * sooner). The server then lets a connection's next QoS messages be stored while the earlier ones'
   * writes are pending, so they share a commit (server/src/frame-queue.ts); a store that may settle out
   * of order leaves it out, and each message waits for the one before it.
   */
  readonly settlesInOrder?: boolean;
  /**
   * Stores a message from `from` for `to`; false when one with the same fp from the same sender is
   * already stored for `to` (two senders' messages never collide, whatever fps they pick).
   */
  put(to: string, from: string, fp: string, frame: string): boolean | Promise<boolean>;
  /**
   * Optional: {@link put} for a message that is being written to its online receiver at the same time.
   * Refuses at once, by throwing, so a message that cannot be stored is never written to anyone. The
   * store may then wait a short time before writing it: a {@link remove} of the same message within that
   * time settles both without writing anything, because the receiver's ACK means it is delivered (that
   * `remove` answers true at once, not through a promise: the server then sends the receipt after the
   * sender's ACK). The answer still comes only once the message is durable or so ACKed: the sender's
   * ACK follows one of them.
   */
  putHeld?(to: string, from: string, fp: string, frame: string): boolean | Promise<boolean>;
  /** The unexpired messages stored for `to` with `seq` above `afterSeq`, oldest first, at most `limit`. */
  list(to: string, afterSeq: number, limit: number): StoredMessage[] | Promise<StoredMessage[]>;
  /** Removes one message; true when it was there. */
  remove(to: string, from: string, fp: string): boolean | Promise<boolean>;
  /** Number of messages stored for `to`. */
  count(to: string): number | Promise<number>;
  /** Number of messages stored in all. */
  total(): number | Promise<number>;
  /** Whether writes can succeed now; a store without it counts as always healthy. */
  health?(): StoreHealth;
  /** Releases the store. */
  close(): void | Promise<void>;
}

export { OfflineStoreError, type OfflineStoreRefusal } from './store-error';
export { SqliteOfflineStore, type SqliteStoreOptions, type StoreClock } from './sqlite-store';
