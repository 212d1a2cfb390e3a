/** The logging interface the server writes to; pass your own to route logs elsewhere. */
export interface Logger {
  debug(message: string, ...args: unknown[]): void;
  info(message: string, ...args: unknown[]): void;
  warn(message: string, ...args: unknown[]): void;
  error(message: string, ...args: unknown[]): void;
}

/** Log levels, least to most severe. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const order: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 };

/** A console logger that drops messages below `level`. */
export function createConsoleLogger(level: LogLevel = 'info'): Logger {
  const min = order[level];
  const at = (l: Exclude<LogLevel, 'silent'>) => (message: string, ...args: unknown[]) => {
    if (order[l] >= min) console[l === 'debug' ? 'log' : l](`[im-server] ${l}: ${message}`, ...args);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A logger that discards everything. */
export const silentLogger: Logger = createConsoleLogger('silent');
