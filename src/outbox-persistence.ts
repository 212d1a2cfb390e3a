import type { Logger } from './logger';
import type { OutboxStore, QosOutbox, StoredMessage } from './qos-outbox';

/**
 * Connects the outbox to an optional {@link OutboxStore}: loads a user's stored messages at login, then
 * saves the set of pending QoS messages once after each burst of changes, until the client stops.
 *
 * ```
 *  restore(user) ── load ──> messages queued again ──> saving ── change ──> save (coalesced per tick)
 *                                                        │
 *                                          stop(keep) ───┴──> keep: save what is pending; settle: save []
 * ```
 */
export class OutboxPersistence {
  // Unset until the first login (each only tested for truth): fewer assignments in the minified bundle.
  private _userId?: string | null;
  private _saving?: boolean;
  private _scheduled?: boolean;
  private _session = 0;

  constructor(private readonly _store: OutboxStore | null, private readonly _outbox: QosOutbox, private readonly _logger: Logger) {}

  /** At login: queues `userId`'s stored messages again, then starts saving changes. */
  _restore(userId: string): void {
    const store = this._store;
    if (!store) return;
    this._userId = userId;
    this._saving = false;
    const session = ++this._session;
    Promise.resolve()
      .then(() => store.load(userId))
      .then(
        (items) => {
          if (session !== this._session) return;
          for (const item of items || []) {
            if (!item || !item.frame || item.frame.from !== userId) continue;
            try {
              this._outbox._enqueue(item.frame, item.enqueuedAt).catch(() => undefined);
            } catch (error) {
              this._logger.warn('stored message refused', error);
            }
          }
        },
        (error: unknown) => this._logger.warn('outboxStore.load failed', error),
      )
      .then(() => {
        if (session !== this._session) return;
        this._saving = true;
        this._changed();
      });
  }

  /** The pending messages changed: save them once, after the current burst of changes. */
  _changed(): void {
    if (!this._saving || this._scheduled) return;
    this._scheduled = true;
    Promise.resolve().then(() => {
      this._scheduled = false;
      if (this._saving) this._save(this._outbox._snapshot());
    });
  }

  /**
   * The client stops: `keep` saves what is pending for the next login, otherwise the store is cleared.
   * Nothing is saved before the load finished (the stored messages were never read), nor after a stop.
   */
  _stop(keep: boolean): void {
    this._session++;
    if (this._saving) this._save(keep ? this._outbox._snapshot() : []);
    this._saving = false;
  }

  private _save(messages: StoredMessage[]): void {
    const store = this._store;
    const userId = this._userId;
    if (!store || !userId) return;
    Promise.resolve()
      .then(() => store.save(userId, messages))
      .catch((error: unknown) => this._logger.warn('outboxStore.save failed', error));
  }
}
