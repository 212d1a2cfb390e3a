import mitt, { type Emitter as Mitt } from 'mitt';

type Listener<T> = ((event: T) => void) & { _once?: (event: T) => void };

/**
 * A typed event emitter on mitt that isolates listeners: one that throws is reported to `onListenerError`
 * and the others still run, so application code can never break the client from inside an event.
 */
export class SafeEmitter<E extends Record<string, unknown>> {
  private readonly _bus: Mitt<E> = mitt<E>();

  constructor(private readonly _onListenerError: (type: keyof E, error: unknown) => void) {}

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof E>(type: K, listener: (event: E[K]) => void): () => void {
    this._bus.on(type, listener);
    return () => this._bus.off(type, listener);
  }

  /** Removes one listener, also one added with `once` (unlike mitt's `off(type)`, never all of them). */
  off<K extends keyof E>(type: K, listener: (event: E[K]) => void): void {
    const list = this._bus.all.get(type) as Array<Listener<E[K]>> | undefined;
    if (!list) return;
    for (let i = 0; i < list.length; i++) {
      if (list[i] === listener || list[i]._once === listener) return void list.splice(i, 1);
    }
  }

  /** Adds a listener that runs for the next event only. */
  once<K extends keyof E>(type: K, listener: (event: E[K]) => void): () => void {
    const wrapper: Listener<E[K]> = (event: E[K]): void => {
      this._bus.off(type, wrapper);
      listener(event);
    };
    wrapper._once = listener;
    return this.on(type, wrapper);
  }

  /** Calls every listener of `type` with `event`, each in its own try/catch. */
  emit<K extends keyof E>(type: K, event: E[K]): void {
    const list = this._bus.all.get(type);
    if (!list) return;
    for (const listener of list.slice()) {
      try {
        (listener as (event: E[K]) => void)(event);
      } catch (error) {
        this._onListenerError(type, error);
      }
    }
  }

  /** Removes every listener of every type. */
  clear(): void {
    this._bus.all.clear();
  }
}
