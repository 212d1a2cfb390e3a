/**
 * Error codes the server puts in type-52 frames. 301 is MobileIMSDK's own; the 31x codes are this
 * server's additions for input MobileIMSDK would have trusted or crashed on (codes 0–1024 are reserved for
 * the framework, so applications keep 1025 and up for their login-verify codes).
 */
export const ServerErrorCode = {
  /** A frame that needs a login arrived before one (MobileIMSDK `RESPONSE_FOR_UNLOGIN`). */
  UNLOGIN: 301,
  /** Not a valid frame: bad JSON, a non-object, wrong field types, an empty body, invalid UTF-8. */
  BAD_FRAME: 310,
  /** A frame over the transport's size limit. */
  FRAME_TOO_LARGE: 311,
  /** A binary WebSocket frame: MobileIMSDK speaks text frames only. */
  BINARY_FRAME: 312,
  /** A data or ACK frame whose `from` is not the connection's logged-in user. */
  SPOOFED_FROM: 313,
  /** A login for another user on a connection that is already logged in. */
  ALREADY_LOGGED_IN: 314,
  /** The connection sent frames faster than its rate limit allows. */
  RATE_LIMITED: 315,
  /** The connection did not log in within the login deadline. */
  LOGIN_TIMEOUT: 316,
  /** A data frame the server cannot route: QoS without `fp`, or a receiver no user can be (the login rules for user ids). */
  BAD_MESSAGE: 317,
  /** A server hook failed while handling the frame. */
  SERVER_ERROR: 318,
  /** The receiver's offline box is full; the message was not accepted. */
  OFFLINE_BOX_FULL: 319,
  /** A data frame's fp, or an ACK's, is longer than the server keeps (128 characters; MobileIMSDK fps are 36). */
  FP_TOO_LONG: 320,
  /** Too many messages (or bytes) wait for a receiver's ACK server-wide; the message was not accepted, retry later. */
  SERVER_BUSY: 321,
  /** The connection has more bytes of frames waiting to be handled than it may (behind slow hooks); it is closed. */
  INPUT_BACKLOG: 322,
  /** The server's offline store reached its global limit (messages or bytes); the message was not accepted. */
  OFFLINE_STORE_FULL: 324,
  /**
   * The offline store cannot write durably now (its data directory was deleted, the disk is full or
   * failing); the message was not accepted. It lasts until the operator fixes the store (or restarts).
   */
  STORE_UNAVAILABLE: 325,
  /** Login code (type 50): the token is missing, malformed, badly signed, for another user, or fails `aud`/`iss`. */
  AUTH_INVALID_TOKEN: 328,
  /** Login code (type 50): the token has expired or is not yet valid (`exp`/`nbf`); get a fresh one. */
  AUTH_TOKEN_EXPIRED: 329,
  /** Login code (type 50): the authentication backend failed (timeout, unreachable, bad answer); retry later. */
  AUTH_UNAVAILABLE: 330,
  /** Login code (type 50): too many logins are being verified at once; retry later. */
  AUTH_BUSY: 331,
  /** Keep-alives, or ACKs for messages the connection was not sent, faster than the control budget allows. */
  CONTROL_RATE_LIMITED: 332,
  /** The server is shutting down: reconnect now (with jitter), to this node once it is back or to another. */
  SERVER_GOING_AWAY: 336,
  /**
   * The node cannot reach the cluster's shared state (Redis) now: a login is refused (error frame, then
   * close; the client reconnects), and so is a message that needs it. Retry later, here or at another node.
   */
  CLUSTER_UNAVAILABLE: 337,
} as const;

/** One of the {@link ServerErrorCode} values. */
export type ServerErrorCodeValue = (typeof ServerErrorCode)[keyof typeof ServerErrorCode];
