import { ReplyError, type Redis } from 'ioredis';

/** Runs a script defined by {@link defineScripts}: its keys, then its arguments. */
export type RunScript = (...args: Array<string | number>) => Promise<unknown>;

/** A command refused before it went out (Redis stalled or not connected): Redis cannot have applied it. */
export class NotSentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotSentError';
  }
}

/** The error one call of a batched script ({@link batchLua}) raised while it ran. */
export class ScriptCallError extends (ReplyError as new (message: string) => Error) {}

/**
 * The refusals Redis makes of a write command in a script only while the script has run no write command
 * yet (script.c, scriptVerifyOOM and scriptVerifyWriteCommandAllow): over maxmemory, a failed RDB save
 * with stop-writes-on-bgsave-error, a read-only replica, too few replicas for min-replicas-to-write.
 */
const REFUSED_BEFORE_ANY_WRITE = /^(?:OOM|MISCONF|READONLY|NOREPLICAS) /;

/**
 * Whether a script that failed may have written before it failed. Redis undoes none of a script's writes
 * when a later command in it fails (WRONGTYPE, a command the user's ACL denies, a Lua error), so its
 * answer is an error although part of its work is done. Not an error raised before the script ran
 * (NOSCRIPT, BUSY, an ACL refusal of the script itself), and not a refusal that only a script's first
 * write can meet ({@link REFUSED_BEFORE_ANY_WRITE}). Checked against Redis 7.0's replies.
 */
export function mayHaveWrittenBeforeFailing(err: unknown): boolean {
  if (!(err instanceof ReplyError)) return false;
  const message = (err as Error).message;
  return !REFUSED_BEFORE_ANY_WRITE.test(message) && (err instanceof ScriptCallError || /user_script:\d+/.test(message));
}

/** Per connection: says why its Redis is stalled now, or null (see {@link watchStall}). */
const stallChecks = new WeakMap<Redis, () => string | null>();

/** Per connection: the batchers of its batched scripts, sent before any other script made after their calls. */
const batchers = new WeakMap<Redis, ScriptBatcher[]>();

/** Sends the batched calls still waiting on `client` now, so a script made after them runs after them. */
function flushBatches(client: Redis): void {
  for (const b of batchers.get(client) ?? []) b.flushNow();
}

/**
 * Gives a connection a check of whether its Redis is stalled (a reason) or not (null), asked before each
 * script run through {@link defineScripts} on it: while stalled, scripts fail at once instead of waiting
 * out the command timeout, so a sender gets its refusal, and the frames queued behind it on its
 * connection (a keep-alive) their answers, without seconds of waiting per command. null removes it.
 */
export function watchStall(client: Redis, check: (() => string | null) | null): void {
  if (check) stallChecks.set(client, check);
  else stallChecks.delete(client);
}

/**
 * ioredis refuses a command at once, unwritten, when its connection cannot take it (no offline queue):
 * that refusal becomes a {@link NotSentError}; any other failure is passed on as it is.
 */
function notSentWhenRefused(err: unknown): never {
  if (err instanceof Error && err.message.startsWith("Stream isn't writeable")) throw new NotSentError(`redis: not sent, the connection is closing or closed (${err.message})`);
  throw err;
}

/** Why `client` cannot take a command now (ioredis's own test: ready, with a stream that can be written), or null. */
export function unwritable(client: Redis): string | null {
  if (client.status !== 'ready') return `Redis is not connected (${client.status})`;
  const stream = client.stream as { writable?: boolean; writableEnded?: boolean } | undefined;
  if (!stream?.writable || stream.writableEnded) return 'the connection to Redis is closing';
  return null;
}

/** A bound as a script argument Lua can read (it has no Infinity literal): Infinity becomes 1e300. */
export function finite(n: number): number {
  return Number.isFinite(n) ? n : 1e300;
}

/**
 * A script: its number of keys, its Lua, whether calls made in one turn go to Redis together
 * ({@link ScriptBatcher}), and for those how many of the arguments right after the keys are shared: the
 * same for most calls (key names and limits of the store), so a batch of calls with equal shared
 * arguments carries them once instead of once per call.
 */
export type ScriptDef = readonly [numberOfKeys: number, lua: string, batched?: 'batched', sharedArgs?: number];

/**
 * Defines the scripts on a connection and returns a typed caller (failing at once while {@link watchStall}
 * says stalled). A script marked 'batched' also gets its batch form ({@link batchLua}), and its calls go
 * through a {@link ScriptBatcher}: they answer one event-loop turn later, in the order made. A script not
 * batched first sends the batched calls waiting on the connection, so it runs after the calls made before
 * it, as without batches (a replay's list after the removal of an ACKed message sees it removed).
 */
export function defineScripts<K extends string>(client: Redis, scripts: Record<K, ScriptDef>): (name: K) => RunScript {
  const callers = new Map<string, RunScript>();
  const commands = client as unknown as Record<string, RunScript>;
  const stalled = (): string | null => stallChecks.get(client)?.() ?? null;
  for (const [name, [numberOfKeys, lua, batched, sharedArgs = 0]] of Object.entries(scripts) as Array<[string, ScriptDef]>) {
    client.defineCommand(name, { numberOfKeys, lua });
    const single = (args: Array<string | number>): Promise<unknown> => commands[name](...args).catch(notSentWhenRefused);
    // A script not batched waits for nothing: the batched calls made before it go first, as they would alone.
    let send: RunScript = (...args) => {
      flushBatches(client);
      return single(args);
    };
    if (batched) {
      // No numberOfKeys: the batch form takes the key count as its first argument (it varies per batch).
      client.defineCommand(`${name}Batch`, { lua: batchLua(lua) });
      const batcher = new ScriptBatcher(client, numberOfKeys, sharedArgs, {
        one: single,
        // The array as one argument: ioredis flattens it, without a spread of thousands of arguments.
        many: (numKeys, args) => (commands[`${name}Batch`] as unknown as (n: number, a: Array<string | number>) => Promise<unknown>)(numKeys, args).catch(notSentWhenRefused),
      }, stalled);
      batchers.set(client, [...(batchers.get(client) ?? []), batcher]);
      send = (...args) => batcher.call(args);
    }
    callers.set(name, (...args) => {
      const why = stalled();
      if (why) return Promise.reject(new NotSentError(`redis: not sent, Redis is stalled (${why})`));
      return send(...args);
    });
  }
  return (name) => callers.get(name) as RunScript;
}

/** Calls of one script sent together at most (a bigger batch is split): bounds how long one call holds Redis. */
export const MAX_BATCH_CALLS = 128;

/** Argument bytes sent together at most (strings counted by length): a batch of large frames is split sooner. */
export const MAX_BATCH_CHARS = 1024 * 1024;

/** A script call waiting for its batch. */
interface Pending {
  args: Array<string | number>;
  chars: number;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

/** Sends one call of the single script, or of its batch form with the calls' keys and arguments. */
export interface BatchSender {
  one(args: Array<string | number>): Promise<unknown>;
  many(numKeys: number, args: Array<string | number>): Promise<unknown>;
}

/**
 * The batch form of a script whose body reads KEYS and ARGV and returns once: the body becomes a function
 * of its own KEYS and ARGV, run once per call under `pcall`, so one call's error (a Redis error reply, a
 * failed `redis.call`) is that call's answer alone, as when it runs by itself; earlier calls' writes stay,
 * as a script's do. KEYS: each call's `numberOfKeys` keys in turn. ARGV: the key count per call, the
 * number of calls, the number of shared arguments, those arguments (every call's ARGV starts with them),
 * each call's own argument count, then every call's own arguments. Returns one array per call:
 * {1, result} (a nil result: {1}) or {0, message}.
 */
export function batchLua(lua: string): string {
  return `local function one(KEYS, ARGV)
${lua}
end
local nk, n, ns = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local out, ki, ai = {}, 0, ns + n + 4
for i = 1, n do
  local keys, args = {}, {}
  for j = 1, nk do keys[j] = KEYS[ki + j] end
  ki = ki + nk
  for j = 1, ns do args[j] = ARGV[3 + j] end
  local argc = tonumber(ARGV[3 + ns + i])
  for j = 1, argc do args[ns + j] = ARGV[ai + j - 1] end
  ai = ai + argc
  local ok, r = pcall(one, keys, args)
  if ok then
    out[i] = {1, r}
  else
    if type(r) == 'table' then r = r.err or r.message or 'script error' end
    out[i] = {0, tostring(r)}
  end
end
return out
`;
}

/**
 * Gathers the calls of one script made within one turn of the event loop (until `setImmediate`, so the
 * calls of every connection whose data arrived in that turn go together) and sends them as one call of
 * the script's batch form ({@link batchLua}): one command to write, parse and answer instead of one per
 * message, which is most of what a Redis round trip costs a node and Redis at high rates. A lone call
 * goes as the single script. Each call is still atomic and answered alone, in the order made; a failure
 * of the whole command (the connection broke, the command timed out) fails every call in it, as it would
 * have failed each alone, and a batch not sent because the connection is down or stalled fails with
 * {@link NotSentError} (Redis cannot have applied it).
 */
export class ScriptBatcher {
  private queue: Pending[] = [];
  private scheduled = false;

  constructor(
    private readonly client: Redis,
    private readonly numberOfKeys: number,
    private readonly sharedArgs: number,
    private readonly send: BatchSender,
    private readonly stalled: () => string | null,
  ) {}

  /** Queues a call (its keys, then its arguments); settles with that call's own answer. */
  call(args: Array<string | number>): Promise<unknown> {
    let chars = 0;
    for (const a of args) chars += typeof a === 'string' ? a.length : 8;
    return new Promise((resolve, reject) => {
      this.queue.push({ args, chars, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Sends the calls waiting now instead of at the end of the turn (see {@link flushBatches}). */
  flushNow(): void {
    if (this.queue.length > 0) this.flush();
  }

  private flush(): void {
    this.scheduled = false;
    const all = this.queue;
    if (all.length === 0) return;
    this.queue = [];
    const why = unwritable(this.client) ?? this.stalled();
    if (why) {
      const err = new NotSentError(`redis: not sent, ${why}`);
      for (const p of all) p.reject(err);
      return;
    }
    for (let i = 0; i < all.length; ) {
      let chars = 0;
      let end = i;
      while (
        end < all.length &&
        end - i < MAX_BATCH_CALLS &&
        (end === i || (chars + all[end].chars <= MAX_BATCH_CHARS && this.sameShared(all[i].args, all[end].args)))
      ) {
        chars += all[end++].chars;
      }
      this.sendBatch(all.slice(i, end));
      i = end;
    }
  }

  /** Whether two calls' shared arguments are equal (they can go in one batch). */
  private sameShared(a: Array<string | number>, b: Array<string | number>): boolean {
    for (let j = this.numberOfKeys, end = j + this.sharedArgs; j < end; j++) if (a[j] !== b[j]) return false;
    return true;
  }

  private sendBatch(batch: Pending[]): void {
    if (batch.length === 1) {
      const p = batch[0];
      this.send.one(p.args).then(p.resolve, p.reject);
      return;
    }
    const k = this.numberOfKeys;
    const own = k + this.sharedArgs;
    // Keys first, then ARGV as batchLua reads it: counts, the shared arguments once, each call's own.
    const args: Array<string | number> = [];
    for (const p of batch) for (let j = 0; j < k; j++) args.push(p.args[j]);
    const numKeys = args.length;
    args.push(k, batch.length, this.sharedArgs);
    for (let j = k; j < own; j++) args.push(batch[0].args[j]);
    for (const p of batch) args.push(p.args.length - own);
    for (const p of batch) for (let j = own; j < p.args.length; j++) args.push(p.args[j]);
    this.send.many(numKeys, args).then(
      (answers) => {
        const list = answers as unknown[][];
        batch.forEach((p, i) => settleOne(p, list[i]));
      },
      (err: unknown) => {
        for (const p of batch) p.reject(err);
      },
    );
  }
}

/** Settles one call from its entry of a batch's answer ({1, result} or {0, message}). */
function settleOne(p: Pending, entry: unknown[] | undefined): void {
  // The batch ran, so this call may have too: failed as one that may have written.
  if (!Array.isArray(entry)) return p.reject(new ScriptCallError('redis: a batched script gave no answer for this call'));
  if (entry[0] !== 1) return p.reject(new ScriptCallError(String(entry[1])));
  const result = entry.length > 1 ? entry[1] : null;
  // A script's own error reply (redis.error_reply) arrives inside the array as an Error.
  if (result instanceof Error) return p.reject(result);
  p.resolve(result);
}
