/**
 * Why a put was refused: the global quota is reached, the receiver's box is full (a store that checks
 * the per-receiver limit in the put itself, atomically), or the store cannot write durably now.
 */
export type OfflineStoreRefusal = 'quota' | 'full' | 'unavailable';

/** A put the store refused; `reason` picks the error code the sender gets (324 quota, 319 full, 325 unavailable). */
export class OfflineStoreError extends Error {
  /**
   * The put may have been written after all (a remote store whose connection failed after the write
   * went out, or that failed so after an earlier attempt of the same message): the sender then gets no
   * answer, neither ACK nor refusal, and its retransmission settles it once the store answers again.
   */
  readonly mayHaveWritten: boolean;

  constructor(readonly reason: OfflineStoreRefusal, message: string, options?: { cause?: unknown; mayHaveWritten?: boolean }) {
    super(message, options);
    this.name = 'OfflineStoreError';
    this.mayHaveWritten = options?.mayHaveWritten === true;
  }
}
