/** A value a local implementation returns at once and a networked one (Redis) through a promise. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * Whether a {@link MaybePromise} is a promise. Handlers `await` only then, so a local (synchronous)
 * implementation costs no extra microtask and keeps today's ordering between connections.
 */
export function isPromise<T>(v: MaybePromise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}
