import type { Server as HttpServer } from 'node:http';
import type { Server as NetServer } from 'node:net';
import type { Logger } from './logger';

/** A started gateway: the port it is bound to and how to stop it. */
export interface Gateway {
  readonly port: number;
  close(): Promise<void>;
  /** Stops accepting new connections, leaving the open ones be (graceful shutdown). */
  stopAccepting?(): void;
}

/**
 * Listens and resolves with the bound port (useful with port 0). Later server errors (such as EMFILE on
 * accept) are logged instead of crashing the process.
 */
export function listen(server: HttpServer | NetServer, port: number, host: string | undefined, logger: Logger): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      server.on('error', (err: NodeJS.ErrnoException) => {
        const exhausted = err.code === 'EMFILE' || err.code === 'ENFILE';
        const hint = exhausted ? ': file descriptors exhausted, new connections are refused (raise LimitNOFILE / ulimit -n)' : '';
        logger.error(`listener on port ${port}: ${err.message}${hint}`, { code: err.code });
      });
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}

/** Stops accepting and resolves once the server has closed, dropping idle keep-alive sockets. */
export function closeHttp(server: HttpServer | NetServer): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    if ('closeAllConnections' in server) server.closeAllConnections();
  });
}
