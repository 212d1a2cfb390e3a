/**
 * mobileimsdk-ts/tab-shared: one connection for all the tabs of one origin and user. Opt-in, in its own
 * entry, so the core bundle stays as it is.
 */
import { IMClient, type IMClientOptions } from './index';
import { TabSharedClient } from './tab-shared-client';
import type { BroadcastChannelConstructor, LockManagerLike } from './tab-shared-wire';

export { TabSharedClient } from './tab-shared-client';
export type { BroadcastChannelConstructor, BroadcastChannelLike, LockManagerLike } from './tab-shared-wire';

/** Options of {@link createTabSharedClient}: those of `IMClient`, plus what the tabs share. */
export interface TabSharedOptions extends IMClientOptions {
  /** The Web Locks API (default: `navigator.locks`, looked up when the client is created). */
  locks?: LockManagerLike | null;
  /** The `BroadcastChannel` class (default: the global one, looked up when the client is created). */
  BroadcastChannel?: BroadcastChannelConstructor | null;
  /** Prefix of the lock and channel names (default `mobileimsdk`); the server URL and user id follow. */
  sharedName?: string;
  /** How long a leader whose session ended waits for the other tabs to acknowledge before it lets the lock go (default 1000 ms). */
  endHoldMs?: number;
}

/** What {@link createTabSharedClient} returns: a {@link TabSharedClient}, or a plain `IMClient` as the fallback. */
export type SharedClient = TabSharedClient | IMClient;

/**
 * Creates a client whose tabs share one connection: the tabs of one origin logged in as one user elect a
 * leader with a Web Lock; only the leader holds the socket, the others talk to it over a BroadcastChannel.
 * Every tab gets every event and `send()` works the same from any tab. When the leader closes or crashes,
 * the next tab takes over, logs in with the same first-login time (the server replaces the session
 * without a kickout) and sends again what was pending, with the same fingerprints. Without Web Locks or
 * BroadcastChannel (mini-programs, old browsers, Node) it returns a plain `IMClient`: one connection per
 * tab, and says so through `options.logger`.
 *
 * @example
 * import { createBrowserAdapter } from 'mobileimsdk-ts/adapters/browser';
 * import { createTabSharedClient } from 'mobileimsdk-ts/tab-shared';
 * const client = createTabSharedClient({ url: 'wss://im.example.com/websocket', adapter: createBrowserAdapter() });
 * client.on('message', (m) => console.log(m.from, m.content));
 * await client.login({ userId: 'u1', token: 't' });
 * await client.send('u2', 'hello');
 */
export function createTabSharedClient(options: TabSharedOptions): SharedClient {
  if (!options || typeof options !== 'object') throw new TypeError('createTabSharedClient(options): options must be an object with url and adapter');
  const { locks: givenLocks, BroadcastChannel: givenChannel, sharedName, endHoldMs, ...base } = options;
  if (sharedName !== undefined && (typeof sharedName !== 'string' || sharedName === '')) throw new TypeError('options.sharedName must be a non-empty string');
  if (endHoldMs !== undefined && !(typeof endHoldMs === 'number' && endHoldMs >= 0)) throw new RangeError(`options.endHoldMs must be a non-negative number, got ${String(endHoldMs)}`);
  // Validates the options the leader's client will use, whichever tab leads.
  const probe = new IMClient(base);
  const host = globalThis as unknown as { navigator?: { locks?: LockManagerLike }; BroadcastChannel?: BroadcastChannelConstructor };
  const locks = givenLocks === undefined ? host.navigator && host.navigator.locks : givenLocks;
  const Channel = givenChannel === undefined ? host.BroadcastChannel : givenChannel;
  if (!locks || typeof locks.request !== 'function' || typeof Channel !== 'function') {
    const missing = !locks || typeof locks.request !== 'function' ? 'Web Locks' : 'BroadcastChannel';
    if (base.logger) base.logger.warn(`tab-shared: no ${missing} here; falling back to one connection per tab`);
    return probe;
  }
  probe.destroy();
  return new TabSharedClient(base, { locks, BroadcastChannel: Channel, name: sharedName || 'mobileimsdk', endHoldMs: endHoldMs === undefined ? 1000 : endHoldMs });
}
