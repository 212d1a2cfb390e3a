import { timingSafeEqual, createHash } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Gateway } from './gateway';
import { closeHttp, listen } from './gateway';
import type { Logger } from './logger';
import type { IMServer } from './server';

/** Largest request body the admin API reads. */
const MAX_BODY_BYTES = 64 * 1024;

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/**
 * The admin API, on its own port, behind `Authorization: Bearer <adminToken>`:
 *   GET  /health           (no token needed)  {status, uptimeMs}
 *   GET  /metrics          counters
 *   GET  /api/online       {users}
 *   POST /api/send         {to, content, qos?, typeu?, fp?}  S2C push; answers once delivered, stored or dropped
 *   POST /api/kick         {userId, code?, reason?}
 */
export async function startAdminHttp(
  server: IMServer,
  opts: { port: number; host?: string; adminToken: string | null },
  logger: Logger,
): Promise<Gateway> {
  const http = createHttpServer((req, res) => {
    handle(server, opts.adminToken, req, res).catch((err: unknown) => {
      // The library's argument checks (TypeError, RangeError for size) are the caller's mistakes, not ours.
      const status = err instanceof HttpError ? err.status : err instanceof RangeError ? 413 : err instanceof TypeError ? 400 : 500;
      if (status === 500) logger.error('admin API request failed', err);
      reply(res, status, { error: status === 500 ? 'internal error' : (err as Error).message });
    });
  });
  http.on('clientError', (_err, socket) => socket.destroy());
  const port = await listen(http, opts.port, opts.host, logger);
  return { port, close: () => closeHttp(http) };
}

async function handle(server: IMServer, token: string | null, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://admin');
  const route = `${req.method} ${url.pathname}`;
  const health = route === 'GET /health' ? server.health() : null;
  if (health) return reply(res, health.ok ? 200 : 503, { status: health.ok ? 'ok' : 'unavailable', ...(health.reason ? { reason: health.reason } : {}), uptimeMs: server.metrics().uptimeMs });
  authorize(token, req.headers.authorization);
  switch (route) {
    case 'GET /metrics':
      return reply(res, 200, server.metrics());
    case 'GET /api/online':
      return reply(res, 200, { users: server.onlineUsers() });
    case 'POST /api/send': {
      const body = await readJson(req);
      const to = body.to;
      const fpOk = body.fp === undefined || (typeof body.fp === 'string' && body.fp !== '');
      const typeuOk = body.typeu === undefined || Number.isInteger(body.typeu);
      if (typeof to !== 'string' || to === '' || typeof body.content !== 'string' || !fpOk || !typeuOk) {
        throw new HttpError(400, 'body must be {"to": string, "content": string, "qos"?: boolean, "typeu"?: integer, "fp"?: non-empty string}');
      }
      const result = await server.sendToUser(to, body.content, {
        qos: body.qos !== false,
        typeu: typeof body.typeu === 'number' ? body.typeu : -1,
        fp: body.fp as string | undefined,
      });
      return reply(res, 200, result);
    }
    case 'POST /api/kick': {
      const body = await readJson(req);
      if (typeof body.userId !== 'string' || (body.code !== undefined && !Number.isInteger(body.code))) {
        throw new HttpError(400, 'body must be {"userId": string, "code"?: integer, "reason"?: string}');
      }
      const code = typeof body.code === 'number' ? body.code : 2;
      const kicked = server.kick(body.userId, code, typeof body.reason === 'string' ? body.reason : undefined);
      return reply(res, kicked ? 200 : 404, { kicked });
    }
    default: {
      const allow = ROUTES.filter((r) => r.endsWith(` ${url.pathname}`)).map((r) => r.split(' ')[0]);
      if (allow.length > 0) {
        res.setHeader('allow', allow.join(', '));
        throw new HttpError(405, `${url.pathname} takes ${allow.join(', ')}`);
      }
      throw new HttpError(404, `no route ${route}`);
    }
  }
}

/** Every route, as "METHOD /path". */
const ROUTES = ['GET /health', 'GET /metrics', 'GET /api/online', 'POST /api/send', 'POST /api/kick'];

function authorize(token: string | null, header: string | undefined): void {
  if (!token) throw new HttpError(403, 'the admin API is disabled: start the server with an admin token');
  const given = /^Bearer (.+)$/i.exec(header ?? '')?.[1] ?? '';
  const digest = (s: string) => createHash('sha256').update(s).digest();
  if (!timingSafeEqual(digest(given), digest(token))) throw new HttpError(401, 'missing or wrong bearer token');
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    const v: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    throw new HttpError(400, 'body is not JSON');
  }
  throw new HttpError(400, 'body must be a JSON object');
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}
