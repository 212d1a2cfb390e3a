/**
 * The contract between the platform-agnostic core and a platform adapter. An adapter is a thin
 * translation of one platform's socket API; it is handed the platform object, never sniffs globals at
 * import time, and keeps no module-level state, so several clients in one page stay independent.
 */

/** What the platform says about the app and the network; each adapter maps its own events onto these. */
export type LifecycleEvent = 'online' | 'offline' | 'foreground' | 'background';

/** Callbacks the core passes to {@link SocketAdapter.connect}; an adapter calls each close path once. */
export interface SocketHandlers {
  /** The socket is open and `send` may be called. */
  onOpen(): void;
  /** One whole frame arrived (adapters with their own framing, such as TCP, reassemble first). */
  onMessage(data: string | ArrayBuffer | Uint8Array): void;
  /** The socket closed; called at most once per connection, after which no other handler is called. */
  onClose(info: { code: number; reason: string }): void;
  /** A platform error; the core logs it and relies on `onClose` or its keep-alive to notice a dead link. */
  onError(error: unknown): void;
}

/** One live socket, as returned by {@link SocketAdapter.connect}. */
export interface SocketConnection {
  /** Sends exactly the given text or bytes (a view is sent as its own bytes, never its whole buffer). */
  send(data: string | ArrayBuffer | ArrayBufferView): void;
  /** Closes the socket; calling it again, or after the socket closed, does nothing. */
  close(code?: number, reason?: string): void;
}

/** A platform adapter: opens sockets and, optionally, reports lifecycle and network changes. */
export interface SocketAdapter {
  /** A short name for logs, such as `browser` or `wx`. */
  readonly name: string;
  /** The largest frame, in UTF-8 bytes, the transport carries (WebSocket, the default: 65536). */
  readonly maxFrameBytes?: number;
  /** Opens a socket to `url`. Must not call any handler synchronously. */
  connect(url: string, handlers: SocketHandlers): SocketConnection;
  /** Starts reporting lifecycle events; returns the function that stops it and removes every listener. */
  watchLifecycle?(listener: (event: LifecycleEvent) => void): () => void;
}
