/**
 * The adapter conformance suite: one set of tests run against every adapter through a harness that
 * drives the other side (a fake platform object, or a real peer socket for TCP/UDP).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { LifecycleEvent, SocketAdapter, SocketConnection, SocketHandlers } from '../../src/transport';

/** The far side of one connection. */
export interface Peer {
  /** Every frame the peer received so far, as bytes. */
  received(): Uint8Array[];
  /** Sends one frame to the client. */
  send(data: string | Uint8Array): void | Promise<void>;
  /** Closes the connection from the far side (undefined where the transport has no close, as UDP). */
  close?(): void | Promise<void>;
  /** Makes the platform report an error followed by a close, as most platforms do. */
  fail?(): void | Promise<void>;
}

/** Drives one adapter under test. */
export interface Harness {
  adapter: SocketAdapter;
  url: string;
  /** Lets the latest connection open and returns its far side. */
  accept(): Promise<Peer>;
  /** Opens a connection that the platform refuses (undefined where refusal is not observable, as UDP). */
  connectRefused?(handlers: SocketHandlers): SocketConnection;
  /** Connects through a platform object that fails inside the connect call itself (throws or calls back at once). */
  connectFailingSynchronously(handlers: SocketHandlers): SocketConnection;
  /** Fires the platform's lifecycle sources (for adapters with watchLifecycle). */
  lifecycle?: {
    foreground(): void;
    background(): void;
    network(online: boolean): void;
    listenerCount(): number;
  };
  dispose(): Promise<void>;
}

type Event =
  | { type: 'open' }
  | { type: 'message'; data: string | ArrayBuffer | Uint8Array }
  | { type: 'close'; info: { code: number; reason: string } }
  | { type: 'error'; error: unknown };

/** Records every handler call and every call made after onClose (a contract violation). */
export function recorder(overrides: Partial<SocketHandlers> = {}) {
  const events: Event[] = [];
  const late: Event[] = [];
  const push = (e: Event) => {
    if (events.some((x) => x.type === 'close')) late.push(e);
    events.push(e);
  };
  const handlers: SocketHandlers = {
    onOpen: () => {
      push({ type: 'open' });
      overrides.onOpen?.();
    },
    onMessage: (data) => {
      push({ type: 'message', data });
      overrides.onMessage?.(data);
    },
    onClose: (info) => {
      push({ type: 'close', info });
      overrides.onClose?.(info);
    },
    onError: (error) => {
      push({ type: 'error', error });
      overrides.onError?.(error);
    },
  };
  return {
    events,
    late,
    handlers,
    types: () => events.map((e) => e.type),
    closes: () => events.filter((e): e is Extract<Event, { type: 'close' }> => e.type === 'close'),
    messages: () => events.filter((e): e is Extract<Event, { type: 'message' }> => e.type === 'message').map((e) => bytesOf(e.data)),
  };
}

/** Any frame as bytes (text as UTF-8) for comparisons. */
export function bytesOf(data: string | ArrayBuffer | ArrayBufferView): Uint8Array {
  if (typeof data === 'string') return new Uint8Array(Buffer.from(data, 'utf8'));
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  return new Uint8Array(data.slice(0));
}

/** Lets pending timers, microtasks and socket events run. */
export const tick = (ms = 20) => new Promise((resolve) => setTimeout(resolve, ms));

/** What a transport can show; a test the transport cannot exercise is reported as skipped, not passed. */
export interface Capabilities {
  /** The far side can close the connection (UDP has no close). */
  peerClose: boolean;
  /** A refused connection is observable (UDP has no handshake). */
  refusal: boolean;
  /** The adapter has watchLifecycle. */
  lifecycle: boolean;
  /** The adapter declares maxFrameBytes and refuses larger frames itself (TCP and UDP). */
  frameLimit?: boolean;
}

/** Registers the conformance tests for one adapter. */
export function runAdapterConformance(name: string, caps: Capabilities, makeHarness: () => Promise<Harness>): void {
  describe(`${name} adapter conformance`, () => {
    let h: Harness;
    let disposed: Harness | undefined;
    const open: SocketConnection[] = [];
    const connect = (handlers: SocketHandlers) => {
      const c = h.adapter.connect(h.url, handlers);
      open.push(c);
      return c;
    };
    const openConnection = async (overrides?: Partial<SocketHandlers>) => {
      const rec = recorder(overrides);
      const conn = connect(rec.handlers);
      const peer = await h.accept();
      await vi.waitFor(() => expect(rec.types()).toContain('open'));
      return { rec, conn, peer };
    };

    afterEach(async () => {
      for (const c of open.splice(0)) c.close();
      if (h && h !== disposed) {
        disposed = h;
        await h.dispose();
      }
    });

    it('calls no handler synchronously from connect, then reports open', async () => {
      h = await makeHarness();
      const rec = recorder();
      connect(rec.handlers);
      expect(rec.events).toEqual([]);
      await h.accept();
      await vi.waitFor(() => expect(rec.types()).toEqual(['open']));
    });

    it('reports a failure raised inside the platform connect call only after connect returned, as an error and one close', async () => {
      h = await makeHarness();
      const rec = recorder();
      open.push(h.connectFailingSynchronously(rec.handlers));
      expect(rec.events).toEqual([]);
      await vi.waitFor(() => expect(rec.closes()).toHaveLength(1));
      await tick();
      expect(rec.types()).toEqual(['error', 'close']);
    });

    it('sends text as exactly its UTF-8 bytes', async () => {
      h = await makeHarness();
      const { conn, peer } = await openConnection();
      conn.send('{"type":0,"dataContent":"héllo 你好 🙂"}');
      await vi.waitFor(() => expect(peer.received()).toHaveLength(1));
      expect(Buffer.from(peer.received()[0]).toString('utf8')).toBe('{"type":0,"dataContent":"héllo 你好 🙂"}');
    });

    it('sends an ArrayBuffer as exactly its bytes', async () => {
      h = await makeHarness();
      const { conn, peer } = await openConnection();
      conn.send(new Uint8Array([1, 2, 3, 250]).buffer);
      await vi.waitFor(() => expect(peer.received()).toHaveLength(1));
      expect([...peer.received()[0]]).toEqual([1, 2, 3, 250]);
    });

    it("sends only a view's own bytes, never its whole backing buffer", async () => {
      h = await makeHarness();
      const { conn, peer } = await openConnection();
      const backing = new Uint8Array([9, 9, 10, 11, 12, 9, 9, 9]);
      conn.send(backing.subarray(2, 5));
      conn.send(new DataView(backing.buffer, 3, 2));
      await vi.waitFor(() => expect(peer.received()).toHaveLength(2));
      expect(peer.received().map((b) => [...b])).toEqual([[10, 11, 12], [11, 12]]);
      expect([...backing]).toEqual([9, 9, 10, 11, 12, 9, 9, 9]);
    });

    it.skipIf(!caps.frameLimit)('sends a frame of maxFrameBytes and refuses a larger one whole, with an error and no close', async () => {
      h = await makeHarness();
      const max = h.adapter.maxFrameBytes!;
      expect(max).toBeGreaterThan(0);
      const { rec, conn, peer } = await openConnection();
      conn.send('a'.repeat(max + 1));
      conn.send('b'.repeat(max));
      await vi.waitFor(() => expect(peer.received()).toHaveLength(1));
      await tick();
      expect(peer.received().map((f) => [f.length, f[0], f[max - 1]])).toEqual([[max, 98, 98]]);
      const errors = rec.events.filter((e): e is Extract<Event, { type: 'error' }> => e.type === 'error');
      expect(errors.map((e) => e.error)).toEqual([expect.any(RangeError)]);
      expect(rec.closes()).toHaveLength(0);
    });

    it('delivers text and binary frames whole and in order', async () => {
      h = await makeHarness();
      const { rec, peer } = await openConnection();
      await peer.send('{"type":50}');
      await peer.send(new Uint8Array([0, 1, 2, 255]));
      await vi.waitFor(() => expect(rec.messages()).toHaveLength(2));
      expect(Buffer.from(rec.messages()[0]).toString()).toBe('{"type":50}');
      expect([...rec.messages()[1]]).toEqual([0, 1, 2, 255]);
    });

    it.skipIf(!caps.peerClose)('reports a close from the far side once, and nothing after it', async () => {
      h = await makeHarness();
      const { rec, conn, peer } = await openConnection();
      await peer.close!();
      await vi.waitFor(() => expect(rec.closes()).toHaveLength(1));
      conn.close();
      expect(() => conn.send('after close')).not.toThrow();
      await tick();
      expect(rec.closes()).toHaveLength(1);
      expect(rec.late).toEqual([]);
    });

    it('reports an error followed by a close as one close', async () => {
      h = await makeHarness();
      const { rec, conn, peer } = await openConnection();
      expect(peer.fail).toBeTypeOf('function');
      await peer.fail!();
      await vi.waitFor(() => expect(rec.closes()).toHaveLength(1));
      await tick();
      conn.close();
      await tick();
      expect(rec.types().filter((t) => t === 'close')).toHaveLength(1);
      expect(rec.types()).toContain('error');
      expect(rec.types().indexOf('error')).toBeLessThan(rec.types().indexOf('close'));
      expect(rec.late).toEqual([]);
    });

    it('reports a local close once, with its code, though the platform reports one too', async () => {
      h = await makeHarness();
      const { rec, conn } = await openConnection();
      conn.close(4001, 'bye');
      expect(rec.closes()).toHaveLength(0);
      conn.close(4002, 'again');
      await vi.waitFor(() => expect(rec.closes()).toHaveLength(1));
      await tick(50);
      expect(rec.closes().map((c) => c.info)).toEqual([{ code: 4001, reason: 'bye' }]);
      expect(rec.late).toEqual([]);
    });

    it('keeps a throwing handler from escaping into the platform and reports it as an error', async () => {
      h = await makeHarness();
      const boom = new Error('handler bug');
      let calls = 0;
      const { rec, peer } = await openConnection({
        onMessage: () => {
          calls++;
          if (calls === 1) throw boom;
        },
      });
      await peer.send('first');
      await peer.send('second');
      await vi.waitFor(() => expect(rec.messages()).toHaveLength(2));
      expect(rec.events.filter((e) => e.type === 'error').map((e) => (e as { error: unknown }).error)).toEqual([boom]);
      expect(rec.closes()).toHaveLength(0);
    });

    it.skipIf(!caps.refusal)('reports a refused connection as one close without open', async () => {
      h = await makeHarness();
      const rec = recorder();
      open.push(h.connectRefused!(rec.handlers));
      expect(rec.events).toEqual([]);
      await vi.waitFor(() => expect(rec.closes()).toHaveLength(1));
      await tick(50);
      expect(rec.types()).not.toContain('open');
      expect(rec.closes()).toHaveLength(1);
    });

    it.skipIf(caps.lifecycle)('has no watchLifecycle', async () => {
      h = await makeHarness();
      expect(h.adapter.watchLifecycle).toBeUndefined();
    });

    it.skipIf(!caps.lifecycle)('maps lifecycle events and removes every listener on stop', async () => {
      h = await makeHarness();
      const lc = h.lifecycle!;
      const seen: LifecycleEvent[] = [];
      const stop = h.adapter.watchLifecycle!((e) => seen.push(e));
      await tick();
      lc.background();
      lc.foreground();
      lc.network(false);
      lc.network(false);
      lc.network(true);
      expect(seen).toEqual(['background', 'foreground', 'offline', 'online']);
      expect(lc.listenerCount()).toBeGreaterThan(0);
      stop();
      expect(lc.listenerCount()).toBe(0);
      lc.foreground();
      lc.network(false);
      expect(seen).toHaveLength(4);
      expect(() => stop()).not.toThrow();
    });

    it.skipIf(!caps.lifecycle)('keeps a throwing lifecycle listener from escaping into the platform', async () => {
      h = await makeHarness();
      const stop = h.adapter.watchLifecycle!(() => {
        throw new Error('listener bug');
      });
      await tick();
      expect(() => h.lifecycle!.foreground()).not.toThrow();
      expect(() => h.lifecycle!.network(false)).not.toThrow();
      stop();
    });
  });
}
