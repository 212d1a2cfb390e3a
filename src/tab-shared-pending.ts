import type { SendRequest } from './tab-shared-wire';

/** One request of this tab waiting for the leader's answer. */
export interface PendingRequest {
  kind: 'send' | 'echo';
  req?: SendRequest;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * The requests this tab made and the leader has not answered, by id, in the order they were made (the
 * order they are sent again in after a takeover). Each settles once: a second answer is ignored.
 */
export class PendingRequests {
  private readonly _items = new Map<number, PendingRequest>();
  private _seq = 0;

  /** How many wait. */
  get size(): number {
    return this._items.size;
  }

  /** Adds a request; returns its id and the promise its answer settles. */
  add(kind: 'send' | 'echo', req?: SendRequest): { id: number; promise: Promise<unknown> } {
    const id = ++this._seq;
    const promise = new Promise<unknown>((resolve, reject) => this._items.set(id, { kind, req, resolve, reject }));
    return { id, promise };
  }

  /** The request `id`, if it still waits. */
  get(id: number): PendingRequest | undefined {
    return this._items.get(id);
  }

  /** The ids still waiting, oldest first. */
  ids(): number[] {
    return Array.from(this._items.keys());
  }

  /** Settles request `id` (resolved with `value` when `ok`, else rejected with it); later answers do nothing. */
  settle(id: number, ok: boolean, value: unknown): void {
    const p = this._items.get(id);
    if (!p) return;
    this._items.delete(id);
    if (ok) p.resolve(value);
    else p.reject(value);
  }

  /** Rejects every request with `error`. */
  rejectAll(error: unknown): void {
    for (const id of this.ids()) this.settle(id, false, error);
  }

  /** Settles the sends carrying fingerprint `fp`: a `delivered` or `lost` event may come before the answer. */
  settleFp(fp: string, ok: boolean, value: (req: SendRequest) => unknown): void {
    for (const [id, p] of Array.from(this._items)) {
      if (p.kind === 'send' && p.req && p.req.fp === fp) this.settle(id, ok, value(p.req));
    }
  }
}
