/** What an {@link IdleList} holds: the time of its last activity and its two links in the list. */
export interface IdleNode {
  lastActivityMs: number;
  idlePrev: IdleNode | null;
  idleNext: IdleNode | null;
}

/**
 * Every connection with the same idle expiry, least recently active first, and one timer for all of them.
 * A frame moves its connection to the tail (a few pointer writes, no timer churn); the timer is armed
 * for the head's deadline, so a connection is closed exactly `expiryMs` after its last frame, as a timer
 * per connection would, at the cost of two links instead of a timer object and a closure each.
 *
 *   head (oldest activity) <-> ... <-> tail (newest)     timer at head.lastActivityMs + expiryMs
 */
export class IdleList<T extends IdleNode> {
  private head: T | null = null;
  private tail: T | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** When the armed timer fires. */
  private timerAtMs = Number.POSITIVE_INFINITY;

  constructor(
    readonly expiryMs: number,
    /** Called for a node idle for at least `expiryMs`, already unlinked; it closes the connection. */
    private readonly expired: (node: T, idleMs: number) => void,
  ) {}

  /** Adds a node that was just active (at its `lastActivityMs`). */
  add(node: T): void {
    this.append(node);
    this.arm();
  }

  /** Records activity now: the node becomes the most recently active. */
  touch(node: T, nowMs: number): void {
    node.lastActivityMs = nowMs;
    if (this.tail === node) return;
    this.unlink(node);
    this.append(node);
  }

  /** Takes a node out (its connection closed); idempotent. */
  remove(node: T): void {
    this.unlink(node);
    if (!this.head && this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
      this.timerAtMs = Number.POSITIVE_INFINITY;
    }
  }

  private append(node: T): void {
    node.idlePrev = this.tail;
    node.idleNext = null;
    if (this.tail) this.tail.idleNext = node;
    else this.head = node;
    this.tail = node;
  }

  private unlink(node: T): void {
    if (node.idlePrev) node.idlePrev.idleNext = node.idleNext;
    else if (this.head === node) this.head = node.idleNext as T | null;
    else return;
    if (node.idleNext) node.idleNext.idlePrev = node.idlePrev;
    else this.tail = node.idlePrev as T | null;
    node.idlePrev = node.idleNext = null;
  }

  /** Arms the timer for the head's deadline unless it is armed for that time or earlier already. */
  private arm(): void {
    if (!this.head) return;
    const atMs = this.head.lastActivityMs + this.expiryMs;
    if (this.timer && this.timerAtMs <= atMs) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAtMs = atMs;
    this.timer = setTimeout(this.fire, Math.max(0, atMs - Date.now()));
  }

  private readonly fire = (): void => {
    this.timer = null;
    this.timerAtMs = Number.POSITIVE_INFINITY;
    const now = Date.now();
    for (let node = this.head; node && now - node.lastActivityMs >= this.expiryMs; node = this.head) {
      this.unlink(node);
      this.expired(node, now - node.lastActivityMs);
    }
    this.arm();
  };
}
