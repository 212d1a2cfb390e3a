/**
 * App and network events of the mini-program family (`wx`, `uni`, `my`, `tt` share the names
 * `onAppShow`/`onAppHide`/`onNetworkStatusChange` and their `off*` twins), mapped onto the core's
 * lifecycle events.
 */
import type { LifecycleEvent } from '../../src/transport';

/** The network status result every member of the family passes to `onNetworkStatusChange`. */
export interface NetworkStatus {
  isConnected: boolean;
}

/**
 * The app and network event API, typed structurally. `off*` are optional (old base libraries lack them)
 * and take any listener, since the official typings give them their own callback types.
 */
export interface AppEventApi {
  onAppShow(listener: (result: unknown) => void): void;
  offAppShow?(listener: (result: unknown) => void): void;
  onAppHide(listener: (result: unknown) => void): void;
  offAppHide?(listener: (result: unknown) => void): void;
  onNetworkStatusChange(listener: (result: NetworkStatus) => void): void;
  offNetworkStatusChange?(listener: (result: unknown) => void): void;
}

/** Calls the listener without letting it throw into a platform callback. */
export function safeEmit(listener: (event: LifecycleEvent) => void, event: LifecycleEvent): void {
  try {
    listener(event);
  } catch {
    /* the core's listener must not break the platform's event loop */
  }
}

/** Reports online/offline only when it changes: platforms repeat the status on every network type change. */
export function createNetworkTracker(listener: (event: LifecycleEvent) => void): (online: boolean) => void {
  let last: boolean | undefined;
  return (online) => {
    if (online === last) return;
    last = online;
    safeEmit(listener, online ? 'online' : 'offline');
  };
}

/**
 * Subscribes to app show/hide and network changes; the returned function removes every listener it
 * added. The `active` flag also silences listeners a platform without `off*` cannot remove.
 */
export function watchAppEvents(api: AppEventApi, listener: (event: LifecycleEvent) => void): () => void {
  let active = true;
  const network = createNetworkTracker(listener);
  /* A suspended mini-program's socket can die without SocketTask.onClose (WeChat community thread
     000e0a7c7c85003d13121165c6bc00); 'foreground' makes the core probe the link at once. */
  const onShow = (): void => {
    if (active) safeEmit(listener, 'foreground');
  };
  const onHide = (): void => {
    if (active) safeEmit(listener, 'background');
  };
  const onNetwork = (result: unknown): void => {
    if (active && result) network((result as NetworkStatus).isConnected !== false);
  };
  api.onAppShow(onShow);
  api.onAppHide(onHide);
  api.onNetworkStatusChange(onNetwork);
  return () => {
    if (!active) return;
    active = false;
    if (typeof api.offAppShow === 'function') api.offAppShow(onShow);
    if (typeof api.offAppHide === 'function') api.offAppHide(onHide);
    if (typeof api.offNetworkStatusChange === 'function') api.offNetworkStatusChange(onNetwork);
  };
}
