/**
 * Why a put was refused: the global quota is reached, the receiver's box is full (a store that checks
 * the per-receiver limit in the put itself, atomically), or the store cannot write durably now.
 */
export type OfflineStoreRefusal = 'quota' | 'full' | 'unavailable';

/** A put the store refused; `reason` picks the error code the sender gets (324 quota, 319 full, 325 unavailable). */
export class OfflineStoreError extends Error {
  constructor(readonly reason: OfflineStoreRefusal, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OfflineStoreError';
  }
}
