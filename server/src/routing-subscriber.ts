import type { Redis } from 'ioredis';
import type { Logger } from './logger';
import { watchRedis } from './redis-client';
import { unref, type StoreClock } from './store-expiry';

/** Pause between attempts to subscribe again when Redis refused the subscription after a reconnect. */
export const RESUBSCRIBE_RETRY_MS = 1000;

/** Options of {@link NodeSubscriber.open}. */
export interface NodeSubscriberOptions {
  /** The node's command connection: duplicated for the subscriber, and used to publish the self-pings. */
  client: Redis;
  /** The node's own channel. */
  channel: string;
  nodeId: string;
  /** Every message published on the channel but this subscriber's own pings. */
  onText(text: string): void;
  /** Told when the subscriber is subscribed again after it was lost (what was published meanwhile is gone). */
  onResubscribed?(): void;
  /** How often the subscriber checks that it still hears its channel (see {@link NodeSubscriber}). */
  checkMs: number;
  clock: Pick<StoreClock, 'setTimeout' | 'clearTimeout'>;
  logger: Logger;
}

/**
 * A node's subscription to its own routing channel, on a connection of its own. It subscribes again
 * itself after a reconnect, retrying every {@link RESUBSCRIBE_RETRY_MS} while Redis refuses (ioredis's own
 * resubscription leaves a refused SUBSCRIBE as an unhandled rejection, a crash, and the connection
 * 'ready' but deaf). Every `checkMs` it publishes a ping to its channel: one not heard by the next check
 * means the connection carries nothing although it looks open (a half-open link, a stalled proxy), and
 * the subscriber is reconnected. {@link reason} says why the node cannot hear other nodes meanwhile.
 */
export class NodeSubscriber {
  private subscribed = false;
  private closed = false;
  /** A ping went unheard for a whole check period: the subscriber is being reconnected. */
  private deaf = false;
  /** The last ping published and not heard yet (0: none). */
  private pingOut = 0;
  private pingSeq = 0;
  private checkTimer: unknown = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;

  private constructor(
    private readonly sub: Redis,
    private readonly o: NodeSubscriberOptions,
  ) {}

  /** Opens the connection and subscribes; rejects (the connection closed) when that fails. */
  static async open(o: NodeSubscriberOptions): Promise<NodeSubscriber> {
    // It waits for its connection rather than fail: it only ever sends (re)subscriptions.
    const sub = o.client.duplicate({
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      commandTimeout: undefined,
      autoResubscribe: false,
      connectionName: `routing-sub-${o.nodeId}`.replace(/[^\w.-]/g, '_'),
    });
    watchRedis(sub, o.logger, `routing subscriber ${o.nodeId}`);
    const s = new NodeSubscriber(sub, o);
    sub.on('message', (channel: string, text: string) => {
      if (channel === o.channel) s.received(text);
    });
    try {
      await sub.subscribe(o.channel);
    } catch (err) {
      sub.disconnect();
      throw err;
    }
    s.subscribed = true;
    sub.on('close', () => (s.subscribed = false));
    // Every later 'ready' is a reconnect: subscribed again here, and what was published meanwhile is gone.
    sub.on('ready', () => {
      s.deaf = false;
      s.resubscribe();
    });
    s.armCheck();
    return s;
  }

  /** Why this node cannot hear its channel now, or null. */
  reason(): string | null {
    if (this.closed) return 'the routing subscriber is closed';
    if (this.sub.status !== 'ready') return `the routing subscriber is not connected (${this.sub.status})`;
    if (this.deaf) return 'the routing subscriber did not hear this node\'s ping; reconnecting it';
    if (!this.subscribed) return 'the routing subscriber is not subscribed to this node\'s channel (retrying)';
    return null;
  }

  /** Stops the checks and closes the connection. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.o.clock.clearTimeout(this.checkTimer);
    this.checkTimer = null;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.sub.disconnect();
  }

  private received(text: string): void {
    // A ping is this subscriber's own: `{"t":"ping","seq":N}` (nothing else starts so).
    if (text.startsWith('{"t":"ping"')) {
      let seq = 0;
      try {
        seq = (JSON.parse(text) as { seq: number }).seq;
      } catch {
        // Not a ping after all: handed on below.
      }
      if (seq > 0) {
        if (seq === this.pingOut) this.pingOut = 0;
        this.deaf = false;
        return;
      }
    }
    this.o.onText(text);
  }

  private resubscribe(): void {
    if (this.closed || this.subscribed || this.retryTimer || this.sub.status !== 'ready') return;
    this.sub.subscribe(this.o.channel).then(
      () => {
        if (this.closed) return;
        this.subscribed = true;
        this.o.logger.info(`routing: subscribed to ${this.o.channel} again`);
        try {
          this.o.onResubscribed?.();
        } catch (err) {
          this.o.logger.error('routing: onResubscribed failed', err);
        }
      },
      (err: unknown) => {
        if (this.closed) return;
        this.o.logger.error(`routing: subscribing to ${this.o.channel} again failed; retrying in ${RESUBSCRIBE_RETRY_MS} ms (this node hears no other node meanwhile)`, err);
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          this.resubscribe();
        }, RESUBSCRIBE_RETRY_MS);
        this.retryTimer.unref();
      },
    );
  }

  /**
   * One check: a ping still unheard since the last check makes the subscriber reconnect (it subscribes
   * again, then `onResubscribed` runs); otherwise a new ping goes out. Nothing is judged while either
   * connection is down (their own reconnects handle that).
   */
  private async check(): Promise<void> {
    if (this.o.client.status !== 'ready' || this.sub.status !== 'ready' || !this.subscribed) {
      this.pingOut = 0;
      return;
    }
    if (this.pingOut !== 0) {
      this.o.logger.error(`routing: node "${this.o.nodeId}" did not hear its own ping within ${this.o.checkMs} ms; reconnecting its subscriber`);
      this.deaf = true;
      this.pingOut = 0;
      this.sub.disconnect(true);
      return;
    }
    const seq = ++this.pingSeq;
    this.pingOut = seq;
    await this.o.client.publish(this.o.channel, JSON.stringify({ t: 'ping', seq }));
  }

  private armCheck(): void {
    if (this.closed) return;
    this.checkTimer = this.o.clock.setTimeout(() => {
      this.check().then(
        () => this.armCheck(),
        () => {
          // Redis failed the publish: no ping is out, the next check tries again.
          this.pingOut = 0;
          this.armCheck();
        },
      );
    }, this.o.checkMs);
    unref(this.checkTimer);
  }
}
