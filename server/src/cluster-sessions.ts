// What a cluster node does with its own sessions beyond the seams: it checks them against the shared
// presence and carries on their replays, so that nothing Redis or the network dropped (a kick, a
// notification, a claim or a release that timed out) leaves a live session unreachable for long.

import { KickoutCode } from '../../src/protocol';
import type { ServerCore } from './core';
import type { Logger } from './logger';
import type { Presence } from './presence';
import { resumeReplay } from './replay';
import type { Session } from './session';

/** How often a slice of the local sessions is checked against the presence. */
export const AUDIT_EVERY_MS = 5000;
/** Every local session is checked at least this often (the slices grow with the number of sessions). */
export const AUDIT_CYCLE_MS = 60_000;
/** Sessions checked per slice at least. */
export const AUDIT_MIN_SLICE = 500;
/** Locates sent at once (ioredis pipelines them on the one connection). */
const LOCATE_CHUNK = 200;

/**
 * Carries on the replay of each logged-in session given (a recheck, or Redis back after an outage:
 * `fromStart`, see {@link resumeReplay}).
 */
export function resumeReplays(core: ServerCore, sessions: Array<Session | undefined>, fromStart = false): void {
  for (const s of sessions) {
    if (s?.userId && !s.closed) void resumeReplay(core.ctx, s, fromStart);
  }
}

/**
 * Every `everyMs` while `healthy()` (Redis connected and answering), carries on each local replay that is
 * stalled: one with nothing in flight (so no ACK will pump it) and not pumping now, which is what a store
 * read that failed (Redis slow or briefly gone) leaves behind. Without this such a backlog would wait for
 * the user's next login. Returns the function that stops it.
 */
export function retryPausedReplays(healthy: () => boolean, everyMs: number, current: () => ServerCore | null): () => void {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const tick = (): void => {
    const core = current();
    if (core && healthy()) {
      resumeReplays(core, core.allSessions().filter((s) => s.replay && !s.replay.pumping && s.replay.inFlight.size === 0));
    }
    timer = setTimeout(tick, everyMs);
    timer.unref();
  };
  timer = setTimeout(tick, everyMs);
  timer.unref();
  return () => {
    if (timer) clearTimeout(timer);
    timer = null;
  };
}

/** Runs the checks of {@link checkSessions}, one at a time. */
export interface SessionChecker {
  /** Checks every local session (a lapse, a resubscribe); runs after the check under way if there is one. */
  all(): void;
  /** Starts the periodic slices ({@link AUDIT_EVERY_MS}) while `healthy()`; returns the function that stops them. */
  startAudit(healthy: () => boolean): () => void;
}

/**
 * The checks of local sessions against the presence, never two at once: a full one when asked, and a
 * slice every {@link AUDIT_EVERY_MS} so that each session is checked within {@link AUDIT_CYCLE_MS}. The
 * slices heal what no event reports: a session whose entry a timed-out claim replaced and its undoing
 * then removed, or a superseded session whose kick was published while this node was not listening.
 */
export function createSessionChecker(current: () => ServerCore | null, presence: Presence, logger: Logger): SessionChecker {
  let running = false;
  let fullWanted = false;
  let cursor = 0;
  const run = (full: boolean): void => {
    if (full) fullWanted = true;
    if (running) return;
    const core = current();
    if (!core) return;
    const all = core.allSessions().filter((s) => s.userId && !s.closed);
    let batch = all;
    if (!fullWanted) {
      const size = Math.max(AUDIT_MIN_SLICE, Math.ceil((all.length * AUDIT_EVERY_MS) / AUDIT_CYCLE_MS));
      if (cursor >= all.length) cursor = 0;
      batch = all.slice(cursor, cursor + size);
      cursor += batch.length;
    }
    fullWanted = false;
    running = true;
    checkSessions(core, presence, batch)
      .catch((err: unknown) => logger.error('cluster: checking the local sessions against the presence failed; it runs again at the next lapse, reconnect or audit', err))
      .finally(() => {
        running = false;
        if (fullWanted) run(true);
      });
  };
  return {
    all: () => run(true),
    startAudit(healthy) {
      let timer: ReturnType<typeof setTimeout> | null = null;
      const tick = (): void => {
        if (healthy()) run(false);
        timer = setTimeout(tick, AUDIT_EVERY_MS);
        timer.unref();
      };
      timer = setTimeout(tick, AUDIT_EVERY_MS);
      timer.unref();
      return () => {
        if (timer) clearTimeout(timer);
        timer = null;
      };
    },
  };
}

/**
 * Checks local logged-in sessions against the presence: kept when the presence names it, claimed again
 * when the user's entry is gone (this node's registration had lapsed, or a claim that failed was undone),
 * kicked with code 1 when another login holds the user now (closed silently when that login has its
 * firstLoginTime: the same device reconnected). Each session kept or claimed carries on its
 * replay: while its entry was invalid or gone, other nodes stored its messages without telling this node.
 */
export async function checkSessions(core: ServerCore, presence: Presence, sessions: Session[]): Promise<void> {
  const nodeId = core.opts.nodeId;
  let registered = 0;
  const live = (s: Session): boolean => !!s.userId && !s.closed && core.sessions.current(s.userId) === s;
  for (let i = 0; i < sessions.length; i += LOCATE_CHUNK) {
    const chunk = sessions.slice(i, i + LOCATE_CHUNK).filter(live);
    const found = await Promise.all(chunk.map((s) => presence.locate(s.userId as string)));
    for (let j = 0; j < chunk.length; j++) {
      const s = chunk[j];
      const at = found[j];
      if (!live(s)) continue;
      const uid = s.userId as string;
      if (at && at.node === nodeId && at.session === s.id) {
        resumeReplays(core, [s]);
        continue;
      }
      if (at) {
        // As the login that superseded it would have: the same device (its firstLoginTime) closes silently.
        core.opts.logger.info('session superseded while this node was not told; ended', { user: uid, session: s.id, holder: at.node });
        if (at.firstLoginTime === s.firstLoginTime) core.io.closeSession(s);
        else core.io.kickSession(s, uid, KickoutCode.DUPLICATE_LOGIN);
        continue;
      }
      const verdict = await presence.claim(uid, { node: nodeId, session: s.id, firstLoginTime: s.firstLoginTime }, s.firstLoginTime);
      if (verdict.kind === 'reject') {
        core.io.kickSession(s, uid, KickoutCode.DUPLICATE_LOGIN);
        continue;
      }
      if (!live(s)) {
        // Closed while it was claimed: its release may have run before the claim.
        await presence.release(uid, nodeId, s.id);
        continue;
      }
      registered++;
      if (verdict.kind === 'replace') await core.routing.endSession(verdict.old, uid, verdict.kick ? KickoutCode.DUPLICATE_LOGIN : null);
      resumeReplays(core, [s]);
    }
  }
  if (registered > 0) core.opts.logger.warn(`cluster: ${registered} local sessions had no presence entry and were registered again`);
}
