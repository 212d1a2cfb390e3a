import type { Logger } from './logger';

/** One worker process as the supervisor sees it (a `cluster.Worker` behind a thin wrapper). */
export interface SupervisedWorker {
  readonly pid: number | undefined;
  /** Sends a message over the IPC channel (ignored when the channel is closed). */
  send(message: object): void;
  /** Signals the process itself. */
  kill(signal: NodeJS.Signals): void;
  onMessage(listener: (message: unknown) => void): void;
  onExit(listener: (code: number | null, signal: NodeJS.Signals | null) => void): void;
}

/** What the primary tells a worker. */
export type WorkerControl = { im: 'shutdown' };

/** What a worker tells the primary once its gateways listen. */
export interface WorkerReady {
  im: 'ready';
  ports: Record<string, number | undefined>;
}

/** The timers the supervisor uses (injected so tests run it on fake time). */
export interface SupervisorClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Options of {@link WorkerSupervisor}. */
export interface SupervisorOptions {
  /** Number of workers, each in its own slot 1..count. */
  count: number;
  /** Starts the worker of slot `index` (1-based). */
  fork(index: number): SupervisedWorker;
  logger: Logger;
  clock: SupervisorClock;
  /** After a stop request, workers still running after this long are killed (SIGKILL). */
  stopTimeoutMs: number;
  /** Called once, when every worker has reported ready for the first time, with the slots' reports. */
  onStarted(ready: WorkerReady[]): void;
  /** Called once, when the supervisor is done: 0 after a clean stop, 1 after a failed start or stop. */
  onDone(code: 0 | 1): void;
  /** Any other message a worker sends (the ready report is the supervisor's own). */
  onMessage?(worker: SupervisedWorker, message: unknown): void;
}

/** First restart delay after a crash; it doubles with each crash in a row. */
export const RESTART_BASE_MS = 250;
/** Longest restart delay: a worker that keeps crashing is retried this often at most. */
export const RESTART_MAX_MS = 30_000;
/** A worker that stayed up this long after it was ready ends a crash streak. */
export const STABLE_UPTIME_MS = 30_000;

/** The wait before restarting a worker that crashed `crashesInRow` times in a row (1 = first crash). */
export function restartDelayMs(crashesInRow: number): number {
  return Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** Math.min(Math.max(crashesInRow, 1) - 1, 20));
}

interface Slot {
  index: number;
  worker: SupervisedWorker | null;
  ready: WorkerReady | null;
  readyAt: number | null;
  crashesInRow: number;
  restartTimer: unknown;
  /** SIGTERM sent by the supervisor to a worker that was not ready yet: its death by that signal is clean. */
  terminated: boolean;
}

/**
 * The primary's side of `--workers N`:
 *
 *   starting --all ready--> running --stop()--> stopping --all exited--> done(0)
 *      |                      | a worker exits: restart it after restartDelayMs(crashes in a row)
 *      +--a worker exits--> stopping (the others are terminated) --> done(1)
 *
 * A second stop() while stopping kills every worker (SIGKILL) and finishes with 1 at once.
 */
export class WorkerSupervisor {
  private state: 'idle' | 'starting' | 'running' | 'stopping' | 'done' = 'idle';
  private readonly slots: Slot[];
  private failed = false;
  private stopTimer: unknown = null;

  constructor(private readonly o: SupervisorOptions) {
    if (!Number.isInteger(o.count) || o.count < 1) throw new RangeError(`count must be an integer of 1 or more, got ${String(o.count)}`);
    this.slots = Array.from({ length: o.count }, (_, i) => ({
      index: i + 1, worker: null, ready: null, readyAt: null, crashesInRow: 0, restartTimer: null, terminated: false,
    }));
  }

  /** Forks every worker. */
  start(): void {
    if (this.state !== 'idle') throw new Error('the supervisor was started already');
    this.state = 'starting';
    for (const slot of this.slots) this.fork(slot);
  }

  /** Drains every worker (each gets `{im: 'shutdown'}`); a second call kills them all at once. */
  stop(reason: string): void {
    if (this.state === 'done') return;
    if (this.state === 'stopping') {
      this.o.logger.warn(`${reason} again: killing every worker`);
      for (const s of this.slots) s.worker?.kill('SIGKILL');
      this.finish(1);
      return;
    }
    this.o.logger.info(`${reason}: draining every worker`, { workers: this.live().length });
    this.beginStop();
  }

  /** Sends `signal` to every running worker (SIGHUP: reload the TLS certificate). */
  signalAll(signal: NodeJS.Signals): void {
    for (const s of this.live()) s.worker?.kill(signal);
  }

  /** The workers that reported ready and still run. */
  readyWorkers(): SupervisedWorker[] {
    return this.slots.filter((s) => s.worker && s.ready).map((s) => s.worker as SupervisedWorker);
  }

  private beginStop(): void {
    this.state = 'stopping';
    this.stopTimer = this.o.clock.setTimeout(() => {
      this.o.logger.error('workers still running after the drain time: killing them', { workers: this.live().map((s) => s.index) });
      for (const s of this.live()) s.worker?.kill('SIGKILL');
      this.finish(1);
    }, this.o.stopTimeoutMs);
    for (const s of this.slots) {
      this.o.clock.clearTimeout(s.restartTimer);
      s.restartTimer = null;
      if (!s.worker) continue;
      if (s.ready) s.worker.send({ im: 'shutdown' });
      else {
        // Not listening yet: it installed no drain handler; a plain SIGTERM ends it.
        s.terminated = true;
        s.worker.kill('SIGTERM');
      }
    }
    this.finishIfAllExited();
  }

  private live(): Slot[] {
    return this.slots.filter((s) => s.worker !== null);
  }

  private fork(slot: Slot): void {
    slot.ready = null;
    slot.readyAt = null;
    slot.terminated = false;
    const w = this.o.fork(slot.index);
    slot.worker = w;
    this.o.logger.info(`worker ${slot.index} starting`, { worker: slot.index, pid: w.pid });
    w.onMessage((m) => {
      if (slot.worker !== w) return;
      if (!isReady(m)) return this.o.onMessage?.(w, m);
      slot.ready = m;
      slot.readyAt = this.o.clock.now();
      this.o.logger.info(`worker ${slot.index} ready`, { worker: slot.index, pid: w.pid, ports: m.ports });
      if (this.state === 'stopping') w.send({ im: 'shutdown' });
      else if (this.state === 'starting' && this.slots.every((s) => s.ready)) {
        this.state = 'running';
        this.o.onStarted(this.slots.map((s) => s.ready as WorkerReady));
      }
    });
    w.onExit((code, signal) => {
      if (slot.worker !== w) return;
      slot.worker = null;
      this.exited(slot, w, code, signal);
    });
  }

  private exited(slot: Slot, w: SupervisedWorker, code: number | null, signal: NodeJS.Signals | null): void {
    const how = { worker: slot.index, pid: w.pid, code, signal };
    if (this.state === 'stopping') {
      const clean = code === 0 || (slot.terminated && signal === 'SIGTERM');
      if (!clean) this.failed = true;
      if (clean) this.o.logger.info(`worker ${slot.index} exited`, how);
      else this.o.logger.warn(`worker ${slot.index} exited`, how);
      this.finishIfAllExited();
      return;
    }
    if (this.state === 'starting') {
      this.o.logger.error(`worker ${slot.index} exited while starting: stopping the others`, how);
      this.failed = true;
      this.beginStop();
      return;
    }
    if (this.state !== 'running') return;
    const up = slot.readyAt === null ? 0 : this.o.clock.now() - slot.readyAt;
    slot.crashesInRow = up >= STABLE_UPTIME_MS ? 1 : slot.crashesInRow + 1;
    const delayMs = restartDelayMs(slot.crashesInRow);
    this.o.logger.error(`worker ${slot.index} exited: restarting it in ${delayMs} ms`, { ...how, crashesInRow: slot.crashesInRow, delayMs });
    slot.restartTimer = this.o.clock.setTimeout(() => {
      slot.restartTimer = null;
      if (this.state === 'running') this.fork(slot);
    }, delayMs);
  }

  private finishIfAllExited(): void {
    if (this.state === 'stopping' && this.live().length === 0) this.finish(this.failed ? 1 : 0);
  }

  private finish(code: 0 | 1): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.o.clock.clearTimeout(this.stopTimer);
    for (const s of this.slots) this.o.clock.clearTimeout(s.restartTimer);
    this.o.onDone(code);
  }
}

function isReady(m: unknown): m is WorkerReady {
  return typeof m === 'object' && m !== null && (m as { im?: unknown }).im === 'ready' && typeof (m as { ports?: unknown }).ports === 'object';
}
