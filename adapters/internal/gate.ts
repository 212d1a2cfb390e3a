/**
 * The handler gate every adapter puts between its platform callbacks and the core's {@link SocketHandlers}.
 * It enforces the adapter contract in one place: nothing reaches the core while `connect` is still running
 * (events are held and delivered, in order, from a microtask), `onClose` is delivered at most once and
 * nothing after it, and no exception thrown by a handler escapes into a platform callback.
 */
import type { SocketHandlers } from '../../src/transport';

/** Close information as the core receives it. */
export interface CloseInfo {
  code: number;
  reason: string;
}

/** One connection's view of the core's handlers; see the file comment for the guarantees. */
export interface HandlerGate {
  /** True once a close has been queued: later events are dropped. */
  readonly ended: boolean;
  /** Reports that the socket is open. */
  open(): void;
  /** Reports one whole frame. */
  message(data: string | ArrayBuffer | Uint8Array): void;
  /** Reports a platform error (the connection may stay open). */
  error(error: unknown): void;
  /** Reports the close; returns false (and does nothing) if a close was already reported. */
  close(info: CloseInfo): boolean;
  /** Like {@link close}, but delivered from a microtask so a caller inside the core is never re-entered. */
  closeDeferred(info: CloseInfo): boolean;
  /** Ends the `connect` phase: held events are delivered from a microtask, later ones directly. */
  release(): void;
}

const deferred = Promise.resolve();

/** Wraps the core's handlers in a gate; call {@link HandlerGate.release} just before `connect` returns. */
export function createHandlerGate(handlers: SocketHandlers): HandlerGate {
  const queue: Array<() => void> = [];
  let holding = true;
  let ended = false;
  let draining = false;

  const drain = (): void => {
    if (draining) return;
    draining = true;
    try {
      while (!holding && queue.length > 0) (queue.shift() as () => void)();
    } finally {
      draining = false;
    }
  };
  const schedule = (): void => {
    deferred.then(() => {
      holding = false;
      drain();
    });
  };
  const enqueue = (call: () => void): void => {
    queue.push(call);
    if (!holding) drain();
  };
  /* A throwing onOpen/onMessage is reported through onError; a throwing onError/onClose is swallowed,
     because nothing may follow onClose and onError has nowhere further to report to. */
  const guarded = (call: () => void, report: boolean) => () => {
    try {
      call();
    } catch (thrown) {
      if (!report) return;
      try {
        handlers.onError(thrown);
      } catch {
        /* nothing left to report to */
      }
    }
  };
  const end = (info: CloseInfo, later: boolean): boolean => {
    if (ended) return false;
    ended = true;
    const info2 = { code: info.code, reason: info.reason };
    queue.push(guarded(() => handlers.onClose(info2), false));
    if (later) {
      holding = true;
      schedule();
    } else if (!holding) drain();
    return true;
  };

  return {
    get ended() {
      return ended;
    },
    open() {
      if (!ended) enqueue(guarded(() => handlers.onOpen(), true));
    },
    message(data) {
      if (!ended) enqueue(guarded(() => handlers.onMessage(data), true));
    },
    error(error) {
      if (!ended) enqueue(guarded(() => handlers.onError(error), false));
    },
    close(info) {
      return end(info, false);
    },
    closeDeferred(info) {
      return end(info, true);
    },
    release() {
      schedule();
    },
  };
}

/**
 * One frame of a transport with a size limit (the Node TCP and UDP adapters): a frame over `maxBytes` is
 * refused whole with a RangeError, and a write that throws or calls back with an error is reported
 * through `onError`; neither closes the connection.
 */
export function writeBounded(
  gate: HandlerGate,
  name: string,
  maxBytes: number,
  bytes: Uint8Array,
  write: (bytes: Uint8Array, callback: (error?: Error | null) => void) => void,
): void {
  if (bytes.length > maxBytes) {
    gate.error(new RangeError(`${name}: a ${bytes.length}-byte frame exceeds the ${maxBytes}-byte limit; not sent`));
    return;
  }
  try {
    write(bytes, (error) => {
      if (error) gate.error(error);
    });
  } catch (thrown) {
    gate.error(thrown);
  }
}
