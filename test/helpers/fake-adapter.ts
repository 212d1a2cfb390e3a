import { createFrame, decodeFrame, encodeFrame, type Protocal } from '../../src/protocol';
import type { LifecycleEvent, SocketAdapter, SocketHandlers } from '../../src/transport';

/** One socket opened through the fake adapter, driven by the test as if it were the server. */
export class FakeSocket {
  readonly sentText: string[] = [];
  closedByClient: { code?: number; reason?: string } | null = null;
  private serverClosed = false;

  constructor(readonly url: string, private readonly handlers: SocketHandlers) {}

  /** Frames the client sent, decoded. */
  get sent(): Protocal[] {
    return this.sentText.map(decodeFrame);
  }

  /** Frames the client sent of one type. */
  sentOfType(type: number): Protocal[] {
    return this.sent.filter((f) => f.type === type);
  }

  get isOpen(): boolean {
    return !this.closedByClient && !this.serverClosed;
  }

  open(): void {
    this.handlers.onOpen();
  }

  /** Delivers a frame from the "server" (fields over MobileIMSDK's defaults, or raw text). */
  deliver(frame: (Partial<Protocal> & { type: number }) | string): void {
    this.handlers.onMessage(typeof frame === 'string' ? frame : encodeFrame(createFrame({ from: '0', ...frame })));
  }

  deliverBytes(bytes: Uint8Array | ArrayBuffer): void {
    this.handlers.onMessage(bytes);
  }

  /** Answers the pending login with `code`. */
  loginResponse(code = 0, firstLoginTime = 1700000000000): void {
    this.deliver({ type: 50, dataContent: JSON.stringify({ code, firstLoginTime: code === 0 ? firstLoginTime : -1 }) });
  }

  serverClose(code = 1000, reason = 'Bye'): void {
    this.serverClosed = true;
    this.handlers.onClose({ code, reason });
  }

  error(e: unknown): void {
    this.handlers.onError(e);
  }

  send(data: string | ArrayBuffer | ArrayBufferView): void {
    if (!this.isOpen) throw new Error('closed');
    this.sentText.push(String(data));
  }

  close(code?: number, reason?: string): void {
    if (!this.closedByClient) this.closedByClient = { code, reason };
  }
}

/** An in-memory adapter: every connect() gives the test a FakeSocket; lifecycle events are fired by hand. */
export function createFakeAdapter(options: { lifecycle?: boolean } = {}) {
  const sockets: FakeSocket[] = [];
  const listeners = new Set<(e: LifecycleEvent) => void>();
  let failNext: Error | null = null;
  const adapter: SocketAdapter = {
    name: 'fake',
    connect(url, handlers) {
      if (failNext) {
        const e = failNext;
        failNext = null;
        throw e;
      }
      const s = new FakeSocket(url, handlers);
      sockets.push(s);
      return s;
    },
  };
  if (options.lifecycle !== false) {
    adapter.watchLifecycle = (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    };
  }
  return {
    adapter,
    sockets,
    get last(): FakeSocket {
      return sockets[sockets.length - 1];
    },
    get lifecycleListeners(): number {
      return listeners.size;
    },
    fire(event: LifecycleEvent): void {
      for (const l of Array.from(listeners)) l(event);
    },
    failNextConnect(e: Error): void {
      failNext = e;
    },
  };
}
