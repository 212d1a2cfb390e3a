import { describe, expect, it, vi } from 'vitest';
import { createLogger, SqliteOfflineStore, type OfflineStore } from '../../server/src/index';
import { ackFrame, ADMIN_TOKEN, admin, dataFrame, errorOf, loginFrame, useServers } from './helpers';

const { setup } = useServers();

/** GET a path of the admin API as text. */
async function getText(port: number, path: string, token: string | null = null): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

/** The value of one sample line, e.g. `mobileimsdk_logins_total` or `name{label="x"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** A logger writing JSON lines into an array. */
function capture(nodeId = 'node-under-test') {
  const lines: string[] = [];
  const logger = createLogger({ level: 'info', nodeId, destination: { write: (s: string) => lines.push(...s.split('\n').filter(Boolean)) } });
  return { lines, logger, parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('GET /metrics (Prometheus)', () => {
  it('counts logins, refusals, messages by direction, ACK and relay latency, store writes, and the process metrics', async () => {
    const { server, ws } = await setup({ hooks: { verifyLogin: (uid) => (uid === 'mallory' ? 1026 : 0) } });
    const a = await ws();
    const b = await ws();
    a.send(loginFrame('alice'));
    await a.nextOfType(50);
    b.send(loginFrame('bob'));
    await b.nextOfType(50);
    const m = await ws();
    m.send(loginFrame('mallory'));
    await m.nextOfType(50);
    a.send(dataFrame('alice', 'bob', 'hi bob', 'fp-1'));
    await a.nextOfType(4);
    const got = await b.nextOfType(2);
    b.send(ackFrame('bob', 'alice', got.fp as string));
    a.send(dataFrame('alice', '0', 'to the server', 'fp-2'));
    await a.nextOfType(4);
    await expect.poll(() => server.metrics().delivered).toBe(1);
    await admin(server.ports.http!, 'POST', '/api/send', { to: 'nobody', content: 'stored' });

    const r = await getText(server.ports.http!, '/metrics');
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const t = r.text;
    expect(sample(t, 'mobileimsdk_connections{transport="ws"}')).toBe(2); // mallory's was closed after the refusal
    expect(sample(t, 'mobileimsdk_connections{transport="tcp"}')).toBe(0);
    expect(sample(t, 'mobileimsdk_logins_total')).toBe(2);
    expect(sample(t, 'mobileimsdk_login_refusals_total{code="1026"}')).toBe(1);
    expect(sample(t, 'mobileimsdk_messages_received_total{direction="c2c"}')).toBe(1);
    expect(sample(t, 'mobileimsdk_messages_received_total{direction="c2s"}')).toBe(1);
    expect(sample(t, 'mobileimsdk_messages_sent_total{direction="c2c"}')).toBe(1);
    expect(sample(t, 'mobileimsdk_messages_sent_total{direction="s2c"}')).toBe(0);
    expect(sample(t, 'mobileimsdk_ack_latency_seconds_count')).toBe(1);
    expect(sample(t, 'mobileimsdk_ack_latency_seconds_bucket{le="+Inf"}')).toBe(1);
    expect(sample(t, 'mobileimsdk_relay_latency_seconds_count')).toBe(1);
    expect(sample(t, 'mobileimsdk_store_write_latency_seconds_count')).toBe(2);
    expect(sample(t, 'mobileimsdk_offline_stored_total')).toBe(1);
    expect(sample(t, 'mobileimsdk_offline_pending')).toBe(1);
    expect(sample(t, 'mobileimsdk_delivered_total')).toBe(1);
    expect(sample(t, 'mobileimsdk_online_users')).toBe(2);
    expect(t).toContain('# TYPE mobileimsdk_ack_latency_seconds histogram');
    expect(t).toContain('# TYPE mobileimsdk_logins_total counter');
    expect(t).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(t).toMatch(/^nodejs_eventloop_lag_p99_seconds \d/m);
    // The JSON counters moved to /api/metrics, unchanged.
    const json = (await admin(server.ports.http!, 'GET', '/api/metrics')).json;
    expect(json).toMatchObject({ logins: 2, loginFailures: 1, delivered: 1, offlinePending: 1 });
  });

  it('keeps each server\'s metrics in its own registry', async () => {
    const one = await setup();
    const two = await setup();
    const c = await one.ws();
    c.send(loginFrame('only-on-one'));
    await c.nextOfType(50);
    expect(sample((await getText(one.server.ports.http!, '/metrics')).text, 'mobileimsdk_logins_total')).toBe(1);
    expect(sample((await getText(two.server.ports.http!, '/metrics')).text, 'mobileimsdk_logins_total')).toBe(0);
  });

  it('needs the admin token when the admin API is not on loopback, unless metricsPublic', async () => {
    const open = await setup({ http: { port: 0, host: '0.0.0.0', adminToken: ADMIN_TOKEN } });
    expect((await getText(open.server.ports.http!, '/metrics')).status).toBe(401);
    expect((await getText(open.server.ports.http!, '/metrics', ADMIN_TOKEN)).status).toBe(200);
    const pub = await setup({ http: { port: 0, host: '0.0.0.0', adminToken: ADMIN_TOKEN, metricsPublic: true } });
    expect((await getText(pub.server.ports.http!, '/metrics')).status).toBe(200);
    const local = await setup();
    expect((await getText(local.server.ports.http!, '/metrics')).status).toBe(200);
  });
});

describe('GET /health and /ready', () => {
  it('answer 200 without a token while the store is healthy, 503 with its report when it is not', async () => {
    let healthy = true;
    const inner = new SqliteOfflineStore(null);
    const store: OfflineStore & { health(): unknown } = {
      put: (...a) => inner.put(...a),
      list: (...a) => inner.list(...a),
      remove: (...a) => inner.remove(...a),
      count: (to) => inner.count(to),
      total: () => inner.total(),
      close: () => inner.close(),
      health: () => ({ ok: healthy, detail: healthy ? 'writable' : 'disk full' }),
    };
    const { server } = await setup({ store, nodeId: 'n-7' });
    const port = server.ports.http!;
    expect(await admin(port, 'GET', '/health', undefined, null)).toMatchObject({ status: 200, json: { status: 'ok', node: 'n-7' } });
    expect(await admin(port, 'GET', '/ready', undefined, null)).toMatchObject({ status: 200, json: { ready: true } });
    healthy = false;
    expect(await admin(port, 'GET', '/health', undefined, null)).toMatchObject({ status: 503, json: { status: 'degraded', store: { detail: 'disk full' } } });
    expect(await admin(port, 'GET', '/ready', undefined, null)).toMatchObject({ status: 503, json: { ready: false } });
  });
});

describe('structured logs', () => {
  it('logs start, login (user, gateway, address), refusal (code), kick (code), logout and stop with the node id, never a token or a message', async () => {
    const log = capture();
    const { server, ws, tcp } = await setup({ logger: log.logger, hooks: { verifyLogin: (uid) => (uid === 'mallory' ? 1026 : 0) } });
    const a = await ws();
    a.send(loginFrame('alice', 0, 'alice-secret-token-41'));
    await a.nextOfType(50);
    const b = await tcp();
    b.send(loginFrame('bob', 0, 'bob-secret-token-42'));
    await b.nextOfType(50);
    a.send(dataFrame('alice', 'bob', 'secret message content 43', 'fp-s'));
    await b.nextOfType(2);
    const m = await ws();
    m.send(loginFrame('mallory', 0, 'mallory-secret-token-44'));
    await m.nextOfType(50);
    const anon = await ws();
    anon.send(dataFrame('nobody', 'bob', 'unlogged secret content 45', 'fp-u'));
    await anon.nextOfType(52);
    server.kick('bob', 2, 'maintenance');
    await b.closed;
    await server.close();

    const entries = log.parsed();
    expect(entries.every((e) => e.node === 'node-under-test')).toBe(true);
    const byMsg = (msg: string) => entries.filter((e) => e.msg === msg);
    expect(byMsg('started')).toHaveLength(1);
    expect(byMsg('login')).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ level: 30, user: 'alice', transport: 'ws', remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/) }),
        expect.objectContaining({ level: 30, user: 'bob', transport: 'tcp' }),
      ]),
    );
    expect(byMsg('login refused')).toEqual([expect.objectContaining({ user: 'mallory', code: 1026 })]);
    expect(byMsg('refused')).toEqual([expect.objectContaining({ code: 301, reason: 'not logged in' })]);
    expect(byMsg('kick')).toEqual([expect.objectContaining({ user: 'bob', code: 2 })]);
    expect(byMsg('logout')).toEqual(expect.arrayContaining([expect.objectContaining({ user: 'bob', kickCode: 2 })]));
    expect(byMsg('stopped')).toHaveLength(1);
    const all = log.lines.join('\n');
    for (const secret of ['secret-token', 'secret message content', 'unlogged secret content']) expect(all).not.toContain(secret);
  });

  it('logs at most 50 refusal lines a second, then how many it left out', async () => {
    const log = capture();
    const { ws } = await setup({ logger: log.logger, maxMessageBytes: 300, rateLimit: false });
    const a = await ws();
    a.send(loginFrame('noisy'));
    await a.nextOfType(50);
    // Only Date is faked: sockets and timers run, and the one-second window moves only when told.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const tooBig = (fp: string) => a.send(dataFrame('noisy', 'bob', 'x'.repeat(400), fp));
      const refused = () => log.parsed().filter((e) => e.msg === 'refused').length;
      const suppressed = () => log.parsed().filter((e) => e.msg === 'refusal lines suppressed');
      for (let i = 0; i < 120; i++) tooBig(`fp-${i}`);
      for (let i = 0; i < 120; i++) expect(errorOf(await a.nextOfType(52)).errorCode).toBe(311);
      expect(refused()).toBe(50);
      vi.setSystemTime(Date.now() + 999);
      tooBig('fp-999');
      await a.nextOfType(52);
      expect([refused(), suppressed()]).toEqual([50, []]);
      vi.setSystemTime(Date.now() + 1);
      tooBig('fp-1000');
      await a.nextOfType(52);
      expect(suppressed()).toEqual([expect.objectContaining({ level: 40, suppressed: 71 })]);
      expect(refused()).toBe(51);
    } finally {
      vi.useRealTimers();
    }
  });

  it('folds extra arguments into the line: fields, an Error as err, the rest into the text', () => {
    const log = capture('n1');
    log.logger.warn('a', { user: 'u' }, new Error('boom'), 42);
    log.logger.debug('dropped below info');
    const child = log.logger.child!({ gateway: 'ws' });
    child.error('b');
    const [first, second] = log.parsed();
    expect(first).toMatchObject({ level: 40, msg: 'a 42', user: 'u', err: { message: 'boom' }, node: 'n1' });
    expect(second).toMatchObject({ level: 50, msg: 'b', gateway: 'ws', node: 'n1' });
    expect(log.lines).toHaveLength(2);
    expect(() => createLogger({ level: 'loud' as never })).toThrow(RangeError);
  });

  it('writes readable lines with --log-format pretty', async () => {
    const out: string[] = [];
    const logger = createLogger({ format: 'pretty', nodeId: 'n-pretty', destination: { write: (s: string) => out.push(s) } });
    logger.info('login', { user: 'u1', transport: 'ws' });
    await expect.poll(() => out.join('')).toMatch(/^\[[\d:.]+\] INFO: login\n/);
    expect(out.join('')).toMatch(/node: "n-pretty"/);
    expect(out.join('')).toMatch(/user: "u1"/);
    expect(out.join('')).not.toMatch(/^\{/);
  });
});
