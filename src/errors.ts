import type { StateReason } from './client-types';

/** Why an operation failed; `IMError.code` takes one of these. */
export type IMErrorCode =
  | 'LOGIN_REJECTED'
  | 'LOGIN_TIMEOUT'
  | 'CONNECT_FAILED'
  | 'CONNECTION_LOST'
  | 'RECONNECT_FAILED'
  | 'KICKED'
  | 'LOGGED_OUT'
  | 'DESTROYED'
  | 'ALREADY_ACTIVE'
  | 'NOT_ONLINE'
  | 'OUTBOX_FULL'
  | 'MESSAGE_TOO_LARGE'
  | 'MESSAGE_REFUSED'
  | 'SEND_TIMEOUT'
  | 'ECHO_TIMEOUT'
  | 'SERVER_ERROR'
  | 'PROTOCOL_ERROR'
  | 'TOKEN_ERROR';

/** Details some errors carry besides their code; see {@link IMError}. */
export interface IMErrorDetails {
  /** `MESSAGE_REFUSED`, `MESSAGE_TOO_LARGE`: the byte limit the message broke, when known. */
  limit?: number;
  /**
   * `CONNECT_FAILED`, `RECONNECT_FAILED`: why the link went down, by the name `state` events use
   * (such as `socket-closed` or `login-timeout`); the message says it in words.
   */
  reason?: StateReason;
}

/**
 * A runtime failure: rejected from the promise that waited for it, or emitted as `error`.
 * `serverCode` carries the server's numeric code where it sent one: the login code (`LOGIN_REJECTED`),
 * the type-52 error code (`SERVER_ERROR`, and `MESSAGE_REFUSED` when the server refused it), or the
 * kickout code (`KICKED`). `limit` and `reason` are set as {@link IMErrorDetails} says.
 */
export class IMError extends Error {
  /** The byte limit a refused message broke, when known. */
  readonly limit?: number;
  /** Why the link went down, for connection failures. */
  readonly reason?: StateReason;

  /** @param code what failed  @param message a sentence for people  @param serverCode the server's code */
  constructor(readonly code: IMErrorCode, message: string, readonly serverCode?: number, readonly cause?: unknown, details?: IMErrorDetails) {
    super(message);
    this.name = 'IMError';
    Object.assign(this, details);
  }
}
