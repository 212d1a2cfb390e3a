/**
 * Alipay mini-program adapter over `my.connectSocket({ multiple: true })` and its SocketTask, with app
 * show/hide and network status as lifecycle events. The `my` object is passed in.
 */
import type { SocketAdapter } from '../src/transport';
import { createSocketTaskAdapter, type ConnectCallbacks } from './internal/socket-task';
import { watchAppEvents, type AppEventApi } from './internal/app-events';
import { decodeBase64 } from './internal/bytes';

/** The part of the Alipay `my` object this adapter uses. */
export interface MyLike extends AppEventApi {
  /** Returns a SocketTask only with `multiple: true` (https://opendocs.alipay.com/mini/api/vx19c3). */
  connectSocket(option: { url: string; multiple: boolean } & ConnectCallbacks): unknown;
}

/**
 * Creates the adapter for Alipay mini-programs. Give each client its own adapter: an adapter closes its
 * previous SocketTask before opening a new one (Alipay allows at most 5).
 *
 * @example
 * const client = new IMClient({ url: 'wss://im.example.com/websocket', adapter: createAlipayAdapter(my) });
 */
export function createAlipayAdapter(my: MyLike): SocketAdapter {
  if (!my || typeof my.connectSocket !== 'function') {
    throw new TypeError('createAlipayAdapter(my): pass the mini-program `my` object');
  }
  return createSocketTaskAdapter(
    {
      name: 'alipay',
      /* Without `multiple: true`, my.connectSocket returns nothing and drives the single global socket
         (my.onSocketOpen and friends), one per app (https://opendocs.alipay.com/mini/api/vx19c3). */
      open: (url, callbacks) => my.connectSocket({ url, multiple: true, ...callbacks }),
      /* Alipay's socket message result can carry binary as a base64 string flagged `isBuffer` (the
         my.onSocketMessage documentation; mqttjs/MQTT.js src/lib/connect/ali.ts decodes it too). */
      readMessage: (result) =>
        result.isBuffer === true && typeof result.data === 'string'
          ? decodeBase64(result.data)
          : (result.data as string | ArrayBuffer),
    },
    (listener) => watchAppEvents(my, listener),
  );
}
