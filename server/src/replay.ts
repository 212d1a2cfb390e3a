import { decodeFrame, type Protocal } from '../../src/protocol';
import { tupleKey } from './bounds';
import type { ServerContext } from './context';
import type { Session } from './session';

/**
 * Starts handing a user who just logged in everything stored for them, oldest first, with the original
 * fingerprints. At most `replayWindow` stored messages are in flight at once; each ACK (or loss) lets the
 * next ones go, so a long backlog never floods the connection. Messages written live since the login
 * (also stored until ACKed) are skipped rather than sent twice. With a store that tells its last seq (a
 * cluster's), the replay ends at the messages stored when it started (or was last resumed): later ones
 * are routed to the session live (or the put marks it for a recheck, which resumes the replay). Without
 * that bound a replay under steady traffic would never end, listing the store at every ACK, and hand over
 * messages whose routed copy is on its way. It starts after `fromSeq`: by default where the session's
 * last replay ended.
 */
export async function replayStored(ctx: ServerContext, s: Session, sinceMs = Date.now(), fromSeq = s.replayedTo): Promise<void> {
  if (ctx.opts.hooks.onOffline) return;
  s.replay = { cursor: fromSeq, startedMs: sinceMs, inFlight: new Set(), pumping: false, again: false, until: Infinity, snap: true, rewind: false };
  await pumpReplay(ctx, s);
}

/** Sends the next stored messages while the replay window has room. */
async function pumpReplay(ctx: ServerContext, s: Session): Promise<void> {
  const r = s.replay;
  const uid = s.userId;
  if (!r || !uid) return;
  if (r.pumping) {
    r.again = true;
    return;
  }
  r.pumping = true;
  try {
    await pump(ctx, s, r, uid);
  } catch (err) {
    // Left where it is: the next ACK, a recheck (cluster) or the next login carries on from the cursor.
    ctx.opts.logger.warn(`replaying the stored messages of "${uid}" paused: the store cannot be read now`, { error: (err as Error).message });
  } finally {
    r.pumping = false;
  }
}

/**
 * Carries on (or starts) handing a logged-in session its stored messages: for a cluster node told that
 * the user may have messages it did not hear of, and after a pause. `fromStart` (the store's connection
 * was lost: Redis may have restarted having lost its last writes, or been replaced by an empty one, and
 * its seq counter gone back below where the session's replays got) lists the store from the start again.
 */
export async function resumeReplay(ctx: ServerContext, s: Session, fromStart = false): Promise<void> {
  if (s.closed || !s.userId || ctx.sessions.current(s.userId) !== s) return;
  if (fromStart) s.replayedTo = 0;
  if (s.replay) {
    // Messages stored since its bound was read are what a recheck is about.
    s.replay.snap = true;
    if (fromStart) s.replay.rewind = true;
    return pumpReplay(ctx, s);
  }
  // Messages in the QoS table are skipped: its retransmission goes to this session already. It goes on
  // from where this session's last replay ended: what lies before was handed over, or skipped as in the
  // QoS table (whose copy, if it is lost, waits for the next login, as it would in one process). Listed
  // from the start again, messages ACKed while the listing was on its way would be handed over twice.
  return replayStored(ctx, s, 0);
}

/** One pass of {@link pumpReplay}: lists and sends while the window has room and more is asked for. */
async function pump(ctx: ServerContext, s: Session, r: NonNullable<Session['replay']>, uid: string): Promise<void> {
  do {
    r.again = false;
    if (r.rewind) {
      // Applied here, at the top of a pass: the rows of a listing answered after it was asked for (read
      // before it) would have moved the cursor on again.
      r.rewind = false;
      r.cursor = 0;
    }
    if (r.snap) {
      // Cleared only once read: a store that fails here is asked again at the next pump.
      r.until = ctx.store.lastSeq ? await ctx.store.lastSeq() : Infinity;
      r.snap = false;
    }
    const room = ctx.opts.replayWindow - r.inFlight.size;
    if (room <= 0) break;
    const rows = r.cursor >= r.until ? [] : (await ctx.store.list(uid, r.cursor, room)).filter((row) => row.seq <= r.until);
    if (rows.length === 0 && r.inFlight.size === 0) {
      // A recheck (or an ACK) that came while this listing was on its way asks for another pass: the
      // message it is about may have been stored after the listing ran, or after its bound was read.
      if (r.again) continue;
      s.replayedTo = r.cursor;
      s.replay = null;
      return;
    }
    for (const row of rows) {
      if (s.closed || ctx.sessions.current(uid) !== s) return;
      r.cursor = row.seq;
      if (ctx.qos.sentSince(uid, row.from, row.fp, r.startedMs)) continue;
      let frame: Protocal;
      try {
        frame = decodeFrame(row.frame);
      } catch {
        ctx.opts.logger.error(`stored message ${row.fp} for "${uid}" is unreadable; removing it`);
        await ctx.store.remove(uid, row.from, row.fp);
        continue;
      }
      if (!ctx.io.fits(s, frame)) {
        // Left stored (another transport may carry it) rather than let it stall the rest of the backlog.
        ctx.opts.logger.warn(`stored message ${row.fp} for "${uid}" is over the ${s.transport} frame limit; skipped`);
        continue;
      }
      if (!ctx.io.send(s, frame)) return;
      r.inFlight.add(tupleKey(row.from, row.fp));
      ctx.qos.enrol(frame, true);
      ctx.metrics.offlineDelivered++;
    }
  } while (r.again);
}

/** A replayed message (`from`'s `fp`) was ACKed or given up on: it leaves the window and the next may go. */
export function replaySettled(ctx: ServerContext, userId: string, from: string, fp: string): Promise<void> | undefined {
  const s = ctx.sessions.current(userId);
  return s?.replay?.inFlight.delete(tupleKey(from, fp)) ? pumpReplay(ctx, s) : undefined;
}
