import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createWebhookAuth } from '../../server/src/auth-webhook';
import { createServer, ServerErrorCode, silentLogger, type WebhookAuthOptions } from '../../server/src/index';
import { useServers } from './helpers';
import { recordingLogger, tryLogin } from './auth-helpers';

const { setup } = useServers();
const backends: Server[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const b of backends.splice(0)) {
    b.closeAllConnections();
    await new Promise((r) => b.close(r));
  }
});

type Handler = (body: { userId: string; token: string; extra: string | null }, res: ServerResponse, req: IncomingMessage) => void;

/** A real HTTP backend on a free port; `handler` answers each verification request. */
async function backend(handler: Handler) {
  const requests: Array<{ body: Record<string, unknown>; headers: IncomingMessage['headers'] }> = [];
  const srv = createHttpServer((req, res) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => {
      const body = JSON.parse(data) as Parameters<Handler>[0];
      requests.push({ body, headers: req.headers });
      handler(body, res, req);
    });
  });
  backends.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/verify`, requests, srv };
}

const json = (res: ServerResponse, body: unknown, status = 200) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

/** Accepts `good-<userId>`, refuses anything else with login code 1031. */
const byToken: Handler = (b, res) => json(res, b.token === `good-${b.userId}` ? { ok: true } : { ok: false, code: 1031 });

async function webhookServer(webhook: WebhookAuthOptions, extra: Parameters<typeof setup>[0] = {}) {
  return setup({ auth: { webhook }, tcp: false, udp: false, ...extra });
}

describe('webhook authentication', () => {
  it('POSTs {userId, token, extra} as JSON, accepts on 200 {ok: true} and refuses with the code the backend gives', async () => {
    const b = await backend(byToken);
    const logger = recordingLogger();
    const { server, ws } = await webhookServer({ url: b.url, headers: { authorization: 'Bearer backend-key' } }, { logger });
    expect(await tryLogin(await ws(), 'bob', 'good-bob')).toMatchObject({ code: 0, closed: false });
    expect(b.requests[0].body).toEqual({ userId: 'bob', token: 'good-bob', extra: 'x' });
    expect(b.requests[0].headers).toMatchObject({ 'content-type': 'application/json', authorization: 'Bearer backend-key' });
    expect(await tryLogin(await ws(), 'bob', 'good-mallory')).toEqual({ code: 1031, firstLoginTime: -1, closed: true });
    expect(server.onlineUsers()).toEqual(['bob']);
    expect(logger.lines.find((l) => l.includes('login refused'))).toMatch(/^info: login refused \{"user":"bob","code":1031,"reason":"backend refused with code 1031",/);
    expect(logger.lines.join('\n')).not.toContain('good-mallory');
  });

  it('refuses with 328 on {ok: false} without a code, and on 401/403', async () => {
    let answer: (res: ServerResponse) => void = () => undefined;
    const b = await backend((_b, res) => answer(res));
    const { ws } = await webhookServer({ url: b.url, cacheTtlMs: 0 });
    const cases: Array<(res: ServerResponse) => void> = [(res) => json(res, { ok: false }), (res) => json(res, { ok: 'true', code: 0 }), (res) => json(res, {}, 401), (res) => json(res, {}, 403)];
    for (const c of cases) {
      answer = c;
      expect(await tryLogin(await ws(), 'u1', 't')).toMatchObject({ code: ServerErrorCode.AUTH_INVALID_TOKEN, closed: true });
    }
  });

  it('refuses with 330 when the backend fails: HTTP 500, a redirect, not JSON, an answer over maxResponseBytes, unreachable', async () => {
    let answer: (res: ServerResponse) => void = () => undefined;
    const b = await backend((_b, res) => answer(res));
    const logger = recordingLogger();
    const { ws } = await webhookServer({ url: b.url, maxResponseBytes: 1000 }, { logger });
    const cases: Array<(res: ServerResponse) => void> = [
      (res) => json(res, { ok: true }, 500),
      (res) => res.writeHead(302, { location: '/elsewhere' }).end(),
      (res) => res.writeHead(200).end('<html>ok</html>'),
      (res) => json(res, { ok: true, pad: 'x'.repeat(1000) }),
      (res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(`{"ok":true,"pad":"${'x'.repeat(600)}`);
        res.end(`${'x'.repeat(600)}"}`);
      },
    ];
    for (const c of cases) {
      answer = c;
      expect(await tryLogin(await ws(), 'u1', 't')).toMatchObject({ code: ServerErrorCode.AUTH_UNAVAILABLE, closed: true });
    }
    answer = (res) => json(res, { ok: true, pad: 'x'.repeat(900) });
    expect(await tryLogin(await ws(), 'u1', 't')).toMatchObject({ code: 0 });
    expect(logger.lines.filter((l) => l.startsWith('warn: login refused')).length).toBe(cases.length);

    const closedPort = Number(new URL(b.url).port);
    b.srv.closeAllConnections();
    await new Promise((r) => b.srv.close(r));
    expect(await tryLogin(await ws(), 'u2', 't')).toMatchObject({ code: ServerErrorCode.AUTH_UNAVAILABLE });
    expect(closedPort).toBeGreaterThan(0);
  });

  it('refuses with 330 when the backend does not answer within timeoutMs', async () => {
    const held: ServerResponse[] = [];
    const b = await backend((_b, res) => held.push(res));
    const { server, ws } = await webhookServer({ url: b.url, timeoutMs: 200 });
    expect(await tryLogin(await ws(), 'u1', 't')).toMatchObject({ code: ServerErrorCode.AUTH_UNAVAILABLE, closed: true });
    expect(held.length).toBe(1);
    expect(server.onlineUsers()).toEqual([]);
  });

  it('times out at timeoutMs exactly (fake clock): pending at 1 ms before, refused at it', async () => {
    let arrived!: () => void;
    const requestArrived = new Promise<void>((r) => (arrived = r));
    const b = await backend(() => arrived());
    // 60 s: if the deadline were not on the (fake) timers, this test would run into its own timeout.
    const auth = createWebhookAuth({ url: b.url, timeoutMs: 60000 });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let outcome: unknown = 'pending';
    const settled = auth.verify('u1', 't', null).then((v) => (outcome = v));
    await requestArrived;
    await vi.advanceTimersByTimeAsync(59999);
    expect(outcome).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    await settled;
    expect(outcome).toEqual({ ok: false, code: ServerErrorCode.AUTH_UNAVAILABLE, reason: 'backend did not answer within 60000 ms' });
  });

  it('refuses with 331, without asking the backend, beyond maxInFlight requests, and takes new ones once answers came', async () => {
    const held: ServerResponse[] = [];
    const b = await backend((_b, res) => held.push(res));
    const { server, ws } = await webhookServer({ url: b.url, maxInFlight: 2 });
    const first = [tryLogin(await ws(), 'u1', 't1'), tryLogin(await ws(), 'u2', 't2')];
    await vi.waitFor(() => expect(held.length).toBe(2), { interval: 5, timeout: 2000 });
    expect(await tryLogin(await ws(), 'u3', 't3')).toMatchObject({ code: ServerErrorCode.AUTH_BUSY, closed: true });
    expect(b.requests.length).toBe(2);
    for (const res of held.splice(0)) json(res, { ok: true });
    expect(await Promise.all(first)).toMatchObject([{ code: 0 }, { code: 0 }]);
    const later = tryLogin(await ws(), 'u3', 't3');
    await vi.waitFor(() => expect(held.length).toBe(1), { interval: 5, timeout: 2000 });
    json(held[0], { ok: true });
    expect(await later).toMatchObject({ code: 0 });
    expect(server.onlineUsers().sort()).toEqual(['u1', 'u2', 'u3']);
  });

  it('reuses an answer for the same user, token and extra within cacheTtlMs, never for another token', async () => {
    const b = await backend(byToken);
    const { ws } = await webhookServer({ url: b.url, cacheTtlMs: 1000 });
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    const t0 = Date.now();
    expect(await tryLogin(await ws(), 'bob', 'good-bob')).toMatchObject({ code: 0 });
    expect(await tryLogin(await ws(), 'bob', 'good-bob')).toMatchObject({ code: 0 });
    expect(b.requests.length).toBe(1);
    // Another token for the same user is asked about, and refused, although bob's good answer is cached.
    expect(await tryLogin(await ws(), 'bob', 'stolen')).toMatchObject({ code: 1031 });
    expect(await tryLogin(await ws(), 'bob', 'stolen')).toMatchObject({ code: 1031 });
    expect(b.requests.map((r) => r.body.token)).toEqual(['good-bob', 'stolen']);
    vi.setSystemTime(t0 + 999);
    expect(await tryLogin(await ws(), 'bob', 'good-bob')).toMatchObject({ code: 0 });
    expect(b.requests.length).toBe(2);
    vi.setSystemTime(t0 + 1000);
    expect(await tryLogin(await ws(), 'bob', 'good-bob')).toMatchObject({ code: 0 });
    expect(b.requests.length).toBe(3);
  });

  it('never caches a backend failure, and keeps at most cacheMaxEntries answers', async () => {
    let fail = true;
    const b = await backend((body, res) => (fail ? json(res, {}, 503) : byToken(body, res, undefined as never)));
    const { ws } = await webhookServer({ url: b.url, cacheMaxEntries: 2 });
    expect(await tryLogin(await ws(), 'u1', 'good-u1')).toMatchObject({ code: ServerErrorCode.AUTH_UNAVAILABLE });
    fail = false;
    expect(await tryLogin(await ws(), 'u1', 'good-u1')).toMatchObject({ code: 0 });
    expect(b.requests.length).toBe(2);
    expect(await tryLogin(await ws(), 'u2', 'good-u2')).toMatchObject({ code: 0 });
    expect(await tryLogin(await ws(), 'u3', 'good-u3')).toMatchObject({ code: 0 });
    expect(b.requests.length).toBe(4);
    expect(await tryLogin(await ws(), 'u3', 'good-u3')).toMatchObject({ code: 0 });
    expect(b.requests.length).toBe(4);
    expect(await tryLogin(await ws(), 'u1', 'good-u1')).toMatchObject({ code: 0 });
    expect(b.requests.length).toBe(5);
  });

  it('validates its options at start', async () => {
    const bad: Array<[WebhookAuthOptions, RegExp]> = [
      [{ url: 'not a url' }, /auth\.webhook\.url must be an absolute http\(s\) URL/],
      [{ url: 'file:///etc/passwd' }, /auth\.webhook\.url must be http: or https:/],
      [{ url: 'http://127.0.0.1/', timeoutMs: 0 }, /auth\.webhook\.timeoutMs/],
      [{ url: 'http://127.0.0.1/', maxInFlight: 1.5 }, /auth\.webhook\.maxInFlight/],
      [{ url: 'http://127.0.0.1/', cacheTtlMs: -1 }, /auth\.webhook\.cacheTtlMs/],
      [{ url: 'http://127.0.0.1/', cacheMaxEntries: 0 }, /auth\.webhook\.cacheMaxEntries/],
      [{ url: 'http://127.0.0.1/', maxResponseBytes: Number.NaN }, /auth\.webhook\.maxResponseBytes/],
    ];
    for (const [webhook, message] of bad) {
      await expect(createServer({ auth: { webhook }, ws: { port: 0 }, tcp: false, udp: false, http: false, logger: silentLogger })).rejects.toThrow(message);
    }
  });
});
