/** A structured log sink; the default discards everything, so production builds stay quiet. */
export interface Logger {
  debug(message: string, data?: unknown): void;
  warn(message: string, data?: unknown): void;
  error(message: string, data?: unknown): void;
}

const noop = (): void => undefined;

/** The default logger: drops every message. */
export const silentLogger: Logger = { debug: noop, warn: noop, error: noop };
