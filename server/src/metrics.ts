/** Counters the admin API exposes under `/api/metrics` (JSON). */
export interface MetricsSnapshot {
  connections: { total: number; ws: number; tcp: number; udp: number };
  connectionsOpened: number;
  onlineUsers: number;
  logins: number;
  loginFailures: number;
  kicks: number;
  messagesIn: number;
  messagesOut: number;
  retransmissions: number;
  lost: number;
  delivered: number;
  offlineStored: number;
  offlineDelivered: number;
  offlinePending: number;
  errorsSent: number;
  rateLimited: number;
  badInput: number;
  uptimeMs: number;
}

/**
 * A fixed-bucket histogram of durations in seconds: `observe` is a short loop over a typed array, with no
 * allocation, so it can sit on the per-message path. `counts[i]` holds the observations in bucket i only
 * (not cumulative); the Prometheus exporter adds them up at scrape time.
 */
export class LatencyHistogram {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }

  /** Records one duration in seconds (above the last bound it counts only in `+Inf`). */
  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (seconds <= b[i]) {
        this.counts[i]++;
        return;
      }
    }
  }
}

/** Distinct codes a {@link CodeCounts} keeps apart; later codes are summed under -1 ("other"). */
const MAX_CODES = 64;

/** Counts per numeric code (login refusal codes, error frame codes), bounded in distinct keys. */
export class CodeCounts {
  readonly byCode = new Map<number, number>();

  /** Adds one to `code`. */
  add(code: number): void {
    const key = this.byCode.has(code) || this.byCode.size < MAX_CODES ? code : -1;
    this.byCode.set(key, (this.byCode.get(key) ?? 0) + 1);
  }
}

/** Bucket bounds (seconds) for ACK latency: from a LAN round trip to a phone that wakes up late. */
const ACK_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Bucket bounds (seconds) for work inside the server: relay and store writes. */
const LOCAL_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/**
 * The live counters; the core increments them inline (plain numbers, no allocation per message),
 * {@link Metrics.snapshot} and the Prometheus exporter read them.
 */
export class Metrics {
  readonly open = { ws: 0, tcp: 0, udp: 0 };
  connectionsOpened = 0;
  logins = 0;
  loginFailures = 0;
  /** Login refusals (type 50 with a non-zero code), by code. */
  readonly loginRefusals = new CodeCounts();
  kicks = 0;
  messagesIn = 0;
  messagesOut = 0;
  /** Data messages received from clients: to another user (C2C) or to the server (C2S). */
  c2cIn = 0;
  c2sIn = 0;
  /** Data messages written to clients: relayed from a user (C2C) or pushed by the server (S2C). */
  c2cOut = 0;
  s2cOut = 0;
  retransmissions = 0;
  lost = 0;
  delivered = 0;
  offlineStored = 0;
  offlineDelivered = 0;
  /** Stored messages dropped because they outlived the store's retention. */
  offlineExpired = 0;
  errorsSent = 0;
  /** Error frames (type 52), by code. */
  readonly errors = new CodeCounts();
  rateLimited = 0;
  badInput = 0;
  /** From the server writing a QoS message to the receiver's ACK. */
  readonly ackLatency = new LatencyHistogram(ACK_BUCKETS);
  /** From a C2C message being handled to it being written to the online receiver (hooks and store included). */
  readonly relayLatency = new LatencyHistogram(LOCAL_BUCKETS);
  /** From a store write being queued to it being durable. */
  readonly storeWriteLatency = new LatencyHistogram(LOCAL_BUCKETS);
  private readonly startedMs = Date.now();

  /** Counts a refused login with its code. */
  loginRefused(code: number): void {
    this.loginFailures++;
    this.loginRefusals.add(code);
  }

  /** Counts an error frame with its code. */
  errorSent(code: number): void {
    this.errorsSent++;
    this.errors.add(code);
  }

  /** Milliseconds since the server started. */
  uptimeMs(): number {
    return Date.now() - this.startedMs;
  }

  /** A plain-object copy of every counter. */
  snapshot(onlineUsers: number, offlinePending: number): MetricsSnapshot {
    const { ws, tcp, udp } = this.open;
    return {
      connections: { total: ws + tcp + udp, ws, tcp, udp },
      connectionsOpened: this.connectionsOpened,
      onlineUsers,
      logins: this.logins,
      loginFailures: this.loginFailures,
      kicks: this.kicks,
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
      retransmissions: this.retransmissions,
      lost: this.lost,
      delivered: this.delivered,
      offlineStored: this.offlineStored,
      offlineDelivered: this.offlineDelivered,
      offlinePending,
      errorsSent: this.errorsSent,
      rateLimited: this.rateLimited,
      badInput: this.badInput,
      uptimeMs: this.uptimeMs(),
    };
  }
}
