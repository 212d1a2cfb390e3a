import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame } from '../../src/protocol';
import { ServerErrorCode, silentLogger, SqliteOfflineStore, type Logger, type OfflineStore } from '../../server/src/index';
import { parseCli } from '../../server/src/cli-args';
import { cliPath, ensureServerBuilt } from './child-server';
import { ackFrame, admin, dataFrame, errorOf, login, loginFrame, startServer, useServers, type Frame, type RawClient } from './helpers';

const { setup } = useServers();
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'im-store-'));
  dirs.push(d);
  return d;
}

/** The bytes the server stores for a data frame (its own encoding of it). */
function storedBytes(frame: Frame): number {
  return Buffer.byteLength(encodeFrame(decodeFrame(JSON.stringify(frame))), 'utf8');
}

/** The next answer about `fp` from the server: its ACK (type 4) or an error naming it (type 52). */
async function answerFor(c: RawClient, fp: string): Promise<{ ack: true } | { error: number }> {
  const f = await c.next((x) => (x.type === 4 && x.dataContent === fp) || (x.type === 52 && JSON.parse(x.dataContent as string).fp === fp));
  return f.type === 4 ? { ack: true } : { error: errorOf(f).errorCode };
}

describe('global offline store quota', () => {
  it('refuses a message over the row limit with error 324 and no ACK, accepts a retransmission of a stored one, and takes new ones once a row is freed', async () => {
    const { server, ws } = await setup({ maxStoredMessages: 3 });
    const a = await ws();
    await login(a, 'sender');
    for (let i = 1; i <= 3; i++) {
      a.send(dataFrame('sender', `r${i}`, `m${i}`, `fp-q${i}`));
      expect(await answerFor(a, `fp-q${i}`)).toEqual({ ack: true });
    }
    a.send(dataFrame('sender', 'r4', 'm4', 'fp-q4'));
    expect(await answerFor(a, 'fp-q4')).toEqual({ error: ServerErrorCode.OFFLINE_STORE_FULL });
    a.send(dataFrame('sender', 'r1', 'm1', 'fp-q1'));
    expect(await answerFor(a, 'fp-q1')).toEqual({ ack: true });
    expect((await server.sendToUser('r5', 'push')).status).toBe('quota');
    expect((await admin(server.ports.http!, 'POST', '/api/send', { to: 'r5', content: 'push' })).json.status).toBe('quota');
    expect(server.metrics().offlinePending).toBe(3);

    const r1 = await ws();
    await login(r1, 'r1');
    r1.send(ackFrame('r1', 'sender', (await r1.nextOfType(2)).fp as string));
    await expect.poll(() => server.metrics().offlinePending).toBe(2);
    a.send(dataFrame('sender', 'r4', 'm4 again', 'fp-q4'));
    expect(await answerFor(a, 'fp-q4')).toEqual({ ack: true });
    expect(a.frames.filter((f) => f.type === 4).map((f) => f.dataContent)).toEqual(['fp-q1', 'fp-q2', 'fp-q3', 'fp-q1', 'fp-q4']);
  });

  it('refuses a message that would take the stored frames over the byte limit, and accepts one that fits exactly', async () => {
    const big = (i: number) => dataFrame('sender', `b${i}`, 'x'.repeat(300), `fp-b${i}`);
    const small = dataFrame('sender', 'b9', 'y', 'fp-small');
    const limit = storedBytes(big(1)) + storedBytes(big(2)) + storedBytes(small);
    const { server, ws } = await setup({ maxStoredBytes: limit });
    const a = await ws();
    await login(a, 'sender');
    for (const i of [1, 2]) {
      a.send(big(i));
      expect(await answerFor(a, `fp-b${i}`)).toEqual({ ack: true });
    }
    a.send(big(3));
    expect(await answerFor(a, 'fp-b3')).toEqual({ error: ServerErrorCode.OFFLINE_STORE_FULL });
    a.send(small);
    expect(await answerFor(a, 'fp-small')).toEqual({ ack: true });
    a.send(dataFrame('sender', 'b8', 'z', 'fp-one-more'));
    expect(await answerFor(a, 'fp-one-more')).toEqual({ error: ServerErrorCode.OFFLINE_STORE_FULL });
    expect(server.metrics().offlinePending).toBe(3);
  });
});

describe('store limit flags', () => {
  it('reads the store limits from flags and environment variables, and refuses values below 1', () => {
    const { options } = parseCli(['--max-stored-bytes', '1000', '--message-ttl-ms=5000', '--max-offline-per-user', '9'], { IM_MAX_STORED_MESSAGES: '7' });
    expect(options).toMatchObject({ maxStoredBytes: 1000, messageTtlMs: 5000, maxOfflinePerUser: 9, maxStoredMessages: 7 });
    expect(() => parseCli(['--message-ttl-ms', '0'], {})).toThrow(/--message-ttl-ms/);
    expect(() => parseCli([], { IM_MAX_STORED_BYTES: '-5' })).toThrow(/--max-stored-bytes/);
  });
});

describe('message receivers follow the login rules for user ids', () => {
  it('refuses a blank, reserved or over-long "to" with error 317 naming the fp, stores nothing, and accepts 256 characters', async () => {
    const { server, ws } = await setup();
    const a = await ws();
    await login(a, 'sender');
    const bad = ['   ', '-1', '\t', 'x'.repeat(257), 'é'.repeat(257)];
    for (const [i, to] of bad.entries()) {
      a.send(dataFrame('sender', to, 'hello', `fp-bad${i}`));
      expect(await answerFor(a, `fp-bad${i}`)).toEqual({ error: ServerErrorCode.BAD_MESSAGE });
    }
    a.send(dataFrame('sender', 'x'.repeat(256), 'hello', 'fp-longest'));
    expect(await answerFor(a, 'fp-longest')).toEqual({ ack: true });
    a.send(dataFrame('sender', ' ', 'no qos', null, false));
    expect(errorOf(await a.nextOfType(52)).errorCode).toBe(ServerErrorCode.BAD_MESSAGE);
    expect(server.metrics().offlinePending).toBe(1);
    await expect(server.sendToUser(' ', 'x')).rejects.toThrow(TypeError);
    await expect(server.sendToUser('x'.repeat(257), 'x')).rejects.toThrow(TypeError);
    expect((await admin(server.ports.http!, 'POST', '/api/send', { to: 'x'.repeat(257), content: 'x' })).status).toBe(400);

    const long = await ws();
    long.send(loginFrame('x'.repeat(257)));
    expect(errorOf(await long.nextOfType(52)).errorCode).toBe(ServerErrorCode.BAD_FRAME);
  });

  it('answers error 318 naming the fp when a beforeC2C hook rewrites the receiver to one no user can be', async () => {
    const { server, ws } = await setup({ hooks: { beforeC2C: (m) => ({ ...m, to: 'x'.repeat(300) }) } });
    const a = await ws();
    await login(a, 'sender');
    a.send(dataFrame('sender', 'fine', 'hello', 'fp-rewritten'));
    expect(await answerFor(a, 'fp-rewritten')).toEqual({ error: ServerErrorCode.SERVER_ERROR });
    expect(server.metrics().offlinePending).toBe(0);
  });
});

describe('the data directory', () => {
  it('notices its deletion while running: error 325 instead of an ACK, /health 503, an error log naming the file', async () => {
    const dir = tempDir();
    const errors: string[] = [];
    const logger: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: (m: string) => void errors.push(m) };
    const { server, ws } = await setup({ dataDir: dir, logger });
    const a = await ws();
    await login(a, 'sender');
    const live = await ws();
    await login(live, 'live');
    a.send(dataFrame('sender', 'away', 'before', 'fp-before'));
    expect(await answerFor(a, 'fp-before')).toEqual({ ack: true });
    expect((await admin(server.ports.http!, 'GET', '/health', undefined, null)).status).toBe(200);

    rmSync(dir, { recursive: true, force: true });
    a.send(dataFrame('sender', 'away', 'after', 'fp-after'));
    expect(await answerFor(a, 'fp-after')).toEqual({ error: ServerErrorCode.STORE_UNAVAILABLE });
    a.send(dataFrame('sender', 'live', 'to someone online', 'fp-live'));
    expect(await answerFor(a, 'fp-live')).toEqual({ error: ServerErrorCode.STORE_UNAVAILABLE });
    expect(await live.quiet(100)).toEqual([]);
    expect(a.frames.filter((f) => f.type === 4).map((f) => f.dataContent)).toEqual(['fp-before']);
    expect((await server.sendToUser('away', 'push')).status).toBe('unavailable');

    const health = await admin(server.ports.http!, 'GET', '/health', undefined, null);
    expect(health.status).toBe(503);
    expect(health.json).toMatchObject({ status: 'degraded', store: { ok: false } });
    expect((await server.health()).status).toBe('degraded');
    expect(errors.filter((m) => m.includes(join(dir, 'offline.db')))).toHaveLength(1);
  });

  it('answers error 325 and keeps the connection when a custom store fails to write, instead of closing it with 318', async () => {
    const inner = new SqliteOfflineStore(null, { logger: silentLogger });
    const failing: OfflineStore = {
      put: () => Promise.reject(new Error('disk on fire')),
      list: (to, after, limit) => inner.list(to, after, limit),
      remove: (to, from, fp) => inner.remove(to, from, fp),
      count: (to) => inner.count(to),
      total: () => inner.total(),
      close: () => inner.close(),
    };
    try {
      const { ws } = await setup({ store: failing });
      const a = await ws();
      await login(a, 'sender');
      a.send(dataFrame('sender', 'away', 'x', 'fp-fire'));
      expect(await answerFor(a, 'fp-fire')).toEqual({ error: ServerErrorCode.STORE_UNAVAILABLE });
      a.send({ type: 1, dataContent: '{}', from: 'sender', to: '0' });
      expect((await a.nextOfType(51)).type).toBe(51);
    } finally {
      inner.close();
    }
  });

  it('refuses to start on an unusable data directory with an error that names the path', async () => {
    const dir = tempDir();
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a directory');
    await expect(startServer({ dataDir: file })).rejects.toThrow(`data directory "${file}" is not usable: it is a file`);
    const under = join(file, 'sub');
    await expect(startServer({ dataDir: under })).rejects.toThrow(`data directory "${under}" is not usable`);
    const dbIsDir = join(dir, 'db-is-a-dir');
    mkdirSync(join(dbIsDir, 'offline.db'), { recursive: true });
    await expect(startServer({ dataDir: dbIsDir })).rejects.toThrow(`data directory "${dbIsDir}" is not usable`);
  });

  it('the CLI exits with status 1 and an error naming the unusable data directory', () => {
    ensureServerBuilt();
    const file = join(tempDir(), 'a-file');
    writeFileSync(file, 'x');
    const run = spawnSync(
      process.execPath,
      [cliPath, '--data-dir', file, '--ws-port', '0', '--tcp-port', '-1', '--udp-port', '-1', '--http-port', '-1', '--host', '127.0.0.1'],
      { encoding: 'utf8', timeout: 15000 },
    );
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`data directory "${file}" is not usable: it is a file`);
  }, 60000);
});
