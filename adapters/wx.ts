/**
 * WeChat mini-program adapter over `wx.connectSocket` and its SocketTask, with app show/hide and network
 * status as lifecycle events. The `wx` object is passed in; nothing is looked up globally.
 */
import type { SocketAdapter } from '../src/transport';
import { createSocketTaskAdapter, type ConnectCallbacks, type SocketTaskLike } from './internal/socket-task';
import { watchAppEvents, type AppEventApi } from './internal/app-events';

/** The part of the WeChat `wx` object this adapter uses. */
export interface WxLike extends AppEventApi {
  /** https://developers.weixin.qq.com/miniprogram/dev/api/network/websocket/wx.connectSocket.html */
  connectSocket(option: { url: string } & ConnectCallbacks): SocketTaskLike;
}

/**
 * Creates the adapter for WeChat mini-programs. Give each client its own adapter: an adapter closes its
 * previous SocketTask before opening a new one (WeChat allows at most 5).
 *
 * @example
 * const client = new IMClient({ url: 'wss://im.example.com/websocket', adapter: createWxAdapter(wx) });
 */
export function createWxAdapter(wx: WxLike): SocketAdapter {
  if (!wx || typeof wx.connectSocket !== 'function') {
    throw new TypeError('createWxAdapter(wx): pass the mini-program `wx` object');
  }
  return createSocketTaskAdapter(
    { name: 'wx', open: (url, callbacks) => wx.connectSocket({ url, ...callbacks }) },
    (listener) => watchAppEvents(wx, listener),
  );
}
