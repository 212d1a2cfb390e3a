import type { LifecycleEvent, SocketAdapter, SocketConnection, SocketHandlers } from '../src/transport';
import { DEV } from '../src/dev';

/** The part of the W3C `WebSocket` the adapter uses (browsers, and `ws` in Node). */
export interface WebSocketLike {
  readonly readyState: number;
  binaryType: string;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
}

/** A `WebSocket` constructor. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** The part of `window` / `document` the lifecycle hooks use. */
export interface EventTargetLike {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
}

/** Options of {@link createBrowserAdapter}; every one defaults to the page's own global. */
export interface BrowserAdapterOptions {
  /** The WebSocket class, looked up on `globalThis` at each connect when not given (pass `ws` in Node). */
  WebSocket?: WebSocketConstructor;
  /** Where `online`, `offline`, `pagehide` and `pageshow` fire; null turns those hooks off. */
  window?: EventTargetLike | null;
  /** Where `visibilitychange` fires; null turns that hook off. */
  document?: (EventTargetLike & { readonly visibilityState?: string }) | null;
}

const OPEN = 1;

function exactBytes(data: string | ArrayBuffer | ArrayBufferView): string | ArrayBuffer {
  if (typeof data === 'string' || data instanceof ArrayBuffer) return data;
  // A view is sent as its own bytes, never its whole backing buffer (MQTT.js#1506).
  return data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
}

function globalValue<T>(name: string): T | undefined {
  return (globalThis as unknown as Record<string, T | undefined>)[name];
}

/**
 * The adapter for the W3C WebSocket: browsers, WebViews, and Node with `ws`. Its lifecycle hooks report
 * `online`/`offline`; a page becoming visible or shown again as `foreground`; `pagehide` (the page is
 * frozen or unloaded) as `background`.
 *
 * @example
 * new IMClient({ url: 'ws://127.0.0.1:3000/websocket', adapter: createBrowserAdapter() });
 * // Node: import { WebSocket } from 'ws'; createBrowserAdapter({ WebSocket })
 */
export function createBrowserAdapter(options: BrowserAdapterOptions = {}): SocketAdapter {
  return {
    name: 'browser',
    connect(url: string, handlers: SocketHandlers): SocketConnection {
      const WS = options.WebSocket || globalValue<WebSocketConstructor>('WebSocket');
      if (typeof WS !== 'function') {
        throw new TypeError(DEV ? 'no WebSocket here: pass createBrowserAdapter({ WebSocket }) (in Node, WebSocket from "ws")' : 'no WebSocket');
      }
      let done = false;
      let ws: WebSocketLike | null = null;
      /* The adapter contract, kept here without the shared gate (the core bundle has no room for it):
         nothing reaches the core after the close, and a handler that throws is reported, never thrown
         into the platform's event dispatch (`ws` in Node would crash on it). */
      const call = (fn: () => void): void => {
        if (done) return;
        try {
          fn();
        } catch (error) {
          handlers.onError(error);
        }
      };
      const end = (code: number, reason: string): void => {
        if (done) return;
        done = true;
        if (ws) {
          ws.onopen = ws.onmessage = ws.onclose = null;
          // Keep an error listener: `ws` in Node emits 'error' when a socket is closed before its handshake
          // finished, and an EventEmitter with no 'error' listener throws it.
          ws.onerror = () => undefined;
        }
        Promise.resolve()
          .then(() => handlers.onClose({ code, reason }))
          .catch(() => undefined);
      };
      try {
        const w = (ws = new WS(url));
        w.binaryType = 'arraybuffer';
        w.onopen = () => call(() => handlers.onOpen());
        w.onmessage = (event) => call(() => handlers.onMessage(event.data as string | ArrayBuffer));
        w.onerror = (event) => call(() => handlers.onError(event));
        w.onclose = (event) => end(event.code, event.reason);
      } catch (error) {
        // A URL the platform refuses throws in the constructor: report it after connect returned.
        Promise.resolve().then(() => {
          call(() => handlers.onError(error));
          end(1006, String((error as Error).message || error));
        });
      }
      return {
        send(data) {
          if (done) return;
          if (!ws || ws.readyState !== OPEN) throw new Error('WebSocket not open');
          ws.send(exactBytes(data));
        },
        close(code = 1000, reason = '') {
          if (done) return;
          const w = ws;
          end(code, reason);
          if (w) w.close(code, reason);
        },
      };
    },
    watchLifecycle(onEvent: (event: LifecycleEvent) => void): () => void {
      // A listener that throws must not escape into the page's event dispatch.
      const listener = (event: LifecycleEvent): void => {
        try {
          onEvent(event);
        } catch {
          /* the core's own listener catches everything; this guards any other caller */
        }
      };
      const win = options.window === undefined ? lookupTarget('addEventListener') : options.window;
      const doc = options.document === undefined ? globalValue<BrowserAdapterOptions['document']>('document') || null : options.document;
      const hooks: Array<[EventTargetLike, string, () => void]> = [];
      if (win) {
        hooks.push(
          [win, 'online', () => listener('online')],
          [win, 'offline', () => listener('offline')],
          [win, 'pageshow', () => listener('foreground')],
          [win, 'pagehide', () => listener('background')],
        );
      }
      if (doc) {
        /* A hidden tab is not reported as 'background': the core pauses retries in the background, and a
           chat left open in a desktop tab must keep reconnecting. Becoming visible again probes the link,
           since timers in hidden tabs are throttled and a dead socket may not have been noticed. */
        hooks.push([doc, 'visibilitychange', () => doc.visibilityState !== 'hidden' && listener('foreground')]);
      }
      for (const [target, type, fn] of hooks) target.addEventListener(type, fn);
      return () => {
        for (const [target, type, fn] of hooks.splice(0)) target.removeEventListener(type, fn);
      };
    },
  };
}

function lookupTarget(method: string): EventTargetLike | null {
  const g = globalThis as unknown as Record<string, unknown>;
  return typeof g[method] === 'function' ? (g as unknown as EventTargetLike) : null;
}
