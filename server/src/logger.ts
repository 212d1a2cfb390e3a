import { hostname } from 'node:os';
import { Writable } from 'node:stream';
import pino from 'pino';
import pretty from 'pino-pretty';

/**
 * The logging interface the server writes to; pass your own to route logs elsewhere. Arguments after the
 * message are folded into the line: a plain object adds its keys as structured fields, an Error becomes
 * `err`, anything else is appended to the message text.
 */
export interface Logger {
  debug(message: string, ...args: unknown[]): void;
  info(message: string, ...args: unknown[]): void;
  warn(message: string, ...args: unknown[]): void;
  error(message: string, ...args: unknown[]): void;
  /** A logger that adds `fields` to every line (optional: a custom logger may not have it). */
  child?(fields: Record<string, unknown>): Logger;
}

/** Log levels, least to most severe. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/** `json`: one JSON object a line (for log shippers); `pretty`: readable lines for a terminal. */
export type LogFormat = 'json' | 'pretty';

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Lines below this level are dropped (default info). */
  level?: LogLevel;
  /** Default json. */
  format?: LogFormat;
  /** Carried as `node` on every line (default {@link defaultNodeId}). */
  nodeId?: string;
  /** Where lines go (default stdout); anything with `write(string)`. */
  destination?: { write(chunk: string): unknown };
}

/** The default node id: host name and process id, unique among the nodes of a cluster. */
export function defaultNodeId(): string {
  return `${hostname()}-${process.pid}`;
}

type Level = Exclude<LogLevel, 'silent'>;

/**
 * The server's logger: pino, JSON lines by default (`{"level":30,"time":…,"node":…,"msg":…}`), or
 * pino-pretty's format in-process (no worker thread) with `format: 'pretty'`.
 */
export function createLogger(o: LoggerOptions = {}): Logger {
  const level = o.level ?? 'info';
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(level)) throw new RangeError(`logger level must be debug, info, warn, error or silent, got ${String(level)}`);
  const format = o.format ?? 'json';
  if (format !== 'json' && format !== 'pretty') throw new RangeError(`logger format must be "json" or "pretty", got ${String(format)}`);
  const stream =
    format === 'pretty'
      ? pretty({ sync: true, colorize: !o.destination && !!process.stdout.isTTY, destination: o.destination ? asStream(o.destination) : 1 })
      : (o.destination ?? pino.destination({ dest: 1, sync: true }));
  return wrap(pino({ level, base: { node: o.nodeId ?? defaultNodeId() } }, stream as pino.DestinationStream));
}

/** A writable stream over anything with `write(string)` (pino-pretty pipes into a stream). */
function asStream(d: { write(chunk: string): unknown }): NodeJS.WritableStream {
  if (d instanceof Writable) return d;
  return new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      d.write(chunk.toString());
      done();
    },
  });
}

function wrap(p: pino.Logger): Logger {
  const at =
    (level: Level) =>
    (message: string, ...args: unknown[]): void => {
      if (!p.isLevelEnabled(level)) return;
      let fields: Record<string, unknown> | null = null;
      let msg = message;
      for (const a of args) {
        if (a instanceof Error) (fields ??= {}).err = a;
        else if (a !== null && typeof a === 'object' && !Array.isArray(a)) fields = Object.assign(fields ?? {}, a);
        else msg += ` ${String(a)}`;
      }
      if (fields) p[level](fields, msg);
      else p[level](msg);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (fields) => wrap(p.child(fields)) };
}

const order: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 };

/** A console logger that drops messages below `level` (plain text, no structure). */
export function createConsoleLogger(level: LogLevel = 'info'): Logger {
  const min = order[level];
  const at = (l: Level) => (message: string, ...args: unknown[]) => {
    if (order[l] >= min) console[l === 'debug' ? 'log' : l](`[im-server] ${l}: ${message}`, ...args);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A logger that discards everything. */
export const silentLogger: Logger = createConsoleLogger('silent');

/** `logger.child(fields)` when the logger has one, else the logger itself. */
export function childLogger(logger: Logger, fields: Record<string, unknown>): Logger {
  return logger.child ? logger.child(fields) : logger;
}
