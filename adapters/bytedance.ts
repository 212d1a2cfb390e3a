/**
 * Douyin (Bytedance) mini-program adapter over `tt.connectSocket` and its SocketTask, with app show/hide
 * and network status as lifecycle events. The `tt` object is passed in; nothing is looked up globally.
 */
import type { SocketAdapter } from '../src/transport';
import { createSocketTaskAdapter, type ConnectCallbacks, type SocketTaskLike } from './internal/socket-task';
import { watchAppEvents, type AppEventApi } from './internal/app-events';

/** The part of the Douyin `tt` object this adapter uses. */
export interface TtLike extends AppEventApi {
  /** Douyin's tt.connectSocket: returns a SocketTask (base library 1.0.0+). */
  connectSocket(option: { url: string } & ConnectCallbacks): SocketTaskLike;
}

/**
 * Creates the adapter for Douyin mini-programs. Give each client its own adapter: an adapter closes its
 * previous SocketTask before opening a new one.
 *
 * @example
 * const client = new IMClient({ url: 'wss://im.example.com/websocket', adapter: createBytedanceAdapter(tt) });
 */
export function createBytedanceAdapter(tt: TtLike): SocketAdapter {
  if (!tt || typeof tt.connectSocket !== 'function') {
    throw new TypeError('createBytedanceAdapter(tt): pass the mini-program `tt` object');
  }
  return createSocketTaskAdapter(
    { name: 'bytedance', open: (url, callbacks) => tt.connectSocket({ url, ...callbacks }) },
    (listener) => watchAppEvents(tt, listener),
  );
}
