import { timingSafeEqual, createHash } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Gateway } from './gateway';
import { closeHttp, listen } from './gateway';
import type { Logger } from './logger';
import type { ResolvedAdminHttp } from './options';
import type { IMServer } from './server';

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** How often Node checks the header and request deadlines (its default, 30 s, would add up to 30 s to each). */
const DEADLINE_CHECK_MS = 1000;
/** At most one "connection limit reached" warning per this period. */
const DROP_LOG_EVERY_MS = 10000;
/** Users `GET /api/online` lists at most (a cluster may hold millions); `/metrics` has the count. */
export const MAX_ONLINE_LISTED = 10000;

/**
 * The admin API, on its own port and by default on 127.0.0.1 only, behind `Authorization: Bearer <adminToken>`:
 *   GET  /health           (no token)  200 {status:'ok'} while the process serves (503 when the store reports a fault)
 *   GET  /ready            (no token)  200 once the store is writable and the server is not draining, else 503
 *   GET  /metrics          Prometheus text format (no token when bound to loopback or `metricsPublic`)
 *   GET  /api/metrics      the counters as JSON
 *   GET  /api/online       {users} (at most MAX_ONLINE_LISTED, then also truncated: true)
 *   POST /api/send         {to, content, qos?, typeu?, fp?}  S2C push; answers once delivered, stored or dropped
 *   POST /api/kick         {userId, code?, reason?}
 * Every connection is bounded in time (headers, whole request, keep-alive idle) and in count, so the admin
 * port can never hold the descriptors the gateways need.
 */
export async function startAdminHttp(server: IMServer, opts: ResolvedAdminHttp, logger: Logger): Promise<Gateway> {
  const http = createHttpServer({ connectionsCheckingInterval: Math.min(DEADLINE_CHECK_MS, opts.headersTimeoutMs) }, (req, res) => {
    handle(server, opts, req, res).catch((err: unknown) => {
      // The library's argument checks (TypeError, RangeError for size) are the caller's mistakes, not ours.
      const status = err instanceof HttpError ? err.status : err instanceof RangeError ? 413 : err instanceof TypeError ? 400 : 500;
      // A client that hangs up mid-request is not the server failing: no error line (and stack) for it.
      if (status === 500 && req.destroyed) logger.debug('admin API request aborted by the client', { reason: (err as Error).message });
      else if (status === 500) logger.error('admin API request failed', err);
      reply(res, status, { error: status === 500 ? 'internal error' : (err as Error).message });
    });
  });
  http.headersTimeout = opts.headersTimeoutMs;
  http.requestTimeout = opts.requestTimeoutMs;
  http.keepAliveTimeout = opts.keepAliveTimeoutMs;
  http.maxConnections = opts.maxConnections;
  http.maxRequestsPerSocket = 100;
  let lastDropLogMs = 0;
  http.on('drop', () => {
    const now = Date.now();
    if (now - lastDropLogMs < DROP_LOG_EVERY_MS) return;
    lastDropLogMs = now;
    logger.warn('admin API connection limit reached: closing new connections', { maxConnections: opts.maxConnections });
  });
  http.on('clientError', (_err, socket) => socket.destroy());
  const port = await listen(http, opts.port, opts.host, logger);
  return { port, close: () => closeHttp(http) };
}

/** Whether a listen address only accepts connections from this machine. */
export function isLoopback(host: string | undefined): boolean {
  return host === 'localhost' || host === '::1' || (host !== undefined && /^127\.\d+\.\d+\.\d+$/.test(host));
}

async function handle(server: IMServer, opts: ResolvedAdminHttp, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://admin');
  const route = `${req.method} ${url.pathname}`;
  if (route === 'GET /health') {
    const h = await server.health();
    return reply(res, h.status === 'ok' ? 200 : 503, h);
  }
  if (route === 'GET /ready') {
    const r = await server.readiness();
    return reply(res, r.ready ? 200 : 503, r);
  }
  if (route === 'GET /metrics') {
    if (!opts.metricsPublic && !isLoopback(opts.host)) authorize(opts.adminToken, req.headers.authorization);
    const text = await server.prometheusMetrics();
    res.writeHead(200, { 'content-type': server.prometheusContentType, 'content-length': Buffer.byteLength(text) }).end(text);
    return;
  }
  authorize(opts.adminToken, req.headers.authorization);
  switch (route) {
    case 'GET /api/metrics':
      return reply(res, 200, server.metrics());
    case 'GET /api/online': {
      // One more than shown tells whether the list was cut.
      const users = await clusterCall(() => server.allOnlineUsers(MAX_ONLINE_LISTED + 1));
      if (users.length <= MAX_ONLINE_LISTED) return reply(res, 200, { users });
      return reply(res, 200, { users: users.slice(0, MAX_ONLINE_LISTED), truncated: true });
    }
    case 'POST /api/send': {
      const body = await readJson(req, opts.maxBodyBytes);
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
      const body = await readJson(req, opts.maxBodyBytes);
      if (typeof body.userId !== 'string' || (body.code !== undefined && !Number.isInteger(body.code))) {
        throw new HttpError(400, 'body must be {"userId": string, "code"?: integer, "reason"?: string}');
      }
      const code = typeof body.code === 'number' ? body.code : 2;
      const userId = body.userId;
      const reason = typeof body.reason === 'string' ? body.reason : undefined;
      const kicked = await clusterCall(() => server.kick(userId, code, reason));
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

/**
 * Runs a call that may need the cluster's shared state: a failure other than the caller's own mistake
 * (TypeError, RangeError) is Redis unreachable or stalled, answered 503 rather than 500.
 */
async function clusterCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError || err instanceof HttpError) throw err;
    throw new HttpError(503, `the cluster state cannot be reached now; retry later (${(err as Error).message})`);
  }
}

/** Every route, as "METHOD /path". */
const ROUTES = ['GET /health', 'GET /ready', 'GET /metrics', 'GET /api/metrics', 'GET /api/online', 'POST /api/send', 'POST /api/kick'];

function authorize(token: string | null, header: string | undefined): void {
  if (!token) throw new HttpError(403, 'the admin API is disabled: start the server with an admin token');
  const given = /^Bearer (.+)$/i.exec(header ?? '')?.[1] ?? '';
  const digest = (s: string) => createHash('sha256').update(s).digest();
  if (!timingSafeEqual(digest(given), digest(token))) throw new HttpError(401, 'missing or wrong bearer token');
}

/** Reads a JSON object body of at most `maxBytes` (the whole request is bounded by `requestTimeoutMs`). */
async function readJson(req: IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  const declared = Number(req.headers['content-length']);
  if (declared > maxBytes) throw new HttpError(413, `body over ${maxBytes} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new HttpError(413, `body over ${maxBytes} bytes`);
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
  // A request that hit its deadline was already answered (408) or its socket destroyed.
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}
