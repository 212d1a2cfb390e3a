import { createHash } from 'node:crypto';
import type { Authenticator, AuthVerdict } from './auth';
import { ServerErrorCode } from './errors';

/**
 * Login verification by the application's backend: the server POSTs `{ userId, token, extra }` as JSON
 * to `url` and accepts on HTTP 200 with `{ "ok": true }`. `{ "code": n }` (a non-zero 32-bit integer)
 * refuses with that login code; any other 200 answer, or 401/403, refuses with 328.
 */
export interface WebhookAuthOptions {
  /** The backend's http(s) URL. */
  url: string;
  /** An answer must arrive (body included) within this time, or the login is refused with 330 (default 3000). */
  timeoutMs?: number;
  /** Requests to the backend at once; logins beyond it are refused with 331, not queued (default 64). */
  maxInFlight?: number;
  /** Largest answer body read; a larger one is refused with 330 (default 4096). */
  maxResponseBytes?: number;
  /** How long an answer (accept or refusal) is reused for the same user id, token and extra (default 10000; 0 = never). */
  cacheTtlMs?: number;
  /** Most answers kept; the oldest goes first (default 10000). */
  cacheMaxEntries?: number;
  /** Extra request headers, e.g. a bearer token the backend checks. */
  headers?: Record<string, string>;
}

/** Answers kept for a short time, keyed by a SHA-256 of (user id, token, extra): tokens are never stored. */
class AnswerCache {
  private readonly entries = new Map<string, { verdict: AuthVerdict; expiresMs: number }>();

  constructor(private readonly ttlMs: number, private readonly max: number) {}

  get(key: string): AuthVerdict | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (Date.now() >= e.expiresMs) {
      this.entries.delete(key);
      return undefined;
    }
    return e.verdict;
  }

  set(key: string, verdict: AuthVerdict): void {
    if (this.ttlMs === 0) return;
    this.entries.delete(key);
    while (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(key, { verdict, expiresMs: Date.now() + this.ttlMs });
  }
}

/** A failure of the backend itself (not a refusal): never cached. */
class BackendError extends Error {}

/** Builds the webhook authenticator; throws TypeError/RangeError naming the bad `auth.webhook.*` option. */
export function createWebhookAuth(o: WebhookAuthOptions): Authenticator {
  if (o === null || typeof o !== 'object') throw new TypeError('auth.webhook must be an object: { url }');
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    throw new TypeError(`auth.webhook.url must be an absolute http(s) URL, got ${JSON.stringify(o.url)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`auth.webhook.url must be http: or https:, got ${url.protocol}`);
  const timeoutMs = positiveInt(o.timeoutMs ?? 3000, 'auth.webhook.timeoutMs');
  const maxInFlight = positiveInt(o.maxInFlight ?? 64, 'auth.webhook.maxInFlight');
  const maxResponseBytes = positiveInt(o.maxResponseBytes ?? 4096, 'auth.webhook.maxResponseBytes');
  const ttlMs = o.cacheTtlMs ?? 10000;
  if (!Number.isInteger(ttlMs) || ttlMs < 0) throw new RangeError(`auth.webhook.cacheTtlMs must be a whole number 0 or more, got ${String(o.cacheTtlMs)}`);
  const cache = new AnswerCache(ttlMs, positiveInt(o.cacheMaxEntries ?? 10000, 'auth.webhook.cacheMaxEntries'));
  const headers = { ...o.headers, 'content-type': 'application/json', accept: 'application/json' };
  let inFlight = 0;

  async function ask(body: string): Promise<AuthVerdict> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    try {
      const res = await fetch(url, { method: 'POST', headers, body, signal: abort.signal, redirect: 'manual' });
      if (res.status === 401 || res.status === 403) {
        await res.body?.cancel();
        return { ok: false, code: ServerErrorCode.AUTH_INVALID_TOKEN, reason: `backend answered HTTP ${res.status}` };
      }
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new BackendError(`backend answered HTTP ${res.status}`);
      }
      return answerOf(await readBounded(res, maxResponseBytes));
    } catch (err) {
      if (abort.signal.aborted) throw new BackendError(`backend did not answer within ${timeoutMs} ms`);
      if (err instanceof BackendError) throw err;
      throw new BackendError(`backend unreachable (${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message})`);
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    kind: 'webhook',
    describe: () => `webhook POST ${url.origin}${url.pathname}`,
    async verify(userId: string, token: string, extra: string | null): Promise<AuthVerdict> {
      const body = JSON.stringify({ userId, token, extra });
      const key = createHash('sha256').update(body).digest('base64url');
      const cached = cache.get(key);
      if (cached) return cached;
      if (inFlight >= maxInFlight) {
        return { ok: false, code: ServerErrorCode.AUTH_BUSY, reason: `${maxInFlight} verifications already in flight` };
      }
      inFlight++;
      try {
        const verdict = await ask(body);
        cache.set(key, verdict);
        return verdict;
      } catch (err) {
        return { ok: false, code: ServerErrorCode.AUTH_UNAVAILABLE, reason: (err as Error).message };
      } finally {
        inFlight--;
      }
    },
  };
}

/** Reads a response body, giving up (and cancelling it) past `max` bytes. */
async function readBounded(res: Response, max: number): Promise<string> {
  const declared = Number(res.headers.get('content-length'));
  if (declared > max) {
    await res.body?.cancel();
    throw new BackendError(`backend answer is ${declared} bytes, over ${max}`);
  }
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      throw new BackendError(`backend answer is over ${max} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** `{ok: true}` accepts; `{code: n}` refuses with n; anything else that parses refuses with 328. */
function answerOf(text: string): AuthVerdict {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    throw new BackendError('backend answer is not JSON');
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new BackendError('backend answer is not a JSON object');
  const { ok, code } = o as { ok?: unknown; code?: unknown };
  if (ok === true) return { ok: true };
  if (typeof code === 'number' && Number.isInteger(code) && code !== 0 && code >= -(2 ** 31) && code < 2 ** 31) {
    return { ok: false, code, reason: `backend refused with code ${code}` };
  }
  return { ok: false, code: ServerErrorCode.AUTH_INVALID_TOKEN, reason: 'backend refused' };
}

function positiveInt(v: number, name: string): number {
  if (!Number.isInteger(v) || v <= 0) throw new RangeError(`${name} must be a positive whole number, got ${String(v)}`);
  return v;
}
