/**
 * uni-app adapter over `uni.connectSocket` and its SocketTask (every target uni-app compiles to), with
 * `uni.onAppShow`/`onAppHide` and network status as lifecycle events. The `uni` object is passed in.
 */
import type { SocketAdapter } from '../src/transport';
import { createSocketTaskAdapter, type ConnectCallbacks } from './internal/socket-task';
import { watchAppEvents, type AppEventApi } from './internal/app-events';

/** The part of the `uni` object this adapter uses. */
export interface UniLike extends AppEventApi {
  /**
   * Returns a SocketTask only when a callback is passed, otherwise a Promise
   * (https://uniapp.dcloud.io/api/request/websocket).
   */
  connectSocket(option: { url: string } & ConnectCallbacks): unknown;
}

/**
 * Creates the adapter for uni-app. Give each client its own adapter: an adapter closes its previous
 * SocketTask before opening a new one (mini-program targets limit the number of sockets).
 *
 * On the H5 target, uni-app bundles only the `uni.*` functions the app's own code names, so pass an
 * object that names them (`{ connectSocket: (o) => uni.connectSocket(o), onAppShow: (f) => uni.onAppShow(f), … }`, as
 * demo-uniapp does) or the adapter finds `connectSocket` missing and throws.
 *
 * @example
 * const client = new IMClient({ url: 'wss://im.example.com/websocket', adapter: createUniAdapter(uni) });
 */
export function createUniAdapter(uni: UniLike): SocketAdapter {
  if (!uni || typeof uni.connectSocket !== 'function') {
    throw new TypeError('createUniAdapter(uni): pass the uni-app `uni` object');
  }
  return createSocketTaskAdapter(
    {
      name: 'uni',
      /* uni.connectSocket returns a Promise instead of a SocketTask unless success/fail/complete is passed
         (https://uniapp.dcloud.io/api/request/websocket; the "socketTask.onClose is not a function" bug in
         zimv/websocket-heartbeat-miniprogram#3). The shared code always passes `fail` and `complete`.
         uni-app may also report `send` success while offline (dcloudio/uni-app#744): send success is never
         treated as delivery; the core's QoS and keep-alive decide that. */
      open: (url, callbacks) => uni.connectSocket({ url, ...callbacks }),
    },
    (listener) => watchAppEvents(uni, listener),
  );
}
