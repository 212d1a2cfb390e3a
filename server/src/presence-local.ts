import type { Presence, PresenceClaim, PresenceEntry } from './presence';

/**
 * {@link Presence} of a single process: a map, every answer synchronous. It keeps the entries it is given
 * (in the server, the sessions themselves: no second object per online user).
 */
export class LocalPresence implements Presence {
  private readonly byUser = new Map<string, PresenceEntry>();

  /** Arbitrates and records a login (see {@link Presence.claim}). */
  claim(userId: string, entry: PresenceEntry, claimedFirstLoginTime: number): PresenceClaim {
    const old = this.byUser.get(userId);
    const verdict = arbitrate(old, entry, claimedFirstLoginTime);
    if (verdict.kind !== 'reject') this.byUser.set(userId, entry);
    return verdict;
  }

  /** Removes the user only if (node, session) holds it. */
  release(userId: string, node: string, session: number): boolean {
    const e = this.byUser.get(userId);
    if (!e || e.node !== node || e.session !== session) return false;
    this.byUser.delete(userId);
    return true;
  }

  /** Where the user is online, or null. */
  locate(userId: string): PresenceEntry | null {
    return this.byUser.get(userId) ?? null;
  }

  /** The online user ids, at most `limit`. */
  list(limit = Number.POSITIVE_INFINITY): string[] {
    const out: string[] = [];
    for (const u of this.byUser.keys()) {
      if (out.length >= limit) break;
      out.push(u);
    }
    return out;
  }

  /** Number of online users. */
  count(): number {
    return this.byUser.size;
  }

  /** Nothing to release. */
  close(): void {
    this.byUser.clear();
  }
}

/**
 * The v6.5 rules, shared by every implementation that can run JavaScript at the decision point (a Redis
 * implementation runs the same rules in its Lua script): none held or the same session takes; a first
 * login (`<= 0`) or newer one replaces with a kick; an equal one replaces silently; an older one is refused.
 */
export function arbitrate(old: PresenceEntry | undefined, entry: PresenceEntry, claimedFirstLoginTime: number): PresenceClaim {
  if (!old || (old.node === entry.node && old.session === entry.session)) return { kind: 'take' };
  if (claimedFirstLoginTime <= 0 || claimedFirstLoginTime > old.firstLoginTime) return { kind: 'replace', old, kick: true };
  if (claimedFirstLoginTime === old.firstLoginTime) return { kind: 'replace', old, kick: false };
  return { kind: 'reject' };
}
