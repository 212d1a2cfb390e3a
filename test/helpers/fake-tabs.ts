import type { BroadcastChannelConstructor, BroadcastChannelLike, LockManagerLike } from '../../src/tab-shared';

interface LockRequest {
  tab: FakeTab;
  callback: (lock: unknown) => Promise<void>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** One browser tab's view of the fake Web Locks and BroadcastChannel. */
export interface FakeTab {
  readonly locks: LockManagerLike;
  readonly BroadcastChannel: BroadcastChannelConstructor;
  /** The tab closes or crashes: its channels close and its locks are released, as the browser does. */
  crash(): void;
  readonly crashed: boolean;
}

/**
 * An in-memory browser origin: exclusive Web Locks granted in request order (released when the callback's
 * promise settles, its request aborted through `signal`, or its tab crashes) and BroadcastChannels that
 * deliver a structured clone of each message to every other open channel of the same name, a microtask
 * later, in order.
 */
export function createFakeOrigin() {
  const held = new Map<string, LockRequest>();
  const queues = new Map<string, LockRequest[]>();
  const channels = new Set<{ name: string; tab: FakeTab; channel: BroadcastChannelLike; open: boolean }>();
  const posted: unknown[] = [];

  const pump = (name: string): void => {
    if (held.has(name)) return;
    const queue = queues.get(name) || [];
    const next = queue.shift();
    if (!next) return;
    held.set(name, next);
    const release = (): void => {
      if (held.get(name) !== next) return;
      held.delete(name);
      pump(name);
    };
    Promise.resolve()
      .then(() => next.callback({ name, mode: 'exclusive' }))
      .then(
        (value) => {
          release();
          next.resolve(value);
        },
        (error: unknown) => {
          release();
          next.reject(error);
        },
      );
  };

  const tab = (): FakeTab => {
    let crashed = false;
    const self: FakeTab = {
      get crashed() {
        return crashed;
      },
      locks: {
        request(name, options, callback) {
          return new Promise((resolve, reject) => {
            if (crashed) return reject(new Error('tab closed'));
            const req: LockRequest = { tab: self, callback, resolve, reject };
            const signal = options.signal as AbortSignal | undefined;
            if (signal) {
              signal.addEventListener('abort', () => {
                const queue = queues.get(name) || [];
                const i = queue.indexOf(req);
                if (i < 0) return;
                queue.splice(i, 1);
                reject(new Error('AbortError'));
              });
            }
            const queue = queues.get(name) || [];
            queue.push(req);
            queues.set(name, queue);
            Promise.resolve().then(() => pump(name));
          });
        },
      },
      BroadcastChannel: class implements BroadcastChannelLike {
        onmessage: ((event: { data: unknown }) => void) | null = null;
        private readonly entry: { name: string; tab: FakeTab; channel: BroadcastChannelLike; open: boolean };
        constructor(readonly name: string) {
          this.entry = { name, tab: self, channel: this, open: !crashed };
          channels.add(this.entry);
        }
        postMessage(message: unknown): void {
          if (!this.entry.open) throw new Error('InvalidStateError: the channel is closed');
          posted.push(message);
          const data = structuredClone(message);
          for (const other of Array.from(channels)) {
            if (other === this.entry || other.name !== this.name || !other.open) continue;
            Promise.resolve().then(() => {
              if (other.open && other.channel.onmessage) other.channel.onmessage({ data: structuredClone(data) });
            });
          }
        }
        close(): void {
          this.entry.open = false;
          channels.delete(this.entry);
        }
      },
      crash() {
        crashed = true;
        for (const c of Array.from(channels)) {
          if (c.tab !== self) continue;
          c.open = false;
          channels.delete(c);
        }
        for (const [name, queue] of queues) {
          queues.set(name, queue.filter((r) => r.tab !== self));
        }
        for (const [name, req] of Array.from(held)) {
          if (req.tab !== self) continue;
          held.delete(name);
          Promise.resolve().then(() => pump(name));
        }
      },
    };
    return self;
  };

  return {
    tab,
    /** Every message posted on any channel, in order (as sent, before cloning). */
    posted,
    /** The tab holding lock `name`, if any. */
    holder(name: string): FakeTab | undefined {
      const req = held.get(name);
      return req && req.tab;
    },
    /** Open channels (for checking that destroy() closed them). */
    get openChannels(): number {
      return channels.size;
    },
  };
}
