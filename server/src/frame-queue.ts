import type { Protocal } from '../../src/protocol';
import { isPromise, type MaybePromise } from './maybe-promise';
import type { Session } from './session';

/** One unit of a session's ordered work: a decoded frame, or a task queued behind its frames (the UDP gateway's replay). */
export type Work = Protocal | (() => MaybePromise<void>);

/** Runs each unit of work, and hears what one throws or rejects with. */
export interface WorkRunner {
  run(s: Session, work: Work): MaybePromise<void>;
  failed(s: Session, work: Work, err: unknown): void;
  /**
   * A key (the fp) when `work` may start while earlier units of the session that also have one still wait
   * for their store write, because its effects come out in the same order anyway (see {@link enqueue});
   * null when it must wait for everything before it.
   */
  overlapKey?(s: Session, work: Work): string | null;
}

/** A unit waiting behind the one being handled, with the characters it counts against `maxQueuedBytes`. */
export interface Queued {
  work: Work;
  chars: number;
}

/** Units of one session that may wait for their store writes at once (see {@link enqueue}). */
export const MAX_OVERLAPPING = 64;

/**
 * Runs a session's work in arrival order, so an async hook or store write never lets a later frame
 * overtake an earlier one. The fast path: with nothing queued the unit runs at once, inside the caller,
 * and a handler that finishes synchronously (keep-alive, echo, a duplicate) costs no promise and no
 * microtask. A handler that returns a promise makes the next units wait in `s.backlog`; its settling
 * runs them.
 *
 * Overlap: a unit with an overlap key (a QoS C2C message, when nothing but the store's write is awaited)
 * starts while up to {@link MAX_OVERLAPPING} earlier units with keys still wait, unless one of them has
 * the same key (a retransmission waits for its original). Their store writes then join one commit, and
 * since the store settles writes in the order they were made, their relays and ACKs still leave in
 * arrival order (a held put is relayed before its write is awaited, in order too; its ACK comes as soon
 * as its receiver's ACK settles it, which may be before earlier messages' ACKs). Only a refusal found
 * before the write (error 319, 321, ...) can come before the ACKs of earlier messages still being
 * written; each names its fp. Any other unit waits until every earlier one is done. `s.queued` and
 * `s.queuedChars` count the units being handled and those waiting; a closed session's units are skipped.
 */
export function enqueue(s: Session, work: Work, chars: number, runner: WorkRunner): void {
  s.queued++;
  s.queuedChars += chars;
  // Every other counted unit is active (none runs synchronously now, none waits) and this one may join them.
  const joins = s.queued - 1 === s.active && (s.active === 0 || mayOverlap(s, work, runner));
  if (joins) runOne(s, work, chars, runner);
  else (s.backlog ??= []).push({ work, chars });
}

/** Whether `work` may start beside the active units: all of them overlap, below the cap, no same key. */
function mayOverlap(s: Session, work: Work, runner: WorkRunner): boolean {
  if (s.active >= MAX_OVERLAPPING || (s.activeKeys?.length ?? 0) !== s.active) return false;
  const key = runner.overlapKey?.(s, work) ?? null;
  return key !== null && !s.activeKeys?.includes(key);
}

/** Runs one unit; a promise makes it active until it settles. */
function runOne(s: Session, work: Work, chars: number, runner: WorkRunner): void {
  const key = runner.overlapKey?.(s, work) ?? null;
  let pending: MaybePromise<void> = undefined;
  try {
    if (!s.closed) pending = runner.run(s, work);
  } catch (err) {
    runner.failed(s, work, err);
  }
  if (!isPromise(pending)) {
    uncount(s, chars);
    return;
  }
  s.active++;
  if (key !== null) (s.activeKeys ??= []).push(key);
  pending.then(
    () => settled(s, key, chars, runner),
    (err: unknown) => {
      runner.failed(s, work, err);
      settled(s, key, chars, runner);
    },
  );
}

function settled(s: Session, key: string | null, chars: number, runner: WorkRunner): void {
  s.active--;
  if (key !== null && s.activeKeys) dropKey(s.activeKeys, key);
  // Not kept on an idle connection (bytes per idle connection count).
  if (s.active === 0) s.activeKeys = null;
  uncount(s, chars);
  advance(s, runner);
}

/**
 * Takes `key` out of the active keys (at most {@link MAX_OVERLAPPING}, so a scan), moving the last one
 * into its place. An array rather than a Set: a long-lived Set gaining and losing a key per message
 * promotes what its rehashed tables held (see flat-map.ts).
 */
function dropKey(keys: string[], key: string): void {
  const i = keys.indexOf(key);
  if (i < 0) return;
  keys[i] = keys[keys.length - 1];
  keys.pop();
}

/** Starts the waiting units in order, as long as each may: nothing active, or it may overlap. */
function advance(s: Session, runner: WorkRunner): void {
  for (let next = s.backlog?.[0]; next; next = s.backlog?.[0]) {
    if (s.active > 0 && !mayOverlap(s, next.work, runner)) return;
    s.backlog?.shift();
    runOne(s, next.work, next.chars, runner);
  }
}

/** Uncounts a finished unit; the session is drained once nothing is counted. */
function uncount(s: Session, chars: number): void {
  s.queued--;
  s.queuedChars -= chars;
  if (s.queued > 0) return;
  s.backlog = null;
  s.drained();
}
