import type { Redis } from 'ioredis';
import type { Protocal } from '../../src/protocol';
import { countDown, countUp, FlatMap } from './flat-map';
import { createConsoleLogger, type Logger } from './logger';
import { isPromise, type MaybePromise } from './maybe-promise';
import type { PresenceEntry } from './presence';
import { ROUTE_LUA } from './presence-redis-lua';
import { closeOwned, openTarget, whenReady, type RedisTarget } from './redis-client';
import { defineScripts, type RunScript } from './redis-scripts';
import { OutcomeWaiters } from './outcome-waiters';
import type { Routed } from './routed';
import type { QosOutcome } from './qos-s2c';
import type { QosWaiter, Routing } from './routing';
import { NodeSubscriber } from './routing-subscriber';
import { realClock, unref, type StoreClock } from './store-expiry';

/** How long a node's dirty set lives after its last addition unless `dirtyTtlMs` says otherwise. */
export const DEFAULT_DIRTY_TTL_MS = 60_000;

/** Options of {@link RedisRouting.open}. */
export interface RedisRoutingOptions {
  /** An ioredis connection (left open by close) or a redis:// URL; the subscriber is a second connection opened here. */
  redis: RedisTarget;
  /** This node's id (its channel is `<prefix>node:<nodeId>`). */
  nodeId: string;
  /**
   * Routing to this node's own sessions: what this node gets, and what other nodes send here, goes there.
   * May be given later with {@link RedisRouting.bindLocal} (a server builds it after the seams are open).
   */
  local?: Routing;
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
  /**
   * Told when the subscriber connection is back after it was lost: what was published to this node
   * meanwhile is gone (stored messages come back through the dirty set; kicks do not), so the wiring
   * re-checks its sessions against the presence.
   */
  onResubscribed?(): void;
  /**
   * The store's put marks the receiver's node for a recheck itself (store-redis.ts `markHolder`), in the
   * same step as the message, before the frame is routed: a routed QoS frame then does not mark it again
   * (default false: the route marks it). A receiver who moves between the put and the route gets the
   * message from the replay that follows its login, which lists the store after the put.
   */
  storeMarksHolder?: boolean;
  /**
   * Keeps a receipt another node routed here for a sender with no session here any more (moved or gone
   * offline since that node looked), for the sender's next login: in a cluster, the receipt keeper every
   * node shares (receipts-redis.ts). Without it such a receipt is dropped.
   */
  keepReceipt?(sender: string, receiver: string, fp: string, atMs: number): MaybePromise<unknown>;
  /** Longest wait for another node's report of how a routed QoS message ended (default 60000). */
  outcomeTimeoutMs?: number;
  /** Routed QoS messages whose outcome this node waits for at most; beyond, their waiter is told 'lost' at once (default 100000). */
  maxOutcomeWaiters?: number;
  /**
   * How often the node checks that its subscriber still hears its channel (default 5000): it publishes a
   * ping there, and a ping not heard by the next check means the connection carries nothing although it
   * looks open (a half-open link, a stalled proxy): the subscriber is reconnected, and `health` is not ok
   * meanwhile. Without it such a node would stay "healthy" and miss kicks, session ends and receipts.
   */
  subscriberCheckMs?: number;
  /** Longest wait for the connections at open (default 10000). */
  connectTimeoutMs?: number;
  clock?: Pick<StoreClock, 'setTimeout' | 'clearTimeout'>;
  logger?: Logger;
}

/** Where {@link RedisRouting.route} found a user: held here (`local`), or elsewhere and whether a subscriber got the message. */
interface Routed_ {
  node: string;
  local: boolean;
  published: boolean;
}

/** The scripts, defined once per connection (EVALSHA, re-loaded after a Redis restart); routes go in batches (redis-scripts.ts). */
const ROUTING_SCRIPTS = { imRoute: [1, ROUTE_LUA, 'batched', 2] } as const;

/**
 * {@link Routing} across nodes through Redis pub/sub. A frame, receipt or kick for a user on another node
 * is published to that node's channel only (`<prefix>node:<id>`); this node's own users go to `local`,
 * and so do the frames other nodes publish here (routing-subscriber.ts: a connection of its own that
 * subscribes again after each reconnect and checks it still hears the channel; the node is not ready
 * while it does not). In a cluster most C2C frames and receipts are published by the store's own scripts
 * instead, in the same format (routed.ts; store-redis.ts `putAndRoute` and `removeWithReceipt`); what
 * they could not hand over comes here. Delivery never depends on
 * a notification arriving: a QoS frame is in the store before it is routed, and the node that routes it
 * to another node first adds the receiver to that node's dirty set (`<prefix>dirty:<id>`, in the one
 * script that locates the receiver and publishes; in a cluster the put itself does so instead,
 * `storeMarksHolder`); every node
 * takes its dirty set every `recheckMs` and hands those users to `onRecheck`, which replays their stored
 * messages. A message whose notification was lost (subscriber reconnecting) thus arrives within about
 * `recheckMs`.
 */
export class RedisRouting implements Routing {
  /**
   * A frame for this node's own user is written at once, one for another node's user is routed by a
   * script on the one connection, whose answers come in the order the scripts were sent: calls for one
   * receiver settle, and are published, in the order made.
   */
  readonly settlesInOrder = true;
  private timer: unknown = null;
  private closed = false;
  private failing = false;
  /** This node's subscription to its channel (set by {@link open}). */
  private subscriber: NodeSubscriber | null = null;
  private readonly prefix: string;
  private readonly channel: string;
  private local: Routing | null;
  private readonly run: (name: keyof typeof ROUTING_SCRIPTS) => RunScript;
  /** Routed QoS messages waiting for their receiving node's outcome report, by id. */
  private readonly outcomes: OutcomeWaiters;
  /**
   * Per user: frames and receipts for them whose route script has not answered yet. A later one for that
   * user is routed behind them even when the user is bound here meanwhile (a login here after the claim),
   * since the script of an earlier one may find the user here and write it then: never after a later one.
   */
  private readonly routing = new FlatMap<number>();
  /**
   * Outcome reports for other nodes made in this turn, by node, as [id, outcome, id, outcome, ...]: sent
   * at the end of the turn, one publish per node (a publish per ACK cost each side a command and a message).
   */
  private readonly reports = new Map<string, Array<number | QosOutcome>>();
  private reportsDue = false;

  private constructor(
    private readonly client: Redis,
    private readonly owned: boolean,
    private readonly o: Required<Omit<RedisRoutingOptions, 'redis' | 'onRecheck' | 'onResubscribed' | 'keyPrefix' | 'local' | 'storeMarksHolder' | 'keepReceipt'>> &
      Pick<RedisRoutingOptions, 'onRecheck' | 'onResubscribed' | 'storeMarksHolder' | 'keepReceipt'>,
    keyPrefix: string,
    local: Routing | undefined,
  ) {
    this.prefix = keyPrefix;
    this.channel = this.nodeChannel(o.nodeId);
    this.local = local ?? null;
    this.run = defineScripts(client, ROUTING_SCRIPTS);
    this.outcomes = new OutcomeWaiters(o.maxOutcomeWaiters, o.outcomeTimeoutMs, o.clock);
  }

  /** Connects both connections, subscribes to this node's channel and starts the recheck timer. */
  static async open(options: RedisRoutingOptions): Promise<RedisRouting> {
    if (typeof options.nodeId !== 'string' || options.nodeId === '') throw new TypeError('nodeId must be a non-empty string');
    const recheckMs = options.recheckMs ?? 1000;
    if (!(recheckMs > 0)) throw new RangeError(`recheckMs must be a positive number, got ${String(recheckMs)}`);
    if (options.subscriberCheckMs !== undefined && !(options.subscriberCheckMs > 0)) {
      throw new RangeError(`subscriberCheckMs must be a positive number, got ${String(options.subscriberCheckMs)}`);
    }
    const logger = options.logger ?? createConsoleLogger('info');
    const { client, owned } = openTarget(options.redis, logger, `routing ${options.nodeId}`);
    const r = new RedisRouting(
      client,
      owned,
      {
        nodeId: options.nodeId,
        recheckMs,
        recheckBatch: options.recheckBatch ?? 1000,
        dirtyTtlMs: options.dirtyTtlMs ?? DEFAULT_DIRTY_TTL_MS,
        outcomeTimeoutMs: options.outcomeTimeoutMs ?? 60_000,
        maxOutcomeWaiters: options.maxOutcomeWaiters ?? 100_000,
        onRecheck: options.onRecheck,
        storeMarksHolder: options.storeMarksHolder,
        keepReceipt: options.keepReceipt,
        onResubscribed: options.onResubscribed,
        subscriberCheckMs: options.subscriberCheckMs ?? 5000,
        connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
        clock: options.clock ?? realClock,
        logger,
      },
      options.keyPrefix ?? 'im:',
      options.local,
    );
    try {
      await whenReady(client, r.o.connectTimeoutMs, `routing ${options.nodeId}`);
      r.subscriber = await NodeSubscriber.open({
        client,
        channel: r.channel,
        nodeId: options.nodeId,
        onText: (text) => r.received(text),
        onResubscribed: options.onResubscribed,
        checkMs: r.o.subscriberCheckMs,
        clock: r.o.clock,
        logger,
      });
    } catch (err) {
      await closeOwned(client, owned);
      throw err;
    }
    r.arm();
    return r;
  }

  /** Sets the routing to this node's own sessions (when it was not given to {@link open}); returns this. */
  bindLocal(local: Routing): this {
    this.local = local;
    return this;
  }

  /** Whether both connections are up: false while this node cannot route or hear other nodes. */
  health(): { ok: boolean; reason?: string } {
    if (this.closed) return { ok: false, reason: 'routing is closed' };
    if (this.client.status !== 'ready') return { ok: false, reason: `Redis is not connected (${this.client.status})` };
    const why = this.subscriber ? this.subscriber.reason() : 'the routing subscriber is not open';
    return why ? { ok: false, reason: why } : { ok: true };
  }

  /**
   * Asked of this node's own sessions only, without Redis: a user held here is checked against this
   * node's QoS table; a user held elsewhere is checked by that node when the frame arrives, and a user
   * held nowhere gets the message stored (the store's own quotas apply).
   */
  hasRoom(to: string, frame: Protocal): MaybePromise<boolean> {
    return this.ownLocal().hasRoom(to, frame);
  }

  /**
   * See {@link Routing.sendData}. To another node: published, and for a QoS frame the receiver marked
   * dirty there first; that node reports back how the message ended ('delivered' or 'lost'), and
   * `waiter` hears 'lost' when no report comes within `outcomeTimeoutMs` (the stored copy stays until
   * the receiver ACKs). False when no node holds `to` or its node is not subscribed (down), or Redis
   * failed, and `to` has no session here (checked again after the route: a login here meanwhile): the
   * stored copy is replayed at the receiver's next login or recheck.
   */
  async sendData(to: string, frame: Protocal, waiter?: QosWaiter): Promise<boolean> {
    // A user with a session on this node is written to here, without asking Redis. Should another node
    // hold them already (a login there whose kick has not arrived yet), the put marked that node, which
    // replays the stored copy: this session gets the frame only until the kick closes it.
    if (!this.routing.has(to)) {
      const here = this.ownLocal().sendData(to, frame, waiter);
      if (isPromise(here) ? await here : here) return true;
    }
    const qos = !!(frame.QoS && frame.fp);
    // Registered before the frame can reach the other node, whose report may come back at once.
    const id = qos && waiter ? this.outcomes.expect(waiter) : 0;
    const payload: Routed = id ? { t: 'data', to, frame, reply: { node: this.o.nodeId, id } } : { t: 'data', to, frame };
    let r: Routed_ | null = null;
    const done = this.routingTo(to);
    try {
      try {
        r = await this.route(to, payload, qos && !this.o.storeMarksHolder);
      } catch (err) {
        this.o.logger.error(`routing: a frame for "${to}" could not be routed (Redis); a stored copy waits for a replay unless "${to}" is here`, err);
      }
      if (!r?.published) {
        // The script found the user here, or nowhere, or Redis failed: a session bound here meanwhile gets it here.
        const here = this.ownLocal().sendData(to, frame, waiter);
        if (isPromise(here) ? await here : here) {
          if (id) this.outcomes.forget(id);
          return true;
        }
      }
    } finally {
      done();
    }
    if (!r?.published && id) this.outcomes.settle(id, 'lost');
    return !!r?.published;
  }

  /**
   * See {@link Routing.sendReceipt}. False also when Redis fails (the caller keeps the receipt for the
   * sender's next login here): a receipt is best effort, and the ACK that caused it must not fail.
   */
  async sendReceipt(sender: string, receiver: string, fp: string, atMs: number): Promise<boolean> {
    // As sendData: a sender with a session on this node gets it here, without Redis.
    if (!this.routing.has(sender)) {
      const here = this.ownLocal().sendReceipt(sender, receiver, fp, atMs);
      if (isPromise(here) ? await here : here) return true;
    }
    const done = this.routingTo(sender);
    try {
      let r: Routed_ | null = null;
      try {
        r = await this.route(sender, { t: 'receipt', sender, receiver, fp, atMs });
      } catch (err) {
        this.o.logger.warn(`routing: the receipt of ${fp} for "${sender}" could not be routed (Redis); kept for their next login here unless they are here`, { error: (err as Error).message });
      }
      if (r?.published) return true;
      // As sendData: a sender bound here meanwhile gets it here.
      return await this.ownLocal().sendReceipt(sender, receiver, fp, atMs);
    } finally {
      done();
    }
  }

  /** See {@link Routing.kickUser}. */
  async kickUser(userId: string, code: number, reason?: string): Promise<boolean> {
    const r = await this.route(userId, { t: 'kick', user: userId, code, reason });
    if (r?.local) return this.ownLocal().kickUser(userId, code, reason);
    return !!r?.published;
  }

  /** See {@link Routing.endSession}: published to the node of `at` when it is not this one. */
  async endSession(at: PresenceEntry, userId: string, kickCode: number | null): Promise<void> {
    if (at.node === this.o.nodeId) return this.ownLocal().endSession(at, userId, kickCode);
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
    this.outcomes.settleAll();
    this.sendReports();
    this.subscriber?.close();
    await closeOwned(this.client, this.owned);
  }

  /** A message another node published here: handed to the local routing (or, for an outcome report, to its waiter). */
  private received(text: string): void {
    let m: Routed;
    try {
      m = JSON.parse(text) as Routed;
    } catch {
      this.o.logger.error(`routing: unreadable message on ${this.channel}`);
      return;
    }
    if (m.t === 'outcomes') {
      const r = Array.isArray(m.r) ? m.r : [];
      for (let i = 0; i + 1 < r.length; i += 2) this.outcomes.settle(r[i] as number, r[i + 1] as QosOutcome);
      return;
    }
    // One report a message: what nodes before the batched reports send.
    if (m.t === 'outcome') return this.outcomes.settle(m.id, m.outcome);
    if (!this.local) return void this.o.logger.warn(`routing: a type "${m.t}" message arrived before this node's sessions were attached; dropped`);
    let done: MaybePromise<unknown>;
    try {
      const local = this.local;
      if (m.t === 'data') done = this.receivedData(local, m);
      else if (m.t === 'receipt') done = this.receivedReceipt(local, m);
      else if (m.t === 'kick') done = local.kickUser(m.user, m.code, m.reason);
      else if (m.t === 'end') done = local.endSession({ node: this.o.nodeId, session: m.session, firstLoginTime: m.firstLoginTime }, m.user, m.code);
      else return void this.o.logger.error(`routing: unknown message on ${this.channel}`);
    } catch (err) {
      this.o.logger.error('routing: handling a routed message failed', err);
      return;
    }
    if (isPromise(done)) done.catch((err: unknown) => this.o.logger.error('routing: handling a routed message failed', err));
  }

  /** A data frame routed here; when its sender's node waits for the outcome, the outcome is published back. */
  private receivedData(local: Routing, m: Extract<Routed, { t: 'data' }>): MaybePromise<unknown> {
    const reply = m.reply;
    if (!reply) return local.sendData(m.to, m.frame);
    let told = false;
    const report: QosWaiter = (outcome) => {
      if (told) return;
      told = true;
      this.report(reply.node, reply.id, outcome);
    };
    const sent = local.sendData(m.to, m.frame, report);
    const afterSend = (ok: boolean): void => {
      if (!ok) report('lost');
    };
    if (isPromise(sent)) return sent.then(afterSend);
    afterSend(sent);
    return undefined;
  }

  /** A receipt routed here: written to its sender's session, or kept (`keepReceipt`) when the sender has none here now. */
  private receivedReceipt(local: Routing, m: Extract<Routed, { t: 'receipt' }>): MaybePromise<unknown> {
    const keep = (written: boolean): MaybePromise<unknown> => written || this.o.keepReceipt?.(m.sender, m.receiver, m.fp, m.atMs);
    const sent = local.sendReceipt(m.sender, m.receiver, m.fp, m.atMs);
    return isPromise(sent) ? sent.then(keep) : keep(sent);
  }

  /** Queues an outcome report for `node`, sent with the others of this turn ({@link reports}). */
  private report(node: string, id: number, outcome: QosOutcome): void {
    let list = this.reports.get(node);
    if (!list) this.reports.set(node, (list = []));
    list.push(id, outcome);
    if (!this.reportsDue) {
      this.reportsDue = true;
      setImmediate(() => this.sendReports());
    }
  }

  /** Publishes the queued outcome reports, one message per node. */
  private sendReports(): void {
    this.reportsDue = false;
    for (const [node, r] of this.reports) {
      this.publish(node, { t: 'outcomes', r }).catch((err: unknown) =>
        this.o.logger.warn(`routing: ${r.length / 2} outcome reports could not be sent to node "${node}" (it hears 'lost' at its timeout)`, err),
      );
    }
    this.reports.clear();
  }

  /**
   * Locates `user` and, when another live node holds them, publishes `m` to that node, in one script
   * (ROUTE_LUA; it reads the presence's key layout, presence-redis-lua.ts, under the same prefix), and
   * for `dirty` (a QoS frame) first adds the user to that node's dirty set. null: no node holds the user.
   */
  private async route(user: string, m: Routed, dirty = false): Promise<Routed_ | null> {
    const r = (await this.run('imRoute')(
      `${this.prefix}p:${user}`, this.prefix, this.o.nodeId, JSON.stringify(m), dirty ? this.o.dirtyTtlMs : 0, user,
    )) as [string, string, string, number] | null;
    if (!r) return null;
    return { node: r[0], local: r[0] === this.o.nodeId, published: r[3] > 0 };
  }

  /** Counts a frame or receipt for `user` in {@link routing} until the returned function is called (once it is written or routed). */
  private routingTo(user: string): () => void {
    countUp(this.routing, user);
    return () => countDown(this.routing, user);
  }

  private ownLocal(): Routing {
    if (!this.local) throw new Error('routing: this node\'s sessions are not attached yet (bindLocal)');
    return this.local;
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
