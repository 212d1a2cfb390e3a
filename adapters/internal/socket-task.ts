/**
 * The SocketTask family (WeChat, uni-app, Alipay, Douyin): one `connectSocket` returning a task with
 * `onOpen`/`onMessage`/`onClose`/`onError`, `send({data})` and `close({code, reason})`. Each platform
 * file only says how to call its `connectSocket`; the contract is kept here.
 */
import type { SocketAdapter, SocketConnection, SocketHandlers } from '../../src/transport';
import { createHandlerGate } from './gate';
import { toSocketPayload } from './bytes';

/**
 * The result object the mini-program APIs pass to `fail` and `onError`: `errMsg` on WeChat, uni-app and
 * Douyin, `error` and `errorMessage` on Alipay (https://opendocs.alipay.com/mini/api/vx19c3).
 */
export interface PlatformResult {
  errMsg?: string;
  errorMessage?: string;
}

/** A SocketTask as every member of the family documents it (typed structurally, the minimum we use). */
export interface SocketTaskLike {
  onOpen(listener: (result: unknown) => void): void;
  onMessage(listener: (result: { data: unknown }) => void): void;
  onClose(listener: (result: { code?: number; reason?: string }) => void): void;
  onError(listener: (result: PlatformResult) => void): void;
  send(option: { data: string | ArrayBuffer; fail?: (result: PlatformResult) => void }): void;
  close(option: { code?: number; reason?: string; fail?: (result: PlatformResult) => void }): void;
}

/** The callbacks a platform file must pass to its `connectSocket`. */
export interface ConnectCallbacks {
  fail(result: PlatformResult): void;
  complete(result: unknown): void;
}

/** How one platform opens a task and reads its messages. */
export interface SocketTaskPlatform {
  /** The adapter's name for logs. */
  name: string;
  /** Calls the platform's `connectSocket`; whatever it returns is checked before use. */
  open(url: string, callbacks: ConnectCallbacks): unknown;
  /** Turns an `onMessage` result into a frame; the default passes `data` through. */
  readMessage?(result: { data: unknown; [key: string]: unknown }): string | ArrayBuffer;
}

/** Code 1006 (no close frame) for closes the platform did not describe. */
export const ABNORMAL_CLOSE = 1006;

const noop = (): void => {};

/**
 * `SocketTask.close` accepts only 1000 or 3000-4999 and fails otherwise
 * (https://developers.weixin.qq.com/miniprogram/dev/api/network/websocket/SocketTask.close.html), so any
 * other code is sent as 1000; the core still receives the code it asked for.
 */
function wireCloseCode(code: number): number {
  return code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000;
}

function isSocketTask(value: unknown): value is SocketTaskLike {
  const task = value as Partial<SocketTaskLike> | null;
  return (
    typeof task === 'object' &&
    task !== null &&
    typeof task.onOpen === 'function' &&
    typeof task.send === 'function' &&
    typeof task.close === 'function'
  );
}

function describe(result: unknown, fallback: string): string {
  const r = result as PlatformResult | null;
  for (const text of [r?.errMsg, r?.errorMessage]) if (typeof text === 'string' && text !== '') return text;
  return fallback;
}

function defaultReadMessage(result: { data: unknown }): string | ArrayBuffer {
  return result.data as string | ArrayBuffer;
}

/**
 * Builds a SocketTask-family adapter. The adapter instance keeps its own current task (never module
 * state), so each client must get its own adapter instance.
 */
export function createSocketTaskAdapter(
  platform: SocketTaskPlatform,
  watchLifecycle?: SocketAdapter['watchLifecycle'],
): SocketAdapter {
  let current: SocketConnection | null = null;
  const readMessage = platform.readMessage ?? defaultReadMessage;

  const connect = (url: string, handlers: SocketHandlers): SocketConnection => {
    /* WeChat allows at most 5 concurrent SocketTasks and a task that is never closed keeps its slot
       (https://developers.weixin.qq.com/miniprogram/dev/api/network/websocket/wx.connectSocket.html; Alipay
       and QQ document the same limit, uni-app inherits it), so the previous task of this adapter is always
       closed before a new one is opened. */
    if (current) current.close(1000, 'replaced by a new connection');

    const gate = createHandlerGate(handlers);
    let task: SocketTaskLike | null = null;
    let opened = false;

    const closeTask = (code: number, reason: string): void => {
      if (!task) return;
      try {
        task.close({ code: wireCloseCode(code), reason, fail: noop });
      } catch {
        /* the task is already gone; the close is reported by the gate either way */
      }
    };
    const terminate = (code: number, reason: string): void => {
      if (gate.close({ code, reason })) closeTask(code, reason);
      if (current === connection) current = null;
    };

    const connection: SocketConnection = {
      send(data) {
        if (gate.ended || !task) return;
        try {
          task.send({ data: toSocketPayload(data), fail: (result) => gate.error(result) });
        } catch (thrown) {
          gate.error(thrown);
        }
      },
      close(code = 1000, reason = '') {
        if (gate.ended) return;
        /* A socket that died in the background never fires SocketTask.onClose (WeChat community thread
           000e0a7c7c85003d13121165c6bc00), and uni-app's close() may never complete while offline
           (dcloudio/uni-app#2144), so a local close is reported at once instead of waiting for the
           platform; a platform close that follows is ignored by the gate. */
        gate.closeDeferred({ code, reason });
        closeTask(code, reason);
        if (current === connection) current = null;
      },
    };
    current = connection;

    /* `success` and `fail` only say whether connectSocket was accepted, and may arrive after onOpen
       (https://developers.weixin.qq.com/miniprogram/dev/api/network/websocket/wx.connectSocket.html), so
       `success` is ignored and `fail` counts as a failed connection only before the socket opened. */
    const callbacks: ConnectCallbacks = {
      fail(result) {
        gate.error(result);
        if (!opened) terminate(ABNORMAL_CLOSE, describe(result, `${platform.name}: connectSocket failed`));
      },
      complete: noop,
    };

    let returned: unknown;
    try {
      returned = platform.open(url, callbacks);
    } catch (thrown) {
      gate.error(thrown);
      terminate(ABNORMAL_CLOSE, `${platform.name}: connectSocket threw`);
    }

    if (isSocketTask(returned)) {
      const openedTask = returned;
      task = openedTask;
      /* a `fail` delivered synchronously from connectSocket has already ended this connection */
      if (gate.ended) closeTask(1000, '');
      /* Listeners are registered synchronously, straight after connectSocket returns: registered any
         later, the open event can be missed (reported in the WeChat developer community). */
      openedTask.onOpen(() => {
        opened = true;
        /* A close asked for while the handshake was running can fail ("closeSocket:fail WebSocket is not
           connected") and the socket opens anyway, holding one of the 5 slots with nobody listening: close
           it now that it can be closed. */
        if (gate.ended) closeTask(1000, '');
        else gate.open();
      });
      openedTask.onMessage((result) => {
        try {
          gate.message(readMessage(result as { data: unknown }));
        } catch (thrown) {
          gate.error(thrown);
        }
      });
      openedTask.onClose((result) => {
        const code = typeof result?.code === 'number' ? result.code : ABNORMAL_CLOSE;
        const reason = typeof result?.reason === 'string' ? result.reason : '';
        gate.close({ code, reason });
        if (current === connection) current = null;
      });
      /* uni-app's App and mini-program builds differ in which of error/close they fire
         (dcloudio/uni-app#1619), so an error ends the connection here; a close that follows is ignored. */
      openedTask.onError((result) => {
        gate.error(result);
        terminate(ABNORMAL_CLOSE, describe(result, `${platform.name}: socket error`));
      });
    } else if (!gate.ended) {
      gate.error(new TypeError(`${platform.name}: connectSocket returned no SocketTask`));
      terminate(ABNORMAL_CLOSE, `${platform.name}: connectSocket returned no SocketTask`);
    }

    gate.release();
    return connection;
  };

  const adapter: SocketAdapter = { name: platform.name, connect };
  if (watchLifecycle) adapter.watchLifecycle = watchLifecycle;
  return adapter;
}
