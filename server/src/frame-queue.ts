import type { Protocal } from '../../src/protocol';
import { isPromise, type MaybePromise } from './maybe-promise';
import type { Session } from './session';

/** One unit of a session's ordered work: a decoded frame, or a task queued behind its frames (the UDP gateway's replay). */
export type Work = Protocal | (() => MaybePromise<void>);

/** Runs each unit of work, and hears what one throws or rejects with. */
export interface WorkRunner {
  run(s: Session, work: Work): MaybePromise<void>;
  failed(s: Session, work: Work, err: unknown): void;
}

/** A unit waiting behind the one being handled, with the characters it counts against `maxQueuedBytes`. */
export interface Queued {
  work: Work;
  chars: number;
}

/**
 * Runs a session's work one unit at a time, in arrival order, so an async hook or store write never lets
 * a later frame overtake an earlier one. The fast path: with nothing queued the unit runs at once, inside
 * the caller, and a handler that finishes synchronously (keep-alive, echo, a duplicate) costs no promise
 * and no microtask. Only a handler that returns a promise makes the next units wait in `s.backlog`; its
 * settling runs them. `s.queued` and `s.queuedChars` count the unit being handled and those waiting.
 * A closed session's units are skipped.
 */
export function enqueue(s: Session, work: Work, chars: number, runner: WorkRunner): void {
  s.queued++;
  s.queuedChars += chars;
  if (s.queued > 1) (s.backlog ??= []).push({ work, chars });
  else pump(s, work, chars, runner);
}

function pump(s: Session, work: Work, chars: number, runner: WorkRunner): void {
  for (;;) {
    let pending: MaybePromise<void> = undefined;
    try {
      if (!s.closed) pending = runner.run(s, work);
    } catch (err) {
      runner.failed(s, work, err);
    }
    if (isPromise(pending)) {
      const failedWork = work;
      const doneChars = chars;
      pending.then(
        () => resume(s, doneChars, runner),
        (err: unknown) => {
          runner.failed(s, failedWork, err);
          resume(s, doneChars, runner);
        },
      );
      return;
    }
    const next = finish(s, chars);
    if (!next) return;
    work = next.work;
    chars = next.chars;
  }
}

function resume(s: Session, chars: number, runner: WorkRunner): void {
  const next = finish(s, chars);
  if (next) pump(s, next.work, next.chars, runner);
}

/** Uncounts a finished unit and returns the next one waiting, if any. */
function finish(s: Session, chars: number): Queued | undefined {
  s.queued--;
  s.queuedChars -= chars;
  if (s.queued > 0) return s.backlog?.shift();
  s.backlog = null;
  s.drained();
  return undefined;
}
