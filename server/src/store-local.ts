import { tupleKey } from './bounds';
import { DedupWindow } from './dedup';
import { isPromise } from './maybe-promise';
import type { OfflineStore, StoredMessage } from './offline-store';
import type { DedupWindowName, MessageStore } from './store';

/** Bounds of one de-duplication window. */
export interface DedupBounds {
  ttlMs: number;
  max: number;
  maxBytes: number;
}

/**
 * {@link MessageStore} of a single process: messages in an {@link OfflineStore} (SQLite, or the one the
 * application passed), de-duplication in two bounded in-memory windows.
 */
export class LocalMessageStore implements MessageStore {
  private readonly windows: Record<DedupWindowName, DedupWindow>;
  /** The windows answer at once: as the offline store settles its puts (see {@link MessageStore.settlesInOrder}). */
  readonly settlesInOrder: boolean;
  /** Only when the offline store has its own (see {@link MessageStore.putHeld}). */
  readonly putHeld?: (to: string, from: string, fp: string, frame: string, remember?: DedupWindowName) => boolean | Promise<boolean>;

  constructor(
    /** Where the messages are; closed by whoever opened it. */
    readonly messages: OfflineStore,
    dedup: { c2s: DedupBounds; c2c: DedupBounds },
  ) {
    this.settlesInOrder = messages.settlesInOrder === true;
    const held = messages.putHeld;
    if (held) this.putHeld = (to, from, fp, frame, remember) => this.remembered(held.call(messages, to, from, fp, frame), from, fp, remember);
    this.windows = {
      c2s: new DedupWindow(dedup.c2s.ttlMs, dedup.c2s.max, dedup.c2s.maxBytes),
      c2c: new DedupWindow(dedup.c2c.ttlMs, dedup.c2c.max, dedup.c2c.maxBytes),
    };
  }

  put(to: string, from: string, fp: string, frame: string, remember?: DedupWindowName): boolean | Promise<boolean> {
    return this.remembered(this.messages.put(to, from, fp, frame), from, fp, remember);
  }

  /** Records `from`'s `fp` in the `remember` window once `stored` succeeded. */
  private remembered(stored: boolean | Promise<boolean>, from: string, fp: string, remember?: DedupWindowName): boolean | Promise<boolean> {
    if (!remember) return stored;
    if (isPromise(stored)) return stored.then((r) => (this.remember(remember, from, fp), r));
    this.remember(remember, from, fp);
    return stored;
  }

  list(to: string, afterSeq: number, limit: number): StoredMessage[] | Promise<StoredMessage[]> {
    return this.messages.list(to, afterSeq, limit);
  }

  remove(to: string, from: string, fp: string): boolean | Promise<boolean> {
    return this.messages.remove(to, from, fp);
  }

  count(to: string): number | Promise<number> {
    return this.messages.count(to);
  }

  total(): number | Promise<number> {
    return this.messages.total();
  }

  seen(window: DedupWindowName, sender: string, fp: string): boolean {
    return this.windows[window].has(tupleKey(sender, fp));
  }

  remember(window: DedupWindowName, sender: string, fp: string): void {
    this.windows[window].add(tupleKey(sender, fp));
  }

  checkAndRemember(window: DedupWindowName, sender: string, fp: string): boolean {
    return this.windows[window].checkAndAdd(tupleKey(sender, fp));
  }

  /** The in-memory windows only: the message store belongs to whoever opened it. */
  close(): void {}
}
