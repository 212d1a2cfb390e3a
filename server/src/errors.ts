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
  /** A data frame the server cannot route: QoS without `fp`, or no receiver. */
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
} as const;

/** One of the {@link ServerErrorCode} values. */
export type ServerErrorCodeValue = (typeof ServerErrorCode)[keyof typeof ServerErrorCode];
