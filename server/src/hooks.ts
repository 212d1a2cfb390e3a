import type { Protocal } from '../../src/protocol';
import type { Logger } from './logger';
import type { ConnectionInfo } from './session';

/** What a `before*` hook returns: false drops the message (no ACK), a frame replaces it, anything else passes it. */
export type BeforeVerdict = boolean | Protocal | void | undefined;

type MaybePromise<T> = T | Promise<T>;

/** Application hooks (MobileIMSDK `ServerEventListener` and `MessageQoSEventListenerS2C`). Every one is optional. */
export interface ServerHooks {
  /** Decides a login: 0 or true accepts; a non-zero number is sent back as the login code (use 1025 and up); false is 1025. */
  verifyLogin?(userId: string, token: string, extra: string | null, conn: ConnectionInfo): MaybePromise<number | boolean>;
  /** A user logged in on `conn`. */
  onLoginSuccess?(userId: string, extra: string | null, conn: ConnectionInfo): void;
  /** The user's current session closed; `kickCode` is -1 unless it was kicked (admin kick: 2). */
  onLogout?(userId: string, kickCode: number, conn: ConnectionInfo): void;
  /** A message to the server (to "0"), before dedup and ACK: may drop or rewrite it. */
  beforeC2S?(message: Protocal, conn: ConnectionInfo): MaybePromise<BeforeVerdict>;
  /** A message to another user, before routing: may drop or rewrite it. */
  beforeC2C?(message: Protocal, conn: ConnectionInfo): MaybePromise<BeforeVerdict>;
  /** A message to the server that is not a duplicate; the sender is already ACKed. */
  onC2S?(message: Protocal, conn: ConnectionInfo): void;
  /** A message to a user was written to the receiver's connection (retransmissions may repeat it). */
  onC2C?(message: Protocal): void;
  /**
   * Replaces the default offline store: called for a message whose receiver is offline. Return true
   * once it is stored (the sender is then ACKed), false to drop it (the sender reports it lost).
   */
  onOffline?(message: Protocal): MaybePromise<boolean>;
  /** A client ACKed a QoS message the server had written to it. */
  onDelivered?(fp: string, userId: string): void;
  /**
   * QoS messages that got no ACK after the retransmissions (they stay stored if the store holds them; one
   * whose held put failed to commit is not stored, and its sender, who got no ACK, retries it), and
   * stored messages that expired (`messageTtlMs`) before their receiver ACKed them: those are gone for good.
   */
  onLost?(messages: Protocal[]): void;
}

/** Awaits a hook's result, rejecting if it has not settled within `timeoutMs`. */
export function settleWithin<T>(result: MaybePromise<T>, timeoutMs: number, name: string): Promise<T> {
  if (!result || typeof (result as PromiseLike<T>).then !== 'function') return Promise.resolve(result);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hook ${name} did not settle within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([result, late]).finally(() => clearTimeout(timer));
}

/** Runs an application hook, logging (never propagating) what it throws or rejects with. */
export function runHook(logger: Logger, name: string, fn: () => unknown): void {
  try {
    const r = fn();
    if (r && typeof (r as Promise<unknown>).catch === 'function') {
      (r as Promise<unknown>).catch((err) => logger.error(`hook ${name} failed`, err));
    }
  } catch (err) {
    logger.error(`hook ${name} failed`, err);
  }
}

/** {@link runHook} bound to a logger, for the handlers' context. */
export function hookRunner(logger: Logger): (name: string, fn: () => unknown) => void {
  return (name, fn) => runHook(logger, name, fn);
}
