import type { Redis } from 'ioredis';
import type { Protocal } from '../../src/protocol';
import { createConsoleLogger, type Logger } from './logger';
import { isPromise, type MaybePromise } from './maybe-promise';
import type { Presence, PresenceEntry } from './presence';
import { closeOwned, openTarget, watchRedis, whenReady, type RedisTarget } from './redis-client';
import type { QosWaiter, Routing } from './routing';
import { realClock, unref, type StoreClock } from './store-expiry';

/** Options of {@link RedisRouting.open}. */
export interface RedisRoutingOptions {
  /** An ioredis connection (left open by close) or a redis:// URL; the subscriber is a second connection opened here. */
  redis: RedisTarget;
  /** This node's id (its channel is `<prefix>node:<nodeId>`). */
  nodeId: string;
  /** Routing to this node's own sessions: what this node gets, and what other nodes send here, goes there. */
  local: Routing;
  /** Where each user is online. */
  presence: Presence;
  /** Prefix of every key and channel (default 'im:'). */
  keyPrefix?: string;
  /** How often this node takes its dirty set and calls `onRecheck` (default 1000). */
  recheckMs?: number;
  /** Users taken from the dirty set per call (default 1000). */
  recheckBatch?: number;
  /** A dirty set expires this long after its last addition, so a dead node's set does not stay (default 60000). */
  dirtyTtlMs?: number;
  /** Told which of this node's users may have stored messages it was not told of (replay them). */
  onRecheck?(users: string[]): void;
  /** Longest wait for the connections at open (default 10000). */
  connectTimeoutMs?: number;
  clock?: Pick<StoreClock, 'setTimeout' | 'clearTimeout'>;
  logger?: Logger;
}

/** What one node publishes to another's channel. */
type Routed =
  | { t: 'data'; to: string; frame: Protocal }
  | { t: 'receipt'; sender: string; receiver: string; fp: string; atMs: number }
  | { t: 'kick'; user: string; code: number; reason?: string }
  | { t: 'end'; user: string; session: number; firstLoginTime: number; code: number | null };

/**
 * {@link Routing} across nodes through Redis pub/sub. A frame, receipt or kick for a user on another node
 * is published to that node's channel only (`<prefix>node:<id>`); this node's own users go to `local`,
 * and so do the frames other nodes publish here (a dedicated subscriber connection; ioredis subscribes
 * again after a reconnect). Delivery never depends on a notification arriving: a QoS frame is in the
 * store before it is routed, and the node that routes it to another node first adds the receiver to that
 * node's dirty set (`<prefix>dirty:<id>`, in the same MULTI as the PUBLISH); every node takes its dirty
 * set every `recheckMs` and hands those users to `onRecheck`, which replays their stored messages. A
 * message whose notification was lost (subscriber reconnecting) thus arrives within about `recheckMs`.
 */
export class RedisRouting implements Routing {
  private timer: unknown = null;
  private closed = false;
  private failing = false;
  private readonly prefix: string;
  private readonly channel: string;

  private constructor(
    private readonly client: Redis,
    private readonly owned: boolean,
    private readonly sub: Redis,
    private readonly o: Required<Omit<RedisRoutingOptions, 'redis' | 'onRecheck' | 'keyPrefix'>> & Pick<RedisRoutingOptions, 'onRecheck'>,
    keyPrefix: string,
  ) {
    this.prefix = keyPrefix;
    this.channel = this.nodeChannel(o.nodeId);
  }

  /** Connects both connections, subscribes to this node's channel and starts the recheck timer. */
  static async open(options: RedisRoutingOptions): Promise<RedisRouting> {
    if (typeof options.nodeId !== 'string' || options.nodeId === '') throw new TypeError('nodeId must be a non-empty string');
    const recheckMs = options.recheckMs ?? 1000;
    if (!(recheckMs > 0)) throw new RangeError(`recheckMs must be a positive number, got ${String(recheckMs)}`);
    const logger = options.logger ?? createConsoleLogger('info');
    const { client, owned } = openTarget(options.redis, logger, `routing ${options.nodeId}`);
    // The subscriber waits for its connection rather than fail: it only ever sends (re)subscriptions.
    const sub = client.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined, connectionName: `routing-sub-${options.nodeId}`.replace(/[^\w.-]/g, '_') });
    watchRedis(sub, logger, `routing subscriber ${options.nodeId}`);
    const r = new RedisRouting(
      client,
      owned,
      sub,
      {
        nodeId: options.nodeId,
        local: options.local,
        presence: options.presence,
        recheckMs,
        recheckBatch: options.recheckBatch ?? 1000,
        dirtyTtlMs: options.dirtyTtlMs ?? 60_000,
        onRecheck: options.onRecheck,
        connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
        clock: options.clock ?? realClock,
        logger,
      },
      options.keyPrefix ?? 'im:',
    );
    sub.on('message', (channel: string, text: string) => {
      if (channel === r.channel) r.received(text);
    });
    try {
      await whenReady(client, r.o.connectTimeoutMs, `routing ${options.nodeId}`);
      await sub.subscribe(r.channel);
    } catch (err) {
      sub.disconnect();
      await closeOwned(client, owned);
      throw err;
    }
    r.arm();
    return r;
  }

  /** True for a user on another node: that node enforces its QoS table's bound when the frame arrives. */
  async hasRoom(to: string, frame: Protocal): Promise<boolean> {
    const at = await this.o.presence.locate(to);
    if (!at || at.node === this.o.nodeId) return this.o.local.hasRoom(to, frame);
    return true;
  }

  /**
   * See {@link Routing.sendData}. To another node: published, and for a QoS frame the receiver marked
   * dirty there first; `waiter` is told 'lost' at once (the outcome on another node is not reported back,
   * the stored copy stays until the receiver ACKs). False when no node holds `to` or its node is not
   * subscribed (down), or Redis failed: the stored copy is replayed at the receiver's next login or recheck.
   */
  async sendData(to: string, frame: Protocal, waiter?: QosWaiter): Promise<boolean> {
    let at: PresenceEntry | null;
    try {
      at = await this.o.presence.locate(to);
      if (at && at.node !== this.o.nodeId) return await this.sendRemote(at.node, to, frame, waiter);
    } catch (err) {
      this.o.logger.error(`routing: a frame for "${to}" could not be routed (Redis); a stored copy waits for a replay`, err);
      return false;
    }
    return at ? this.o.local.sendData(to, frame, waiter) : false;
  }

  /** See {@link Routing.sendReceipt}. */
  async sendReceipt(sender: string, receiver: string, fp: string, atMs: number): Promise<boolean> {
    const at = await this.o.presence.locate(sender);
    if (!at) return false;
    if (at.node === this.o.nodeId) return this.o.local.sendReceipt(sender, receiver, fp, atMs);
    return this.publish(at.node, { t: 'receipt', sender, receiver, fp, atMs });
  }

  /** See {@link Routing.kickUser}. */
  async kickUser(userId: string, code: number, reason?: string): Promise<boolean> {
    const at = await this.o.presence.locate(userId);
    if (!at) return false;
    if (at.node === this.o.nodeId) return this.o.local.kickUser(userId, code, reason);
    return this.publish(at.node, { t: 'kick', user: userId, code, reason });
  }

  /** See {@link Routing.endSession}: published to the node of `at` when it is not this one. */
  async endSession(at: PresenceEntry, userId: string, kickCode: number | null): Promise<void> {
    if (at.node === this.o.nodeId) return this.o.local.endSession(at, userId, kickCode);
    await this.publish(at.node, { t: 'end', user: userId, session: at.session, firstLoginTime: at.firstLoginTime, code: kickCode });
  }

  /** Marks `userId` for a recheck on `node` (for a message stored for it by other means than sendData). */
  async markDirty(node: string, userId: string): Promise<void> {
    const dirty = this.dirtyKey(node);
    await this.client.multi().sadd(dirty, userId).pexpire(dirty, this.o.dirtyTtlMs).exec();
  }

  /** Takes this node's dirty set now and calls `onRecheck`; runs every `recheckMs` by a timer. */
  async recheck(): Promise<void> {
    for (;;) {
      const users = await this.client.spop(this.dirtyKey(this.o.nodeId), this.o.recheckBatch);
      if (users.length === 0) return;
      try {
        this.o.onRecheck?.(users);
      } catch (err) {
        this.o.logger.error('routing: onRecheck failed', err);
      }
      if (users.length < this.o.recheckBatch) return;
    }
  }

  /** Unsubscribes, stops the recheck and closes the subscriber (and a connection opened here). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.o.clock.clearTimeout(this.timer);
    this.timer = null;
    this.sub.disconnect();
    await closeOwned(this.client, this.owned);
  }

  /** A message another node published here: handed to the local routing. */
  private received(text: string): void {
    let m: Routed;
    try {
      m = JSON.parse(text) as Routed;
    } catch {
      this.o.logger.error(`routing: unreadable message on ${this.channel}`);
      return;
    }
    let done: MaybePromise<unknown>;
    try {
      const local = this.o.local;
      if (m.t === 'data') done = local.sendData(m.to, m.frame);
      else if (m.t === 'receipt') done = local.sendReceipt(m.sender, m.receiver, m.fp, m.atMs);
      else if (m.t === 'kick') done = local.kickUser(m.user, m.code, m.reason);
      else if (m.t === 'end') done = local.endSession({ node: this.o.nodeId, session: m.session, firstLoginTime: m.firstLoginTime }, m.user, m.code);
      else return void this.o.logger.error(`routing: unknown message on ${this.channel}`);
    } catch (err) {
      this.o.logger.error('routing: handling a routed message failed', err);
      return;
    }
    if (isPromise(done)) done.catch((err: unknown) => this.o.logger.error('routing: handling a routed message failed', err));
  }

  /** Publishes a data frame to `node`, a QoS one marking `to` dirty there in the same MULTI. */
  private async sendRemote(node: string, to: string, frame: Protocal, waiter?: QosWaiter): Promise<boolean> {
    const tx = this.client.multi();
    if (frame.QoS && frame.fp) {
      const dirty = this.dirtyKey(node);
      tx.sadd(dirty, to).pexpire(dirty, this.o.dirtyTtlMs);
    }
    tx.publish(this.nodeChannel(node), JSON.stringify({ t: 'data', to, frame } satisfies Routed));
    const replies = await tx.exec();
    const receivers = replies?.[replies.length - 1]?.[1];
    if (frame.QoS && frame.fp) waiter?.('lost');
    return typeof receivers === 'number' && receivers > 0;
  }

  private async publish(node: string, m: Routed): Promise<boolean> {
    return (await this.client.publish(this.nodeChannel(node), JSON.stringify(m))) > 0;
  }

  private nodeChannel(node: string): string {
    return `${this.prefix}node:${node}`;
  }

  private dirtyKey(node: string): string {
    return `${this.prefix}dirty:${node}`;
  }

  private arm(): void {
    if (this.closed) return;
    this.timer = this.o.clock.setTimeout(() => {
      this.recheck().then(
        () => {
          if (this.failing) this.o.logger.info('routing: recheck works again');
          this.failing = false;
          this.arm();
        },
        (err: unknown) => {
          if (!this.failing) this.o.logger.error('routing: taking the dirty set failed; retrying', err);
          this.failing = true;
          this.arm();
        },
      );
    }, this.o.recheckMs);
    unref(this.timer);
  }
}
