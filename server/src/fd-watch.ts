import { readdir, readFileSync } from 'node:fs';
import type { Logger } from './logger';

/** How often the descriptor count is checked. */
const CHECK_EVERY_MS = 2000;
/** While descriptors stay exhausted, the error is repeated this often. */
const REPEAT_EVERY_MS = 60000;
/** Share of the limit above which a warning is logged. */
const HIGH_SHARE = 0.9;
/**
 * A listing of `/proc/self/fd` costs about 1.3 µs of CPU a descriptor (25 ms at 19,000 here): after one,
 * the next check waits at least this many times as long as it took, so the watch stays under about 0.5%
 * of a core however many connections there are (at most {@link REPEAT_EVERY_MS} apart).
 */
const LISTING_COST_FACTOR = 200;

/** Stops a {@link watchDescriptors} watch. */
export interface DescriptorWatch {
  stop(): void;
}

/**
 * Logs descriptor exhaustion, which Node does not: when accept() fails with EMFILE or ENFILE, libuv
 * accepts and closes the pending connections with a reserved descriptor and reports nothing, so new
 * clients are refused in silence while connected ones go on being served. Every `CHECK_EVERY_MS` this
 * counts `/proc/self/fd` (Linux; elsewhere it does nothing): opening that directory itself failing with
 * EMFILE/ENFILE, or a count at the soft limit, logs an error (repeated each minute while it lasts);
 * 90% of the limit logs a warning; the way back logs once. The count is only taken once the process's
 * descriptor table (`FDSize` in `/proc/self/status`, which the kernel grows in powers of two and never
 * shrinks) has room for 90% of the limit: below that fewer are open, whatever they are, and reading
 * that one line costs nothing next to listing tens of thousands of descriptors.
 */
export function watchDescriptors(logger: Logger, everyMs = CHECK_EVERY_MS): DescriptorWatch {
  const limit = softLimit();
  if (limit === null) return { stop: () => undefined };
  let state: 'ok' | 'high' | 'exhausted' = 'ok';
  let lastErrorMs = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let stopped = false;
  const judge = (err: NodeJS.ErrnoException | null, open: number): void => {
    const exhausted = (err !== null && (err.code === 'EMFILE' || err.code === 'ENFILE')) || open >= limit - 1;
    const next = exhausted ? 'exhausted' : open >= limit * HIGH_SHARE ? 'high' : 'ok';
    const now = Date.now();
    if (next === 'exhausted' && (state !== 'exhausted' || now - lastErrorMs >= REPEAT_EVERY_MS)) {
      lastErrorMs = now;
      const code = err?.code ?? 'EMFILE';
      logger.error(`file descriptors exhausted (${code}): new connections are being refused, connected clients are still served; raise LimitNOFILE / ulimit -n`, {
        code,
        limit,
        open: err ? limit : open,
      });
    } else if (next === 'high' && state === 'ok') {
      logger.warn('file descriptors above 90% of the limit', { open, limit });
    } else if (next === 'ok' && state !== 'ok') {
      logger.info('file descriptors back below 90% of the limit', { open, limit });
    }
    state = next;
  };
  const schedule = (ms: number): void => {
    timer = setTimeout(tick, ms);
    timer.unref();
  };
  const tick = (): void => {
    const size = tableSize();
    // Fewer than 90% of the limit can be open, and since the table never shrinks, none ever was above it.
    if (size !== null && size < limit * HIGH_SHARE) return schedule(everyMs);
    const startedMs = performance.now();
    readdir('/proc/self/fd', (err, names) => {
      if (stopped) return;
      judge(err, names?.length ?? 0);
      schedule(Math.min(REPEAT_EVERY_MS, Math.max(everyMs, LISTING_COST_FACTOR * (performance.now() - startedMs))));
    });
  };
  schedule(everyMs);
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

/** The size of the process's descriptor table (`FDSize`), or null when it cannot be read. */
function tableSize(): number | null {
  try {
    const m = /^FDSize:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** The soft RLIMIT_NOFILE from /proc/self/limits, or null where there is no /proc. */
function softLimit(): number | null {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}
