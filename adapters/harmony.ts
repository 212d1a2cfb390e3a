/**
 * HarmonyOS adapter over `@ohos.net.webSocket` / `@kit.NetworkKit` (`webSocket.createWebSocket()`), with
 * application state and network events, supplied by the app, as lifecycle events.
 */
import type { LifecycleEvent, SocketAdapter, SocketConnection, SocketHandlers } from '../src/transport';
import { createHandlerGate } from './internal/gate';
import { toSocketPayload } from './internal/bytes';
import { createNetworkTracker, safeEmit } from './internal/app-events';

/** Error-first callback of the ArkTS APIs: `err` is undefined/null (or carries code 0) on success. */
export type HarmonyCallback<T> = (err: unknown, value: T) => void;

/** A `WebSocket` from `webSocket.createWebSocket()`, typed structurally. */
export interface HarmonyWebSocket {
  on(type: 'open', callback: HarmonyCallback<unknown>): void;
  on(type: 'message', callback: HarmonyCallback<string | ArrayBuffer>): void;
  on(type: 'close', callback: HarmonyCallback<{ code: number; reason: string }>): void;
  on(type: 'error', callback: (err: unknown) => void): void;
  off(type: 'open', callback?: HarmonyCallback<unknown>): void;
  off(type: 'message', callback?: HarmonyCallback<string | ArrayBuffer>): void;
  off(type: 'close', callback?: HarmonyCallback<{ code: number; reason: string }>): void;
  off(type: 'error', callback?: (err: unknown) => void): void;
  connect(url: string, callback: HarmonyCallback<boolean>): void;
  send(data: string | ArrayBuffer, callback: HarmonyCallback<boolean>): void;
  close(options: { code?: number; reason?: string }, callback: HarmonyCallback<boolean>): void;
}

/** The `webSocket` module (`import { webSocket } from '@kit.NetworkKit'`). */
export interface HarmonyWebSocketModule {
  createWebSocket(): HarmonyWebSocket;
}

/** The callbacks object of `ApplicationContext.on('applicationStateChange', ...)`. */
export interface HarmonyApplicationStateCallback {
  onApplicationForeground(): void;
  onApplicationBackground(): void;
}

/** The app's `ApplicationContext` (`context.getApplicationContext()`), typed structurally. */
export interface HarmonyApplicationContext {
  on(type: 'applicationStateChange', callback: HarmonyApplicationStateCallback): void;
  off(type: 'applicationStateChange', callback?: HarmonyApplicationStateCallback): void;
}

/** A `NetConnection` from `connection.createNetConnection()`, dedicated to this adapter. */
export interface HarmonyNetConnection {
  on(type: 'netAvailable' | 'netLost' | 'netUnavailable', callback: (data: unknown) => void): void;
  register(callback: (err: unknown) => void): void;
  unregister(callback: (err: unknown) => void): void;
}

/** Lifecycle sources the HarmonyOS app supplies (they need an ability context, which an SDK cannot get). */
export interface HarmonyAdapterOptions {
  /** Reports foreground/background (`ApplicationContext`). */
  applicationContext?: HarmonyApplicationContext;
  /** Reports network loss and return; needs `ohos.permission.GET_NETWORK_INFO`. */
  netConnection?: HarmonyNetConnection;
}

const ABNORMAL_CLOSE = 1006;

function isFailure(err: unknown): boolean {
  if (err === undefined || err === null) return false;
  const code = (err as { code?: unknown }).code;
  return code !== 0;
}

/** The `netId` of the NetHandle a NetConnection event carries, if any. */
function netIdOf(handle: unknown): unknown {
  return (handle as { netId?: unknown } | null)?.netId;
}

function describe(err: unknown, fallback: string): string {
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === 'string' && message !== '' ? message : fallback;
}

/**
 * Creates the adapter for HarmonyOS (ArkTS). Give each client its own adapter: an adapter closes its
 * previous socket before opening a new one. Needs `ohos.permission.INTERNET`.
 *
 * @example
 * import { webSocket, connection } from '@kit.NetworkKit';
 * const adapter = createHarmonyAdapter(webSocket, {
 *   applicationContext: this.context.getApplicationContext(),
 *   netConnection: connection.createNetConnection(),
 * });
 */
export function createHarmonyAdapter(
  webSocketModule: HarmonyWebSocketModule,
  options: HarmonyAdapterOptions = {},
): SocketAdapter {
  if (!webSocketModule || typeof webSocketModule.createWebSocket !== 'function') {
    throw new TypeError('createHarmonyAdapter(webSocket): pass the `webSocket` module of @kit.NetworkKit');
  }
  let current: SocketConnection | null = null;

  const connect = (url: string, handlers: SocketHandlers): SocketConnection => {
    if (current) current.close(1000, 'replaced by a new connection');
    const gate = createHandlerGate(handlers);
    let ws: HarmonyWebSocket | null = null;
    let closeRequested = false;

    /* Listeners are removed with off() once the connection ends, so a WebSocket object the platform keeps
       alive holds no reference to the core (@ohos.net.webSocket `off`). */
    const onOpen: HarmonyCallback<unknown> = (err) => {
      if (isFailure(err)) fail(err, 'open failed');
      else gate.open();
    };
    const onMessage: HarmonyCallback<string | ArrayBuffer> = (err, value) => {
      if (isFailure(err)) gate.error(err);
      else gate.message(value);
    };
    const onClose: HarmonyCallback<{ code: number; reason: string }> = (err, value) => {
      if (isFailure(err)) gate.error(err);
      const code = typeof value?.code === 'number' ? value.code : ABNORMAL_CLOSE;
      const reason = typeof value?.reason === 'string' ? value.reason : '';
      gate.close({ code, reason });
      release();
    };
    const onError = (err: unknown): void => fail(err, 'socket error');

    const detach = (): void => {
      const socket = ws;
      if (!socket) return;
      const removals = [
        () => socket.off('open', onOpen),
        () => socket.off('message', onMessage),
        () => socket.off('close', onClose),
        () => socket.off('error', onError),
      ];
      for (const remove of removals) {
        try {
          remove();
        } catch {
          /* nothing more to remove */
        }
      }
    };
    const closeSocket = (code: number, reason: string): void => {
      if (!ws || closeRequested) return;
      closeRequested = true;
      try {
        ws.close({ code, reason }, () => {});
      } catch {
        /* already closed; the gate reports the close either way */
      }
    };
    const release = (): void => {
      detach();
      if (current === connection) current = null;
    };
    /* An error ends the connection: error-only failures would otherwise leave the core waiting. */
    function fail(err: unknown, what: string): void {
      gate.error(err);
      if (gate.close({ code: ABNORMAL_CLOSE, reason: describe(err, `harmony: ${what}`) })) {
        closeSocket(1000, '');
        release();
      }
    }

    const connection: SocketConnection = {
      send(data) {
        if (gate.ended || !ws) return;
        try {
          ws.send(toSocketPayload(data), (err) => {
            if (isFailure(err)) gate.error(err);
          });
        } catch (thrown) {
          gate.error(thrown);
        }
      },
      close(code = 1000, reason = '') {
        if (gate.ended) return;
        gate.closeDeferred({ code, reason });
        closeSocket(code, reason);
        release();
      },
    };
    current = connection;

    try {
      const socket = webSocketModule.createWebSocket();
      ws = socket;
      socket.on('open', onOpen);
      socket.on('message', onMessage);
      socket.on('close', onClose);
      socket.on('error', onError);
      /* connect's callback only says whether the request was accepted; `false` or an error means no
         open event will follow (@ohos.net.webSocket `connect`). */
      socket.connect(url, (err, accepted) => {
        if (isFailure(err) || accepted === false) fail(err, 'connect failed');
      });
    } catch (thrown) {
      fail(thrown, 'connect threw');
    }
    gate.release();
    return connection;
  };

  const adapter: SocketAdapter = { name: 'harmony', connect };
  const { applicationContext, netConnection } = options;
  if (applicationContext || netConnection) {
    adapter.watchLifecycle = (listener: (event: LifecycleEvent) => void) => {
      let active = true;
      const emit = (event: LifecycleEvent): void => {
        if (active) safeEmit(listener, event);
      };
      const network = createNetworkTracker((event) => emit(event));
      const stateCallback: HarmonyApplicationStateCallback = {
        onApplicationForeground: () => emit('foreground'),
        onApplicationBackground: () => emit('background'),
      };
      const onRegistered = (): void => {};
      if (applicationContext) applicationContext.on('applicationStateChange', stateCallback);
      if (netConnection) {
        /* NetConnection delivers netAvailable/netLost/netUnavailable only after register(), and has no
           off(): unregister() drops every subscription, hence a NetConnection dedicated to this adapter
           (@ohos.net.connection NetConnection). */
        /* NetConnection documents no order between the new default's netAvailable and the old one's netLost
           when the default network moves (Wi-Fi to cellular). A netLost for any network but the latest
           available one must not report offline, or the core would close and wait for an 'online' that
           never comes. */
        let defaultNetId: unknown;
        netConnection.on('netAvailable', (handle) => {
          if (!active) return;
          defaultNetId = netIdOf(handle);
          network(true);
        });
        netConnection.on('netLost', (handle) => {
          const lost = netIdOf(handle);
          if (!active || (lost !== undefined && defaultNetId !== undefined && lost !== defaultNetId)) return;
          network(false);
        });
        netConnection.on('netUnavailable', () => active && network(false));
        netConnection.register(onRegistered);
      }
      return () => {
        if (!active) return;
        active = false;
        if (applicationContext) applicationContext.off('applicationStateChange', stateCallback);
        if (netConnection) netConnection.unregister(onRegistered);
      };
    };
  }
  return adapter;
}
