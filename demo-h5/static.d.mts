import type { IncomingMessage, ServerResponse } from 'node:http';

/** Options of {@link startStaticServer}. */
export interface StaticServerOptions {
  root: string;
  port?: number;
  host?: string;
  prefixes?: string[];
  redirects?: Record<string, string>;
  routes?: Record<string, (req: IncomingMessage, res: ServerResponse) => void>;
}

/** Starts an HTTP server for the files under `root`. */
export function startStaticServer(options: StaticServerOptions): Promise<{ port: number; url: string; close(): Promise<void> }>;
