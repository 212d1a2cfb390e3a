/** What an {@link IdleList} holds: the time of its last activity and its two links in the list. */
export interface IdleNode {
  /** When the node was last active, in ms since its list's origin (see {@link IdleList}). */
  activeAtMs: number;
  idlePrev: IdleNode | null;
  idleNext: IdleNode | null;
}

/**
 * Every connection with the same idle expiry, least recently active first, and one timer for all of them.
 * A frame moves its connection to the tail (a few pointer writes, no timer churn); the timer is armed
 * for the head's deadline, so a connection is closed exactly `expiryMs` after its last frame, as a timer
 * per connection would, at the cost of two links instead of a timer object and a closure each.
 *
 *   head (oldest activity) <-> ... <-> tail (newest)     timer at origin + head.activeAtMs + expiryMs
 *
 * Times count from the list's origin as small integers, which V8 keeps inside the node: a `Date.now()`
 * (or any difference V8 computed as a double) would be a separate 16-byte number per connection. After
 * 24 days (2^31 ms) they no longer fit and cost that again; the arithmetic is the same either way.
 */
export class IdleList<T extends IdleNode> {
  /** `Date.now()` when the list was made; the nodes' times count from it. */
  private readonly originMs = Date.now();
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

  /** Adds a node, active at `nowMs`. */
  add(node: T, nowMs: number): void {
    node.activeAtMs = this.sinceOrigin(nowMs);
    this.append(node);
    this.arm();
  }

  /** Records activity now: the node becomes the most recently active. */
  touch(node: T, nowMs: number): void {
    node.activeAtMs = this.sinceOrigin(nowMs);
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

  /** `nowMs` in ms since the origin, as a 32-bit integer whenever it fits (V8 then stores it unboxed). */
  private sinceOrigin(nowMs: number): number {
    const ms = nowMs - this.originMs;
    return (ms | 0) === ms ? ms | 0 : ms;
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
    const atMs = this.originMs + this.head.activeAtMs + this.expiryMs;
    if (this.timer && this.timerAtMs <= atMs) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAtMs = atMs;
    this.timer = setTimeout(this.fire, Math.max(0, atMs - Date.now()));
  }

  private readonly fire = (): void => {
    this.timer = null;
    this.timerAtMs = Number.POSITIVE_INFINITY;
    const now = Date.now() - this.originMs;
    for (let node = this.head; node && now - node.activeAtMs >= this.expiryMs; node = this.head) {
      this.unlink(node);
      this.expired(node, now - node.activeAtMs);
    }
    this.arm();
  };
}
