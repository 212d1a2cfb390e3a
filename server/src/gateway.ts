import type { Server as HttpServer } from 'node:http';
import type { Server as NetServer } from 'node:net';

/** A started gateway: the port it is bound to and how to stop it. */
export interface Gateway {
  readonly port: number;
  close(): Promise<void>;
}

/** Listens and resolves with the bound port (useful with port 0). */
export function listen(server: HttpServer | NetServer, port: number, host?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
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
