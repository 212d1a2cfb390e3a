import mitt, { type Emitter as Mitt } from 'mitt';

type Listener<T> = ((event: T) => void) & { _once?: (event: T) => void };

/**
 * A typed event emitter on mitt that isolates listeners: one that throws is reported to `_listenerFailed`
 * and the others still run, so application code can never break the client from inside an event. mitt's
 * traps are closed: `off` never removes every listener of a type, the wildcard is never used, and `once`
 * exists. Only `on`, `off` and `once` are public; a subclass emits.
 */
export abstract class SafeEmitter<E extends Record<string, unknown>> {
  private readonly _bus: Mitt<E> = mitt<E>();

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof E>(type: K, listener: (event: E[K]) => void): () => void {
    this._bus.on(type, listener);
    return () => this.off(type, listener);
  }

  /** Removes one listener, also one added with `once` (unlike mitt's `off(type)`, never all of them). */
  off<K extends keyof E>(type: K, listener: (event: E[K]) => void): void {
    const list = (this._bus.all.get(type) || []) as Array<Listener<E[K]>>;
    for (let i = 0; i < list.length; i++) {
      if (list[i] === listener || list[i]._once === listener) return void list.splice(i, 1);
    }
  }

  /** Adds a listener that runs for the next event only. */
  once<K extends keyof E>(type: K, listener: (event: E[K]) => void): () => void {
    const wrapper: Listener<E[K]> = (event: E[K]): void => {
      this.off(type, wrapper);
      listener(event);
    };
    wrapper._once = listener;
    return this.on(type, wrapper);
  }

  /** Calls every listener of `type` with `event`, each in its own try/catch. */
  protected _emit<K extends keyof E>(type: K, event: E[K]): void {
    for (const listener of (this._bus.all.get(type) || []).slice()) {
      try {
        (listener as (event: E[K]) => void)(event);
      } catch (error) {
        this._listenerFailed(type, error);
      }
    }
  }

  /** Removes every listener of every type. */
  protected _clear(): void {
    this._bus.all.clear();
  }

  /** A listener of `type` threw `error` (the others still ran). */
  protected abstract _listenerFailed(type: keyof E, error: unknown): void;
}
