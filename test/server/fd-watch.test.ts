import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { watchDescriptors, type DescriptorWatch } from '../../server/src/fd-watch';
import type { Logger } from '../../server/src/logger';

/**
 * The process as the watch sees it through /proc: the soft limit, the descriptor table's size, how many
 * descriptors a listing finds and how long it takes. The rest of node:fs is the real one. (The watch at
 * real exhaustion, in a child process with a small ulimit, is in cli-ops.test.ts.)
 */
const proc = { limit: 1000, fdSize: 64, open: 10, listMs: 1, listings: 0 };

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  return {
    ...real,
    readFileSync: (path: string, ...rest: unknown[]) => {
      if (path === '/proc/self/limits') return `Limit                     Soft Limit           Hard Limit           Units\nMax open files            ${proc.limit}                 ${proc.limit}                 files\n`;
      if (path === '/proc/self/status') return `Name:\tnode\nFDSize:\t${proc.fdSize}\nVmRSS:\t1 kB\n`;
      return (real.readFileSync as (...a: unknown[]) => unknown)(path, ...rest);
    },
    readdir: (path: string, cb: (err: NodeJS.ErrnoException | null, names?: string[]) => void) => {
      if (path !== '/proc/self/fd') throw new Error(`unexpected readdir ${path}`);
      proc.listings++;
      // The listing's cost, in the (fake) time the watch measures it by.
      setTimeout(() => cb(null, Array.from({ length: proc.open }, (_, i) => String(i))), proc.listMs);
    },
  };
});

function recordingLogger(): Logger & { lines: Array<[string, string]> } {
  const lines: Array<[string, string]> = [];
  const log = (level: string) => (msg: string) => void lines.push([level, msg]);
  return { lines, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') } as Logger & { lines: Array<[string, string]> };
}

describe('the descriptor watch', () => {
  let watch: DescriptorWatch | null = null;
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });
    Object.assign(proc, { limit: 1000, fdSize: 64, open: 10, listMs: 1, listings: 0 });
  });
  afterEach(() => {
    watch?.stop();
    watch = null;
    vi.useRealTimers();
  });

  it('lists no descriptors while the table has room for fewer than 90% of the limit, and does once it has', async () => {
    const logger = recordingLogger();
    watch = watchDescriptors(logger, 2000);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(proc.listings).toBe(0);
    // 899 < 900: still no listing. 1024 ≥ 900: listed at the next check.
    proc.fdSize = 899;
    await vi.advanceTimersByTimeAsync(2000);
    expect(proc.listings).toBe(0);
    proc.fdSize = 1024;
    proc.open = 950;
    await vi.advanceTimersByTimeAsync(2000);
    expect(proc.listings).toBe(1);
    await vi.advanceTimersByTimeAsync(10);
    expect(logger.lines).toEqual([['warn', 'file descriptors above 90% of the limit']]);
  });

  it('spaces listings by 200 times what the last one took, from 2 s up to a minute', async () => {
    Object.assign(proc, { fdSize: 1024, open: 100, listMs: 25 });
    watch = watchDescriptors(recordingLogger(), 2000);
    const listingsAfter = async (ms: number) => (await vi.advanceTimersByTimeAsync(ms), proc.listings);
    expect(await listingsAfter(2000)).toBe(1);
    // It took 25 ms: the next one 5 s after it ended, not 2 s.
    expect(await listingsAfter(25 + 4999)).toBe(1);
    expect(await listingsAfter(1)).toBe(2);
    // A listing of a second: the next one a minute later (not 200 s).
    proc.listMs = 1000;
    expect(await listingsAfter(5025)).toBe(3);
    expect(await listingsAfter(1000 + 59_999)).toBe(3);
    expect(await listingsAfter(1)).toBe(4);
    // A cheap one again: back to every 2 s.
    proc.listMs = 1;
    expect(await listingsAfter(1000 + 60_000 + 1 + 2000)).toBe(6);
  });

  it('logs exhaustion, and the way back, from the listings', async () => {
    Object.assign(proc, { fdSize: 1024, open: 999 });
    const logger = recordingLogger();
    watch = watchDescriptors(logger, 2000);
    await vi.advanceTimersByTimeAsync(2001);
    proc.open = 100;
    await vi.advanceTimersByTimeAsync(2001);
    expect(logger.lines.map(([level]) => level)).toEqual(['error', 'info']);
    expect(logger.lines[0][1]).toMatch(/^file descriptors exhausted \(EMFILE\)/);
    expect(logger.lines[1][1]).toBe('file descriptors back below 90% of the limit');
  });
});
