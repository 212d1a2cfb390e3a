import type { LocalSessions } from './local-sessions';
import type { Metrics } from './metrics';
import type { ResolvedOptions } from './options';
import type { Presence } from './presence';
import type { QosSendDaemon } from './qos-s2c';
import type { ReceiptKeeper } from './receipts';
import type { Routing } from './routing';
import type { LocalRouting } from './routing-local';
import type { SessionIo } from './session-io';
import type { MessageStore } from './store';
import type { UserBudgets } from './user-budgets';

/** The options the frame handlers read. */
export type HandlerOptions = Pick<
  ResolvedOptions,
  'logger' | 'hooks' | 'auth' | 'nodeId' | 'maxMessageBytes' | 'maxOfflinePerUser' | 'replayWindow' | 'hookTimeoutMs'
>;

/**
 * What the frame handlers (login.ts, relay.ts, deliver.ts, replay.ts) receive instead of the whole core:
 * the options they read, where they count and log, how to write to a local session, and the three
 * seams that a cluster replaces (presence, routing, store). Built once by the core.
 */
export interface ServerContext {
  readonly opts: HandlerOptions;
  readonly metrics: Metrics;
  /** Writes to, kicks and closes sessions of this process. */
  readonly io: SessionIo;
  /** The sessions of this process, by id and by logged-in user. */
  readonly sessions: LocalSessions;
  /** Who is online where, with the duplicate-login arbitration. */
  readonly presence: Presence;
  /** Gets frames, kicks and receipts to a user's session wherever it is. */
  readonly routing: Routing;
  /** QoS messages waiting for an ACK, and the de-duplication windows. */
  readonly store: MessageStore;
  /** This process's table of QoS frames written and not yet ACKed. */
  readonly qos: QosSendDaemon;
  /** Device receipts waiting for their offline senders. */
  readonly receipts: ReceiptKeeper;
  /** What users' ended sessions left of their rate budget (null: no rate limit). */
  readonly userBudgets: UserBudgets | null;
  /** Runs an application hook, logging (never propagating) what it throws or rejects with. */
  safely(name: string, fn: () => unknown): void;
}

/**
 * The implementations of the seams a core runs with; each one left out is the single-process one.
 * `routing` wraps the local routing, which keeps writing to the sessions this process holds.
 */
export interface ServerSeams {
  presence: Presence;
  store: MessageStore;
  routing(local: LocalRouting): Routing;
  /** Where receipts wait for offline senders (default: this process's bounded backlog). */
  receipts: ReceiptKeeper;
}
