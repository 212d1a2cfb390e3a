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
  | 'SEND_TIMEOUT'
  | 'ECHO_TIMEOUT'
  | 'SERVER_ERROR'
  | 'PROTOCOL_ERROR'
  | 'TOKEN_ERROR';

/**
 * A runtime failure: rejected from the promise that waited for it, or emitted as `error`.
 * `serverCode` carries the server's numeric code where it sent one: the login code (`LOGIN_REJECTED`),
 * the type-52 error code (`SERVER_ERROR`), or the kickout code (`KICKED`).
 */
export class IMError extends Error {
  /** @param code what failed  @param message a sentence for people  @param serverCode the server's code */
  constructor(readonly code: IMErrorCode, message: string, readonly serverCode?: number, readonly cause?: unknown) {
    super(message);
    this.name = 'IMError';
  }
}
