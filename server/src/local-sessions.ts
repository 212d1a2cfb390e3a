import type { Session } from './session';

/**
 * The connections this process holds: every open one by id, and for each user logged in here the
 * session that is current. Always synchronous, whatever {@link Presence} implementation runs beside it:
 * it is what a frame is finally written to.
 */
export class LocalSessions {
  private readonly byId = new Map<number, Session>();
  private readonly byUser = new Map<string, Session>();

  /** Registers a new connection. */
  add(s: Session): void {
    this.byId.set(s.id, s);
  }

  /** Forgets a connection; false when it was already forgotten. */
  delete(s: Session): boolean {
    return this.byId.delete(s.id);
  }

  /** An open connection by id. */
  get(id: number): Session | undefined {
    return this.byId.get(id);
  }

  /** Every connection still open. */
  all(): Session[] {
    return [...this.byId.values()];
  }

  /** The session a user is logged in with here, if any. */
  current(userId: string): Session | undefined {
    return this.byUser.get(userId);
  }

  /** Makes the session the user's current one here. */
  bind(userId: string, s: Session): void {
    this.byUser.set(userId, s);
  }

  /** Removes the user only if the session is the current one; true when it was. */
  unbind(userId: string, s: Session): boolean {
    if (this.byUser.get(userId) !== s) return false;
    this.byUser.delete(userId);
    return true;
  }

  /** The users logged in here, in the order they first logged in. */
  userIds(): string[] {
    return [...this.byUser.keys()];
  }

  /** Number of users logged in here. */
  get userCount(): number {
    return this.byUser.size;
  }
}
