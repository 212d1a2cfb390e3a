import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineScripts, MAX_BATCH_CALLS, mayHaveWrittenBeforeFailing, NotSentError, ScriptBatcher, watchStall } from '../../server/src/redis-scripts';
import { startRedisServer, type RedisServer } from '../helpers/redis-server';

/** Batched scripts (redis-scripts.ts): calls of one turn go as one command, each answered as if alone. */

let redis: RedisServer;
let prefixes = 0;
beforeAll(async () => void (redis = await startRedisServer()));
afterAll(() => redis?.stop());

/** A script with every kind of answer: a number, a string, an array, nil, an error reply and a failed redis.call. */
const LUA = `
local n = redis.call('INCR', KEYS[1])
redis.call('RPUSH', KEYS[2], ARGV[1])
if ARGV[1] == 'nil' then return nil end
if ARGV[1] == 'array' then return {n, ARGV[2]} end
if ARGV[1] == 'reply-error' then return redis.error_reply('refused ' .. ARGV[2]) end
if ARGV[1] == 'call-error' then return redis.call('INCR', KEYS[2]) end
if ARGV[1] == 'string' then return ARGV[2] end
return n
`;

async function open() {
  const client = new Redis(redis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0 });
  await new Promise((r) => client.once('ready', r));
  const p = `b${++prefixes}:`;
  const run = defineScripts(client, { tBatched: [2, LUA, 'batched'], tSingle: [2, LUA] });
  return { client, p, batched: run('tBatched'), single: run('tSingle') };
}

/** How many EVALSHA and EVAL commands Redis has run so far (INFO commandstats). */
async function scriptCommands(client: Redis): Promise<number> {
  const info = await client.info('commandstats');
  let n = 0;
  for (const m of info.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)) n += Number(m[1]);
  return n;
}

describe('defineScripts with batched scripts', () => {
  it('sends the calls made in one turn as one command, each answered with its own result, in order', async () => {
    const { client, p, batched } = await open();
    try {
      await batched(`${p}n`, `${p}log`, 'warm'); // loads both forms' scripts (NOSCRIPT → EVAL) outside the count
      await Promise.all([batched(`${p}n`, `${p}log`, 'x'), batched(`${p}n`, `${p}log`, 'y')]);
      const before = await scriptCommands(client);
      const answers = await Promise.allSettled([
        batched(`${p}n`, `${p}log`, 'number'),
        batched(`${p}n`, `${p}log`, 'nil'),
        batched(`${p}n`, `${p}log`, 'array', 'ä文'),
        batched(`${p}n`, `${p}log`, 'reply-error', 'this one'),
        batched(`${p}n`, `${p}log`, 'call-error'),
        batched(`${p}n`, `${p}log`, 'string', ''),
        batched(`${p}other`, `${p}log`, 'number'),
      ]);
      // One command for the seven (the INFO call itself is not a script).
      expect((await scriptCommands(client)) - before).toBe(1);
      expect(answers.map((a) => (a.status === 'fulfilled' ? a.value : `rejected: ${(a.reason as Error).message}`))).toEqual([
        4,
        null,
        [6, 'ä文'],
        'rejected: refused this one',
        expect.stringMatching(/^rejected: .*(not an integer|WRONGTYPE)/),
        '',
        1,
      ]);
      // Every call ran, in the order made, the failed ones' writes before their error included (as alone).
      expect(await client.lrange(`${p}log`, 0, -1)).toEqual(['warm', 'x', 'y', 'number', 'nil', 'array', 'reply-error', 'call-error', 'string', 'number']);
    } finally {
      client.disconnect();
    }
  });

  it('answers like the single script for the same calls', async () => {
    const { client, p, batched, single } = await open();
    try {
      const kinds = ['number', 'nil', 'array', 'string'];
      const a = await Promise.all(kinds.map((k) => batched(`${p}a`, `${p}la`, k, 'v')));
      const b = await Promise.all(kinds.map((k) => single(`${p}b`, `${p}lb`, k, 'v')));
      expect(a).toEqual(b);
    } finally {
      client.disconnect();
    }
  });

  it('sends shared arguments once per batch: each call sees them before its own, and a change of them starts a new command', async () => {
    const client = new Redis(redis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    await new Promise((r) => client.once('ready', r));
    const p = `s${++prefixes}:`;
    // Two shared arguments, then the call's own: it answers with all it saw, and logs to the shared key name.
    const lua = `redis.call('RPUSH', ARGV[1], ARGV[3]) return {KEYS[1], ARGV[1], ARGV[2], ARGV[3], #ARGV}`;
    const run = defineScripts(client, { tShared: [1, lua, 'batched', 2], tAlone: [1, lua] });
    const shared = run('tShared');
    const alone = run('tAlone');
    try {
      await shared('k', `${p}log`, 'x', 'warm');
      const calls: Array<[string, string, string, string]> = [
        ['k1', `${p}log`, 'x', 'a'],
        ['k2', `${p}log`, 'x', 'b'],
        ['k3', `${p}log`, 'y', 'c'],
        ['k4', `${p}other`, 'y', 'd'],
        ['k5', `${p}other`, 'y', 'e'],
      ];
      const before = await scriptCommands(client);
      const batched = await Promise.all(calls.map((c) => shared(...c)));
      // Three runs of equal shared arguments: three commands for five calls.
      expect((await scriptCommands(client)) - before).toBe(3);
      expect(batched).toEqual(await Promise.all(calls.map((c) => alone(...c))));
      expect(batched[2]).toEqual(['k3', `${p}log`, 'y', 'c', 3]);
      // In the order made, across the commands.
      expect(await client.lrange(`${p}log`, 0, -1)).toEqual(['warm', 'a', 'b', 'c', 'a', 'b', 'c']);
      expect(await client.lrange(`${p}other`, 0, -1)).toEqual(['d', 'e', 'd', 'e']);
    } finally {
      client.disconnect();
    }
  });

  it(`splits a turn's calls into commands of at most ${MAX_BATCH_CALLS}`, async () => {
    const { client, p, batched } = await open();
    try {
      await batched(`${p}n`, `${p}log`, 'warm');
      await Promise.all([batched(`${p}n`, `${p}log`, 'x'), batched(`${p}n`, `${p}log`, 'y')]);
      const before = await scriptCommands(client);
      const n = MAX_BATCH_CALLS * 2 + 1;
      const answers = await Promise.all(Array.from({ length: n }, () => batched(`${p}n`, `${p}log`, 'number')));
      expect(answers).toEqual(Array.from({ length: n }, (_, i) => i + 4));
      expect((await scriptCommands(client)) - before).toBe(3);
    } finally {
      client.disconnect();
    }
  });

  it('fails every call of a turn with NotSentError, writing nothing, when the connection is down or stalled', async () => {
    const { client, p, batched } = await open();
    try {
      watchStall(client, () => 'a test says so');
      await expect(batched(`${p}n`, `${p}log`, 'number')).rejects.toBeInstanceOf(NotSentError);
      watchStall(client, null);
      const pending = [batched(`${p}n`, `${p}log`, 'number'), batched(`${p}n`, `${p}log`, 'number')];
      client.disconnect(); // before the turn ends: the batch finds the connection gone
      for (const r of await Promise.allSettled(pending)) expect(r.status === 'rejected' && r.reason).toBeInstanceOf(NotSentError);
      const admin = new Redis(redis.url);
      try {
        expect(await admin.exists(`${p}n`, `${p}log`)).toBe(0);
      } finally {
        admin.disconnect();
      }
    } finally {
      client.disconnect();
    }
  });
});

describe('a batch whose answer leaves a call out', () => {
  it('fails that call as one that may have written: the batch ran, so the call may have', async () => {
    // A connected client as far as the batcher looks, and a batch answer with the first call's entry only.
    const client = { status: 'ready', stream: { writable: true, writableEnded: false } } as unknown as Redis;
    const batcher = new ScriptBatcher(client, 1, 0, { one: async () => 'one', many: async () => [[1, 'first']] }, () => null);
    const [first, second] = await Promise.allSettled([batcher.call(['k1', 'a']), batcher.call(['k2', 'b'])]);
    expect(first).toEqual({ status: 'fulfilled', value: 'first' });
    expect(second.status).toBe('rejected');
    expect(mayHaveWrittenBeforeFailing((second as PromiseRejectedResult).reason)).toBe(true);
  });
});
