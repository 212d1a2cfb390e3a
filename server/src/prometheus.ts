import { collectDefaultMetrics, Registry } from 'prom-client';
import type { CodeCounts, LatencyHistogram, Metrics } from './metrics';

/** Live values the exporter reads at scrape time besides the counters. */
export interface PrometheusGauges {
  onlineUsers(): number;
  /** Messages in the offline store, or null when unknown (a custom store). */
  offlinePending(): number | null;
  /** QoS messages written and waiting for their ACK. */
  qosPending(): number;
  /** Messages the built-in store never wrote because their receiver ACKed them while held; null for a custom store. */
  storeWritesSpared(): number | null;
}

/** What a cluster node adds: its id as a label on every metric, and the cluster's own figures read from Redis at scrape time. */
export interface PrometheusClusterGauges {
  nodeId: string;
  onlineUsers(): Promise<number>;
  storedMessages(): Promise<number>;
}

/** A per-server Prometheus registry and its text rendering. */
export interface PrometheusExporter {
  readonly registry: Registry;
  readonly contentType: string;
  /** The text exposition format of every metric. */
  scrape(): Promise<string>;
}

interface Sample {
  metricName?: string;
  labels?: Record<string, string | number>;
  value: number;
}

const PREFIX = 'mobileimsdk_';

/**
 * Builds a registry (never prom-client's global one: several servers may share a process) whose metrics
 * read {@link Metrics} at scrape time, plus prom-client's default process and Node metrics (CPU, memory,
 * descriptors, GC, event-loop delay). Nothing here runs per message.
 */
export function createPrometheusExporter(m: Metrics, g: PrometheusGauges, cluster: PrometheusClusterGauges | null = null): PrometheusExporter {
  const registry = new Registry();
  // Each node of a cluster labels its own figures (several workers may answer on one port).
  if (cluster) registry.setDefaultLabels({ node: cluster.nodeId });
  const add = (name: string, type: 'counter' | 'gauge' | 'histogram', help: string, values: () => Sample[]): void => {
    const full = PREFIX + name;
    const metric = { name: full, help, type, aggregator: 'sum', get: () => ({ name: full, help, type, aggregator: 'sum', values: values() }) };
    registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
  };
  const one = (v: () => number) => () => [{ value: v() }];
  const counter = (name: string, help: string, v: () => number) => add(name, 'counter', help, one(v));
  const gauge = (name: string, help: string, v: () => number) => add(name, 'gauge', help, one(v));
  const histogram = (name: string, help: string, h: LatencyHistogram) => add(name, 'histogram', help, () => histogramSamples(PREFIX + name, h));
  const byCode = (name: string, help: string, c: CodeCounts) =>
    add(name, 'counter', help, () => [...c.byCode].map(([code, value]) => ({ labels: { code: code === -1 ? 'other' : code }, value })));

  add('connections', 'gauge', 'Open client connections, by gateway.', () =>
    (['ws', 'tcp', 'udp'] as const).map((t) => ({ labels: { transport: t }, value: m.open[t] })),
  );
  counter('connections_opened_total', 'Client connections accepted since start.', () => m.connectionsOpened);
  gauge('online_users', 'Users logged in now.', () => g.onlineUsers());
  counter('logins_total', 'Successful logins.', () => m.logins);
  byCode('login_refusals_total', 'Refused logins, by login code.', m.loginRefusals);
  counter('kicks_total', 'Sessions kicked (duplicate login, admin).', () => m.kicks);
  byCode('errors_sent_total', 'Error frames (type 52) sent, by error code.', m.errors);
  counter('frames_received_total', 'Valid protocol frames received, of every type.', () => m.messagesIn);
  counter('frames_sent_total', 'Protocol frames written, of every type.', () => m.messagesOut);
  add('messages_received_total', 'counter', 'Data messages received from clients, by direction (c2c, c2s).', () => [
    { labels: { direction: 'c2c' }, value: m.c2cIn },
    { labels: { direction: 'c2s' }, value: m.c2sIn },
  ]);
  add('messages_sent_total', 'counter', 'Data messages written to clients, by direction (c2c, s2c), retransmissions and replays included.', () => [
    { labels: { direction: 'c2c' }, value: m.c2cOut },
    { labels: { direction: 's2c' }, value: m.s2cOut },
  ]);
  histogram('ack_latency_seconds', 'From writing a QoS message to its receiver to the receiver ACK.', m.ackLatency);
  histogram('relay_latency_seconds', 'From handling a C2C message to writing it to the online receiver (hooks and store write included).', m.relayLatency);
  histogram('store_write_latency_seconds', 'From queueing an offline-store write to it being durable (or, for a held put, settled by the receiver ACK).', m.storeWriteLatency);
  counter('retransmissions_total', 'QoS messages written again for want of an ACK.', () => m.retransmissions);
  counter('lost_total', 'QoS messages given up on (still stored for the next login unless a hook replaces the store).', () => m.lost);
  counter('delivered_total', 'QoS messages ACKed by their receiver.', () => m.delivered);
  gauge('qos_pending', 'QoS messages written and waiting for their ACK.', () => g.qosPending());
  counter('offline_stored_total', 'Messages stored for a receiver that was offline.', () => m.offlineStored);
  counter('offline_delivered_total', 'Stored messages handed over at login.', () => m.offlineDelivered);
  counter('offline_expired_total', 'Stored messages dropped after the retention period.', () => m.offlineExpired);
  add('offline_pending', 'gauge', 'Messages in the offline store now.', () => {
    const n = g.offlinePending();
    return n === null ? [] : [{ value: n }];
  });
  add('store_writes_spared_total', 'counter', 'QoS messages their receiver ACKed while the store held their put (--store-hold-ms): never written to disk.', () => {
    const n = g.storeWritesSpared();
    return n === null ? [] : [{ value: n }];
  });
  counter('rate_limited_total', 'Connections closed for sending too fast.', () => m.rateLimited);
  counter('bad_input_total', 'Input refused as unreadable or unhandleable: oversize, binary, invalid UTF-8 or JSON frames, and connections closed for a backlog of frames behind slow hooks (error 322).', () => m.badInput);
  if (cluster) {
    // Read from Redis at scrape time; a scrape while Redis is down leaves them out rather than fail.
    const fromRedis = (name: string, help: string, v: () => Promise<number>) => {
      const full = PREFIX + name;
      const get = async () => ({ name: full, help, type: 'gauge', aggregator: 'max', values: await v().then((value) => [{ value }], () => []) });
      registry.registerMetric({ name: full, help, type: 'gauge', aggregator: 'max', get } as unknown as Parameters<Registry['registerMetric']>[0]);
    };
    fromRedis('cluster_online_users', 'Users online on any live node of the cluster (from Redis).', cluster.onlineUsers);
    fromRedis('cluster_offline_pending', 'Messages stored for the whole cluster (from Redis).', cluster.storedMessages);
  }
  collectDefaultMetrics({ register: registry });
  return { registry, contentType: registry.contentType, scrape: () => registry.metrics() };
}

function histogramSamples(name: string, h: LatencyHistogram): Sample[] {
  const out: Sample[] = [];
  let cumulative = 0;
  for (let i = 0; i < h.bounds.length; i++) {
    cumulative += h.counts[i];
    out.push({ metricName: `${name}_bucket`, labels: { le: h.bounds[i] }, value: cumulative });
  }
  out.push({ metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: h.count });
  out.push({ metricName: `${name}_sum`, value: h.sum });
  out.push({ metricName: `${name}_count`, value: h.count });
  return out;
}
