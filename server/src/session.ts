import type { Protocal } from '../../src/protocol';
import { encoded } from './bounds';
import type { Queued } from './frame-queue';
import type { IdleList, IdleNode } from './idle-list';
import type { PresenceEntry } from './presence';
import { FrameBudget, type ResolvedRateLimit } from './rate-limit';

/** The transports a session can arrive on. */
export type TransportName = 'ws' | 'tcp' | 'udp';

/** What a gateway hands the core for one connection: how to write to it and how to close it. */
export interface Link {
  readonly transport: TransportName;
  /** The peer's address, for logs and hooks. */
  readonly remote: string;
  /** Writes one frame's text; false when the connection can no longer take it. */
  write(text: string): boolean;
  /**
   * Closes the connection gracefully (WebSocket: Close 1000 "Bye", or `code`, such as 1001 Going Away);
   * the gateway then reports it closed.
   */
  close(code?: number): void;
  /** Called once when the connection logs in (the gateway stops counting it as not logged in). */
  loggedIn?(): void;
}

/** Read-only facts about a connection, passed to hooks. */
export interface ConnectionInfo {
  readonly id: number;
  readonly transport: TransportName;
  readonly remote: string;
  readonly userId: string | null;
}

let nextId = 1;

/**
 * One client connection, whatever its transport, with its login state and its timers. It is also its own
 * presence entry (node, session id, `firstLoginTime`): a login claims the user with the session itself, so
 * the single-process presence keeps no second object per user (see presence-local.ts).
 */
export class Session implements ConnectionInfo, IdleNode, PresenceEntry {
  readonly id = nextId++;
  /** The logged-in user, or null before login. */
  userId: string | null = null;
  /** The `firstLoginTime` this session claims or registered with (-1 before its login claims the user). */
  firstLoginTime = -1;
  /** Capability bits granted at login (see receipts.ts); 0 for MobileIMSDK clients. */
  caps = 0;
  /** The kickout code to report when this session closes, or -1. */
  kickCode = -1;
  /** True once the session has been closed (it may still be draining). */
  closed = false;
  /** When a valid protocol frame last arrived (or the connection opened), as its idle list counts time (see idle-list.ts). */
  activeAtMs = 0;
  /** The idle list this session is in (by its transport's expiry), and its links there; see idle-list.ts. */
  idle: IdleList<Session> | null = null;
  idlePrev: IdleNode | null = null;
  idleNext: IdleNode | null = null;
  loginTimer: ReturnType<typeof setTimeout> | null = null;
  /** Frames (and tasks) queued or being handled, in order (see frame-queue.ts). */
  queued = 0;
  /** Characters of the frames queued or being handled. */
  queuedChars = 0;
  /** The units waiting behind the one being handled; null while none wait. */
  backlog: Queued[] | null = null;
  /** Units started and waiting for a promise (a store write, a hook); see frame-queue.ts. */
  active = 0;
  /** The overlap keys (fps) of the active units that may overlap; null until one did. */
  activeKeys: string[] | null = null;
  /** Who waits for {@link Session.chain}; null while nobody does. */
  private idleWaiters: Array<() => void> | null = null;
  /** What this connection may still send (null: no rate limit). */
  readonly budget: FrameBudget | null;
  /**
   * Progress of handing this user's stored messages over after login, or null when there is none.
   * `inFlight` holds `tupleKey(sender, fp)` of each replayed message not yet ACKed (at most `replayWindow`).
   * `until`: the highest seq it hands over (Infinity: all); `snap`: read `until` afresh before the next listing;
   * `rewind`: list from the start again at the next pass (the store's seq counter may have gone back).
   */
  replay: { cursor: number; startedMs: number; inFlight: Set<string>; pumping: boolean; again: boolean; until: number; snap: boolean; rewind: boolean } | null = null;
  /** The cursor the last replay of this session ended at: a later one (a cluster's recheck) goes on from there. */
  replayedTo = 0;

  /**
   * `node`: the id of the node (process) holding the session. `budget` carries a rate limit over from an
   * earlier session of the same peer (UDP).
   */
  constructor(
    readonly link: Link,
    rate: ResolvedRateLimit | null,
    readonly node: string,
    budget?: FrameBudget,
  ) {
    this.budget = rate ? (budget ?? new FrameBudget(rate)) : null;
  }

  /** The session's id, as a {@link PresenceEntry} names it. */
  get session(): number {
    return this.id;
  }

  /** Resolves once every frame and task queued so far has been handled (shutdown waits for it). */
  get chain(): Promise<void> {
    if (this.queued === 0) return Promise.resolve();
    return new Promise((resolve) => (this.idleWaiters ??= []).push(resolve));
  }

  /** Called by the frame queue when nothing is queued any more: settles {@link Session.chain}. */
  drained(): void {
    const waiters = this.idleWaiters;
    if (!waiters) return;
    this.idleWaiters = null;
    for (const w of waiters) w();
  }

  get transport(): TransportName {
    return this.link.transport;
  }

  get remote(): string {
    return this.link.remote;
  }

  /** Encodes and writes a frame; false when it could not be written or is over `maxBytes` encoded. */
  send(p: Protocal, maxBytes = Number.POSITIVE_INFINITY): boolean {
    if (this.closed) return false;
    const text = encoded(p);
    if (overBytes(text, maxBytes)) return false;
    return this.link.write(text);
  }

  /** Stops this session's timers. */
  clearTimers(): void {
    this.idle?.remove(this);
    this.idle = null;
    if (this.loginTimer) clearTimeout(this.loginTimer);
    this.loginTimer = null;
  }

  /** A frozen snapshot for hooks. */
  info(): ConnectionInfo {
    return Object.freeze({ id: this.id, transport: this.transport, remote: this.remote, userId: this.userId });
  }
}

/** How log lines name a session: `session 7 (ws 127.0.0.1:50312)`. */
export function describeSession(s: Session): string {
  return `session ${s.id} (${s.transport} ${s.remote})`;
}

/** Whether a text's UTF-8 encoding is over `maxBytes` (counted only when its length cannot settle it). */
export function overBytes(text: string, maxBytes: number): boolean {
  if (text.length * 3 <= maxBytes) return false;
  return text.length > maxBytes || Buffer.byteLength(text, 'utf8') > maxBytes;
}
