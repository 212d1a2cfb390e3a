import type { Session } from './session';

/** What {@link OnlineMap.decide} concluded for a login (MobileIMSDK v6.5 `OnlineProcessor.putUser`). */
export type LoginArbitration =
  /** No other session holds the user, or it is this very session. */
  | { kind: 'take' }
  /** Another session holds the user and is superseded; `kick` says whether it gets kickout code 1. */
  | { kind: 'replace'; old: Session; kick: boolean }
  /** The new login is older than the live one (a stale device): the new session is kicked. */
  | { kind: 'reject' };

/** The one-session-per-user online map. */
export class OnlineMap {
  private readonly byUser = new Map<string, Session>();

  /** The session a user is online with, if any. */
  get(userId: string): Session | undefined {
    return this.byUser.get(userId);
  }

  /** Every online user id. */
  users(): string[] {
    return [...this.byUser.keys()];
  }

  /** Number of online users. */
  get size(): number {
    return this.byUser.size;
  }

  /**
   * Arbitrates a login by the client's raw `firstLoginTime`: a first login (`<= 0`) or a
   * newer one kicks the old session; an equal one is the same device reconnecting, so the old socket is
   * replaced without a kickout; an older one is a stale device and is itself refused.
   */
  decide(userId: string, session: Session, clientFirstLoginTime: number): LoginArbitration {
    const old = this.byUser.get(userId);
    if (!old || old === session) return { kind: 'take' };
    if (clientFirstLoginTime <= 0 || clientFirstLoginTime > old.firstLoginTime) return { kind: 'replace', old, kick: true };
    if (clientFirstLoginTime === old.firstLoginTime) return { kind: 'replace', old, kick: false };
    return { kind: 'reject' };
  }

  /** Maps the user to the session. */
  put(userId: string, session: Session): void {
    this.byUser.set(userId, session);
  }

  /** Removes the user only if the session is the one mapped; true when it was. */
  removeIfCurrent(userId: string, session: Session): boolean {
    if (this.byUser.get(userId) !== session) return false;
    this.byUser.delete(userId);
    return true;
  }
}
