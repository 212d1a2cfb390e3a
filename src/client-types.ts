import type { IMError } from './errors';
import type { OutgoingMessage } from './qos-outbox';
import type { ClientStateName } from './state';

/** A data message that arrived (C2C from another user, or S2C from the server, whose id is "0"). */
export interface IncomingMessage {
  fp: string | null;
  from: string;
  to: string;
  content: string;
  typeu: number;
  qos: boolean;
  /** The server's timestamp (`sm`) when it sets one, else null. */
  serverTime: number | null;
}

/** Why the state changed, as given in `state` events. */
export type StateReason =
  | 'login'
  | 'socket-open'
  | 'logged-in'
  | 'socket-closed'
  | 'connect-failed'
  | 'login-timeout'
  | 'keepalive-timeout'
  | 'probe-timeout'
  | 'server-unlogin'
  | 'protocol-error'
  | 'offline'
  | 'server-going-away'
  | 'retry'
  | 'logout'
  | 'kicked'
  | 'login-rejected'
  | 'reconnect-failed'
  | 'destroyed';

/** The events of {@link IMClient}, each with one payload object. */
export type ClientEvents = {
  state: { from: ClientStateName; to: ClientStateName; reason: StateReason };
  message: IncomingMessage;
  delivered: { fp: string; message: OutgoingMessage };
  /** The receiver's device has the message `fp` (our server only, with the `receipts` option on). */
  received: { fp: string; to: string; at: number };
  lost: { message: OutgoingMessage; error: IMError };
  kicked: { code: number; reason: string };
  reconnect: { attempt: number; delayMs: number };
  error: IMError;
};

/** What `login()` takes. */
export interface LoginParams {
  userId: string;
  token?: string;
  extra?: string;
  /**
   * The first-login time a session of this device already has (0 or absent: a first login). With the
   * same value the server replaces that session silently instead of kicking it out.
   */
  firstLoginTime?: number;
}

/** What `login()` resolves with. */
export interface LoginResult {
  userId: string;
  /** The server's first-login time for this device, sent again on every re-login. */
  firstLoginTime: number;
}

/** Options of `send()`. */
export interface SendOptions {
  /** Ask for an ACK and retransmit until it comes (default true, as MobileIMSDK's default overloads). */
  qos?: boolean;
  /** Application sub-type, carried untouched (default -1). */
  typeu?: number;
  /** Your own fingerprint; a QoS message gets a fresh UUID otherwise. */
  fp?: string;
}
