import type { MaybePromise } from './maybe-promise';
import type { StoredMessage } from './offline-store';

/** The two de-duplication windows: messages to the server, and messages accepted for another user. */
export type DedupWindowName = 'c2s' | 'c2c';

/**
 * Everything the server keeps about messages between frames: the QoS messages waiting for their
 * receiver's ACK (offline and in flight, per receiver, with quotas and a TTL) and the (sender, fp)
 * windows that recognise a retransmission. Shared by every node in a cluster, so a retry that reaches
 * another node is still recognised. Every method may answer at once or through a promise; `put` must not
 * answer before the message is durable (the sender is ACKed right after) and refuses with an
 * `OfflineStoreError` (reason `quota`, or anything else for "unavailable"). Implementations:
 * store-local.ts (the SQLite or a custom {@link OfflineStore}, and in-memory windows).
 */
export interface MessageStore {
  /**
   * True when `put` itself refuses, atomically, a message past the receiver's limit (OfflineStoreError
   * 'full'); otherwise the caller counts first, which concurrent puts (other nodes) can overshoot.
   */
  readonly checksBoxLimit?: boolean;
  /**
   * True when the calls of `seen` settle in the order they were made, and so do those of `put` (a SQLite
   * store, or one connection to Redis; a `seen` made after a `put` may still settle first): a
   * connection's next QoS messages may then be handled while the earlier ones' writes are pending
   * (frame-queue.ts: each message's put is made once its `seen` settled). Leave it out when that cannot
   * be promised.
   */
  readonly settlesInOrder?: boolean;
  /**
   * Stores `from`'s message `fp` for `to`; false when that (from, fp) is already stored for `to`. With
   * `remember`, a message stored (or stored already) is also recorded in that de-duplication window, as
   * by {@link remember}, in the same step (one round trip for a remote store).
   */
  put(to: string, from: string, fp: string, frame: string, remember?: DedupWindowName): MaybePromise<boolean>;
  /**
   * {@link put} for a message being written to its online receiver at the same time: refuses at once by
   * throwing, and may wait for the receiver's ACK instead of writing (see `OfflineStore.putHeld`).
   */
  putHeld?(to: string, from: string, fp: string, frame: string, remember?: DedupWindowName): MaybePromise<boolean>;
  /**
   * {@link put} with `remember`, unless `from`'s `fp` is in that window already (a retransmission of a
   * message accepted before): then nothing is stored or recorded and the answer is 'seen'. One round trip
   * instead of {@link seen} then {@link put} for a remote store; a store without it is asked both.
   */
  putUnlessSeen?(to: string, from: string, fp: string, frame: string, window: DedupWindowName): MaybePromise<boolean | 'seen'>;
  /**
   * A cluster's put that is also the route (one round trip instead of a put, then a route): {@link put},
   * with `unlessSeen` as {@link putUnlessSeen}, and in the same step the frame handed to the node that
   * holds `to` when that is another live node. 'routed': stored (or stored already) and heard by that
   * node, which writes it to its session; otherwise as the put answers, and the caller routes it itself
   * (`to` may be here, nowhere, or on a node whose subscriber is down).
   */
  putAndRoute?(to: string, from: string, fp: string, frame: string, remember: DedupWindowName | undefined, unlessSeen: boolean): MaybePromise<boolean | 'seen' | 'routed'>;
  /** The unexpired messages for `to` with `seq` above `afterSeq`, oldest first, at most `limit`. */
  list(to: string, afterSeq: number, limit: number): MaybePromise<StoredMessage[]>;
  /**
   * The highest seq a message stored so far has (a replay hands over messages up to it, and ends).
   * Without it a replay also takes every message stored while it runs, until none is left.
   */
  lastSeq?(): MaybePromise<number>;
  /** Removes one message; true when it was there. */
  remove(to: string, from: string, fp: string): MaybePromise<boolean>;
  /**
   * A cluster's {@link remove} for a message whose delivery is known (its ACK settled it): in the same
   * step, the receipt (sender `from`, receiver `to`, `fp`, `atMs`) is handed to the node that holds
   * `from` when that is another live node; `told` says that node heard it. Otherwise the caller routes
   * or keeps the receipt itself.
   */
  removeWithReceipt?(to: string, from: string, fp: string, atMs: number): MaybePromise<{ removed: boolean; told: boolean }>;
  /** Number of messages stored for `to`. */
  count(to: string): MaybePromise<number>;
  /** Number of messages stored in all. */
  total(): MaybePromise<number>;
  /** Whether `sender`'s message `fp` was accepted within the window's time (a retransmission). */
  seen(window: DedupWindowName, sender: string, fp: string): MaybePromise<boolean>;
  /** Records `sender`'s message `fp` as accepted. */
  remember(window: DedupWindowName, sender: string, fp: string): MaybePromise<void>;
  /** {@link remember} in one atomic step with {@link seen}: true when it was already there. */
  checkAndRemember(window: DedupWindowName, sender: string, fp: string): MaybePromise<boolean>;
  /** Releases what this store opened itself (not a store it was handed). */
  close(): MaybePromise<void>;
}
