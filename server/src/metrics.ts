/** Counters the admin API exposes under `/metrics`. */
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

/** The live counters; the core increments them, {@link Metrics.snapshot} reads them. */
export class Metrics {
  readonly open = { ws: 0, tcp: 0, udp: 0 };
  connectionsOpened = 0;
  logins = 0;
  loginFailures = 0;
  kicks = 0;
  messagesIn = 0;
  messagesOut = 0;
  retransmissions = 0;
  lost = 0;
  delivered = 0;
  offlineStored = 0;
  offlineDelivered = 0;
  errorsSent = 0;
  rateLimited = 0;
  badInput = 0;
  private readonly startedMs = Date.now();

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
      uptimeMs: Date.now() - this.startedMs,
    };
  }
}
