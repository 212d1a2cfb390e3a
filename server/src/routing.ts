import type { Protocal } from '../../src/protocol';
import type { MaybePromise } from './maybe-promise';
import type { PresenceEntry } from './presence';
import type { QosOutcome } from './qos-s2c';

/** Told once how a QoS message handed over by {@link Routing.sendData} ended. */
export type QosWaiter = (outcome: QosOutcome) => void;

/**
 * Gets a frame, a kickout or a receipt to the session holding a user, wherever it is. The node that holds
 * the session writes it and tracks its QoS (its own daemon); delivery never depends on a routed frame
 * arriving, because QoS messages are in the store before any of this. Every method may answer at once
 * (local) or through a promise (a frame published to another node). Implementations: routing-local.ts.
 */
export interface Routing {
  /**
   * Whether the node holding `to` can track one more QoS message for it: false only when `to` is online
   * there, the message is not tracked already, and that node's QoS table, or `to`'s share of it, is at its bound.
   */
  hasRoom(to: string, frame: Protocal): MaybePromise<boolean>;
  /**
   * Writes a data frame to `to`'s current session (or finds it already in flight there, replayed) and,
   * for a QoS frame, tracks it until ACKed, telling `waiter` how it ended (`lost` at once when the QoS
   * table refuses it). False when `to` has no session.
   */
  sendData(to: string, frame: Protocal, waiter?: QosWaiter): MaybePromise<boolean>;
  /**
   * True when `sendData` calls for one receiver settle in the order they were made and reach the receiver
   * in that order (true of a routing that answers at once); see `MessageStore.settlesInOrder` (store.ts).
   */
  readonly settlesInOrder?: boolean;
  /**
   * Tells `sender` that `receiver`'s device has its message `fp` (type 60), if its session asked for
   * receipts; false when `sender` has no session (the caller keeps the receipt for its next login).
   */
  sendReceipt(sender: string, receiver: string, fp: string, atMs: number): MaybePromise<boolean>;
  /** Kicks the user's current session (type 54, then close); false when the user has no session. */
  kickUser(userId: string, code: number, reason?: string): MaybePromise<boolean>;
  /** Ends one session a login superseded: kickout `kickCode` then close, or (null) close silently. */
  endSession(at: PresenceEntry, userId: string, kickCode: number | null): MaybePromise<void>;
  /** Releases what the implementation holds (subscriptions). */
  close(): MaybePromise<void>;
}
