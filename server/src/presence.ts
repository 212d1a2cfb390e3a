import type { MaybePromise } from './maybe-promise';

/** Where one user is online: the node and the session on it, and the `firstLoginTime` it registered with. */
export interface PresenceEntry {
  /** The node holding the session (`nodeId`). */
  readonly node: string;
  /** The session's id on that node. */
  readonly session: number;
  /** The `firstLoginTime` the server answered that login with (never 0). */
  readonly firstLoginTime: number;
}

/** How {@link Presence.claim} arbitrated a login (MobileIMSDK v6.5 `OnlineProcessor.putUser`). */
export type PresenceClaim =
  /** No session held the user (or it was this very one): the new one now does. */
  | { kind: 'take' }
  /** Another session held the user and is superseded (the new one now holds it); `kick`: send it kickout code 1. */
  | { kind: 'replace'; old: PresenceEntry; kick: boolean }
  /** The new login is older than the live one (a stale device): nothing changed, the new session is to be kicked. */
  | { kind: 'reject' };

/**
 * Who is online where, with the duplicate-login arbitration. One entry per user, whatever the number of
 * nodes. Every method may answer at once (local) or through a promise (a shared store such as Redis,
 * where `claim` is one atomic script and each node refreshes its entries' TTL). Implementations:
 * presence-local.ts (one process).
 */
export interface Presence {
  /**
   * Arbitrates and records a login in one atomic step, by the client's (trusted) `firstLoginTime`:
   * a first login (`<= 0`) or a newer one replaces the holder with a kick; an equal one is the same device
   * reconnecting and replaces it silently; an older one is refused and changes nothing. An implementation
   * may keep `entry` itself (presence-local.ts does; the server passes the session, its own entry): its
   * fields must not change while it holds the user. `session` may be a getter: copy the three fields by
   * name, not by spreading or serialising the object.
   */
  claim(userId: string, entry: PresenceEntry, claimedFirstLoginTime: number): MaybePromise<PresenceClaim>;
  /** Removes the user's entry only if it is still that node's session; true when it was. */
  release(userId: string, node: string, session: number): MaybePromise<boolean>;
  /**
   * Undoes a claim of this node's `session` whose answer never reached its login (it failed or timed
   * out, or the connection went meanwhile): its entry goes, and the session it replaced, if still live,
   * holds the user again. Optional: without it the caller releases instead (a shared presence, where a
   * timed-out claim may still have run, should have it).
   */
  abandon?(userId: string, session: number): MaybePromise<void>;
  /** Where the user is online, or null. */
  locate(userId: string): MaybePromise<PresenceEntry | null>;
  /** The online user ids, at most `limit` (default all). */
  list(limit?: number): MaybePromise<string[]>;
  /** Number of online users. */
  count(): MaybePromise<number>;
  /** Releases what the implementation holds (connections, timers). */
  close(): MaybePromise<void>;
}
