import { readdir, readFileSync } from 'node:fs';
import type { Logger } from './logger';

/** How often the descriptor count is checked. */
const CHECK_EVERY_MS = 2000;
/** While descriptors stay exhausted, the error is repeated this often. */
const REPEAT_EVERY_MS = 60000;
/** Share of the limit above which a warning is logged. */
const HIGH_SHARE = 0.9;

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
 * 90% of the limit logs a warning; the way back logs once.
 */
export function watchDescriptors(logger: Logger, everyMs = CHECK_EVERY_MS): DescriptorWatch {
  const limit = softLimit();
  if (limit === null) return { stop: () => undefined };
  let state: 'ok' | 'high' | 'exhausted' = 'ok';
  let lastErrorMs = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let stopped = false;
  const judge = (err: NodeJS.ErrnoException | null, open: number): void => {
    if (stopped) return;
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
    timer = setTimeout(tick, everyMs);
    timer.unref();
  };
  const tick = (): void => readdir('/proc/self/fd', (err, names) => judge(err, names?.length ?? 0));
  timer = setTimeout(tick, everyMs);
  timer.unref();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
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
