import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../server/src/logger';
import {
  restartDelayMs,
  RESTART_BASE_MS,
  RESTART_MAX_MS,
  STABLE_UPTIME_MS,
  WorkerSupervisor,
  type SupervisedWorker,
  type WorkerControl,
  type WorkerReady,
} from '../../server/src/worker-supervisor';
import { parseWorkers } from '../../server/src/workers';

/** A worker process that does only what the test tells it. */
class FakeWorker implements SupervisedWorker {
  static nextPid = 100;
  readonly pid = FakeWorker.nextPid++;
  readonly sent: WorkerControl[] = [];
  readonly signals: NodeJS.Signals[] = [];
  exited = false;
  private messageListeners: Array<(m: unknown) => void> = [];
  private exitListeners: Array<(code: number | null, signal: NodeJS.Signals | null) => void> = [];
  constructor(readonly index: number) {}
  send(message: WorkerControl): void {
    this.sent.push(message);
  }
  kill(signal: NodeJS.Signals): void {
    this.signals.push(signal);
  }
  onMessage(listener: (m: unknown) => void): void {
    this.messageListeners.push(listener);
  }
  onExit(listener: (code: number | null, signal: NodeJS.Signals | null) => void): void {
    this.exitListeners.push(listener);
  }
  ready(): void {
    for (const l of this.messageListeners) l({ im: 'ready', ports: { ws: 3000 + this.index } } satisfies WorkerReady);
  }
  exit(code: number | null, signal: NodeJS.Signals | null = null): void {
    this.exited = true;
    for (const l of this.exitListeners) l(code, signal);
  }
}

const STOP_TIMEOUT_MS = 8000;

function setup(count: number) {
  const forks: FakeWorker[] = [];
  const started: WorkerReady[][] = [];
  const done: number[] = [];
  const sup = new WorkerSupervisor({
    count,
    logger: silentLogger,
    clock: { now: () => Date.now(), setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) },
    stopTimeoutMs: STOP_TIMEOUT_MS,
    fork: (index) => {
      const w = new FakeWorker(index);
      forks.push(w);
      return w;
    },
    onStarted: (r) => started.push(r),
    onDone: (code) => done.push(code),
  });
  const live = (index: number) => forks.filter((w) => w.index === index && !w.exited).at(-1) as FakeWorker;
  return { sup, forks, started, done, live };
}

beforeEach(() => vi.useFakeTimers());
afterEach(() => {
  expect(vi.getTimerCount()).toBe(0);
  vi.useRealTimers();
});

describe('restartDelayMs', () => {
  it('doubles from the base with each crash in a row and stops at the cap', () => {
    expect(restartDelayMs(1)).toBe(RESTART_BASE_MS);
    expect(restartDelayMs(2)).toBe(2 * RESTART_BASE_MS);
    expect(restartDelayMs(3)).toBe(4 * RESTART_BASE_MS);
    expect(restartDelayMs(50)).toBe(RESTART_MAX_MS);
    expect(restartDelayMs(1000)).toBe(RESTART_MAX_MS);
  });
});

describe('WorkerSupervisor', () => {
  it('reports started once every worker is ready, with each slot\'s report', () => {
    const { sup, forks, started, done } = setup(2);
    sup.start();
    expect(forks.map((w) => w.index)).toEqual([1, 2]);
    forks[0].ready();
    expect(started).toEqual([]);
    forks[1].ready();
    expect(started).toEqual([[{ im: 'ready', ports: { ws: 3001 } }, { im: 'ready', ports: { ws: 3002 } }]]);
    sup.stop('SIGTERM');
    for (const w of forks) w.exit(0);
    expect(done).toEqual([0]);
  });

  it('restarts a worker that dies after exactly the backoff, in the same slot, and doubles it while it keeps dying', () => {
    const { sup, forks, done, live } = setup(2);
    sup.start();
    for (const w of forks) w.ready();
    live(2).exit(null, 'SIGKILL');
    vi.advanceTimersByTime(RESTART_BASE_MS - 1);
    expect(forks).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(forks).toHaveLength(3);
    expect(forks[2].index).toBe(2);
    // It dies again before it was ever ready: the next wait is twice as long.
    forks[2].exit(1);
    vi.advanceTimersByTime(2 * RESTART_BASE_MS - 1);
    expect(forks).toHaveLength(3);
    vi.advanceTimersByTime(1);
    expect(forks).toHaveLength(4);
    expect(forks[3].index).toBe(2);
    sup.stop('SIGTERM');
    // Not ready yet: it has no drain handler, so it gets a plain SIGTERM, and dying of it is clean.
    expect(forks[3].signals).toEqual(['SIGTERM']);
    expect(live(1).sent).toEqual([{ im: 'shutdown' }]);
    forks[3].exit(null, 'SIGTERM');
    live(1).exit(0);
    expect(done).toEqual([0]);
  });

  it('starts a crash streak over once the worker stayed up for STABLE_UPTIME_MS', () => {
    const { sup, forks, done, live } = setup(1);
    sup.start();
    forks[0].ready();
    for (let i = 0; i < 3; i++) {
      live(1).exit(1);
      vi.advanceTimersByTime(restartDelayMs(i + 1));
      live(1).ready();
    }
    // Three quick crashes: the fourth would wait 8 × base. Up one ms short of stable: still a streak.
    vi.advanceTimersByTime(STABLE_UPTIME_MS - 1);
    live(1).exit(1);
    vi.advanceTimersByTime(restartDelayMs(4) - 1);
    expect(forks).toHaveLength(4);
    vi.advanceTimersByTime(1);
    expect(forks).toHaveLength(5);
    live(1).ready();
    vi.advanceTimersByTime(STABLE_UPTIME_MS);
    live(1).exit(1);
    vi.advanceTimersByTime(RESTART_BASE_MS);
    expect(forks).toHaveLength(6);
    sup.stop('SIGINT');
    live(1).exit(null, 'SIGTERM');
    expect(done).toEqual([0]);
  });

  it('gives up with 1 when a worker exits before every worker was ready once (a start-up failure)', () => {
    const { sup, forks, started, done } = setup(3);
    sup.start();
    forks[0].ready();
    forks[1].exit(1);
    expect(forks[0].sent).toEqual([{ im: 'shutdown' }]);
    expect(forks[2].signals).toEqual(['SIGTERM']);
    forks[0].exit(0);
    expect(done).toEqual([]);
    forks[2].exit(null, 'SIGTERM');
    expect(done).toEqual([1]);
    expect(started).toEqual([]);
    vi.advanceTimersByTime(RESTART_MAX_MS);
    expect(forks).toHaveLength(3);
  });

  it('does not restart while stopping, and finishes with 1 when a worker fails its drain', () => {
    const { sup, forks, done } = setup(2);
    sup.start();
    for (const w of forks) w.ready();
    sup.stop('SIGTERM');
    forks[0].exit(1);
    vi.advanceTimersByTime(RESTART_MAX_MS - STOP_TIMEOUT_MS);
    expect(forks).toHaveLength(2);
    forks[1].exit(0);
    expect(done).toEqual([1]);
  });

  it('kills what is still running when the stop time is over (and not one ms before)', () => {
    const { sup, forks, done } = setup(2);
    sup.start();
    for (const w of forks) w.ready();
    sup.stop('SIGTERM');
    forks[0].exit(0);
    vi.advanceTimersByTime(STOP_TIMEOUT_MS - 1);
    expect(forks[1].signals).toEqual([]);
    expect(done).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(forks[1].signals).toEqual(['SIGKILL']);
    expect(done).toEqual([1]);
  });

  it('passes a signal on to every running worker', () => {
    const { sup, forks, done } = setup(2);
    sup.start();
    for (const w of forks) w.ready();
    forks[0].exit(1);
    sup.signalAll('SIGHUP');
    expect(forks.map((w) => w.signals)).toEqual([[], ['SIGHUP']]);
    sup.stop('SIGTERM');
    forks[1].exit(0);
    expect(done).toEqual([0]);
  });

  it('kills every worker at once on a second stop', () => {
    const { sup, forks, done } = setup(2);
    sup.start();
    for (const w of forks) w.ready();
    sup.stop('SIGINT');
    sup.stop('SIGINT');
    expect(forks.map((w) => w.signals)).toEqual([['SIGKILL'], ['SIGKILL']]);
    expect(done).toEqual([1]);
  });

  it('cancels a pending restart on stop and finishes when the others have exited', () => {
    const { sup, forks, done } = setup(2);
    sup.start();
    for (const w of forks) w.ready();
    forks[0].exit(null, 'SIGKILL');
    sup.stop('SIGTERM');
    forks[1].exit(0);
    expect(done).toEqual([0]);
    vi.advanceTimersByTime(RESTART_MAX_MS);
    expect(forks).toHaveLength(2);
  });
});

describe('parseWorkers', () => {
  it('takes 1..256 and auto (the cores, at least 1), and refuses anything else with a message', () => {
    expect(parseWorkers('1')).toBe(1);
    expect(parseWorkers('256')).toBe(256);
    expect(parseWorkers('auto', 6)).toBe(6);
    expect(parseWorkers('auto', 0)).toBe(1);
    expect(() => parseWorkers('0')).toThrow(/--workers 0: at least one process/);
    for (const bad of ['257', 'abc', '1.5', '-1', '', ' 2', '2x', '0x2']) expect(() => parseWorkers(bad)).toThrow(`--workers must be a whole number 1..256 or "auto" (one per core), got "${bad}"`);
  });
});
