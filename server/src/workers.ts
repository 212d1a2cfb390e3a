import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { createLogger, defaultNodeId, type LogFormat, type LogLevel } from './logger';
import type { BoundPorts } from './server';
import { asMetricsMessage, mergeExpositions, MetricsGatherer, type MetricsMessage } from './worker-metrics';
import { WorkerSupervisor, type WorkerControl, type WorkerReady } from './worker-supervisor';

/** Most workers `--workers` accepts. */
export const MAX_WORKERS = 256;
/** Time past `--drain-ms` a worker gets to exit before the primary kills it. */
const WORKER_EXIT_GRACE_MS = 3000;
/** Set by the primary in each worker's environment: its slot (1-based) and the cluster's base node id. */
const ENV_INDEX = 'IM_WORKER_INDEX';
const ENV_BASE = 'IM_WORKER_NODE_BASE';

/** `--workers`: a whole number 1..{@link MAX_WORKERS}, or `auto` for the number of cores. */
export function parseWorkers(value: string, cores: number = availableParallelism()): number {
  if (value === 'auto') return Math.min(MAX_WORKERS, Math.max(1, cores));
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (n === 0) throw new Error('--workers 0: at least one process has to serve; pass 1 (the default, one process) or more, or "auto" (one per core)');
  if (!Number.isInteger(n) || n > MAX_WORKERS) throw new Error(`--workers must be a whole number 1..${MAX_WORKERS} or "auto" (one per core), got "${value}"`);
  return n;
}

/** The node id of worker `index` of a cluster whose base node id is `base`. */
export function workerNodeId(base: string, index: number): string {
  return `${base}-w${index}`;
}

/** Which worker this process is. */
export interface WorkerRole {
  /** 1-based slot; a restarted worker keeps its slot and node id. */
  index: number;
  nodeId: string;
  /** Only worker 1 runs the UDP gateway: a UDP peer has no connection the kernel could keep on one worker. */
  runsUdp: boolean;
}

/** This process's role under `--workers`; null in the primary and in a single-process server. */
export function workerRole(env: NodeJS.ProcessEnv = process.env): WorkerRole | null {
  if (!cluster.isWorker) return null;
  const index = Number(env[ENV_INDEX]);
  const base = env[ENV_BASE];
  if (!Number.isInteger(index) || index < 1 || !base) return null;
  return { index, nodeId: workerNodeId(base, index), runsUdp: index === 1 };
}

/** Longest wait of a worker for the primary's merged `/metrics`; then it answers with its own. */
const METRICS_WAIT_MS = 2000;
/** `/metrics` requests one worker has waiting on the primary at once; beyond, it answers with its own. */
const MAX_METRICS_WAITING = 8;

/** What a worker tells the primary and how it answers it. */
export interface WorkerLinkOptions {
  ports: BoundPorts;
  nodeId: string;
  /** This worker's own Prometheus text. */
  ownMetrics(): Promise<string>;
  /** The primary asks every worker to drain (SIGTERM/SIGINT to the primary). */
  onShutdown(): void;
}

/**
 * In a worker: tells the primary the gateways listen, drains when it asks, hands it this worker's metrics,
 * and returns the function that renders `/metrics` for every worker (see worker-metrics.ts).
 */
export function joinPrimary(o: WorkerLinkOptions): () => Promise<string> {
  const waiting = new Map<number, (text: string) => void>();
  let nextId = 1;
  process.on('message', (m: unknown) => {
    if ((m as WorkerControl | null)?.im === 'shutdown') return o.onShutdown();
    const metrics = asMetricsMessage(m);
    if (metrics?.im === 'metrics-collect') {
      const id = metrics.id;
      void o.ownMetrics().then(
        (text) => sendToPrimary({ im: 'metrics-part', id, node: o.nodeId, text }),
        () => sendToPrimary({ im: 'metrics-part', id, node: o.nodeId, text: '' }),
      );
    } else if (metrics?.im === 'metrics-result') waiting.get(metrics.id)?.(metrics.text);
  });
  const ready: WorkerReady = { im: 'ready', ports: { ...o.ports } };
  sendToPrimary(ready);
  return async () => {
    const own = async () => mergeExpositions([{ node: o.nodeId, text: await o.ownMetrics() }]);
    if (waiting.size >= MAX_METRICS_WAITING || !process.connected) return own();
    const id = nextId++;
    const text = await new Promise<string>((resolve) => {
      const timer = setTimeout(() => done(''), METRICS_WAIT_MS);
      const done = (t: string) => {
        clearTimeout(timer);
        waiting.delete(id);
        resolve(t);
      };
      waiting.set(id, done);
      sendToPrimary({ im: 'metrics-request', id });
    });
    return text === '' ? own() : text;
  };
}

function sendToPrimary(message: WorkerReady | MetricsMessage): void {
  if (process.connected) process.send?.(message);
}

/** What the primary needs of the parsed command line. */
export interface PrimaryConfig {
  workers: number;
  nodeId: string | undefined;
  logLevel: LogLevel;
  logFormat: LogFormat;
  drainMs: number;
  /** The admin token every worker must share (a generated one is handed to them). */
  adminToken: string | undefined;
  udpEnabled: boolean;
  /** Workers reload their TLS certificate on SIGHUP: the primary passes it on. */
  tls: boolean;
}

/**
 * Runs the primary of `--workers N`: forks N workers of this same command line that share the
 * listening ports through Node's cluster module (round-robin: the primary accepts and hands each
 * connection to the next worker), restarts a worker that dies, drains them all on SIGTERM/SIGINT and
 * exits when they have exited. The primary itself opens no store and no Redis connection.
 */
export function runPrimary(config: PrimaryConfig, onStarted: (ready: WorkerReady[]) => void): void {
  const base = config.nodeId ?? defaultNodeId();
  const logger = createLogger({ level: config.logLevel, format: config.logFormat, nodeId: base });
  // Round-robin is the default except on Windows; set it so every platform spreads connections the same way.
  cluster.schedulingPolicy = cluster.SCHED_RR;
  const ids = Array.from({ length: config.workers }, (_, i) => workerNodeId(base, i + 1));
  logger.info(`primary: starting ${config.workers} workers`, { workers: config.workers, nodeIds: ids, scheduling: 'round-robin' });
  if (config.udpEnabled) logger.info('udp gateway runs in worker 1 only: datagrams of one peer must reach the same process', { nodeId: ids[0] });
  const clock = { now: Date.now, setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms), clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout) };
  const gatherer = new MetricsGatherer({ targets: () => supervisor.readyWorkers(), clock });
  const supervisor: WorkerSupervisor = new WorkerSupervisor({
    count: config.workers,
    logger,
    clock,
    stopTimeoutMs: config.drainMs + WORKER_EXIT_GRACE_MS,
    fork(index) {
      const w = cluster.fork({ [ENV_INDEX]: String(index), [ENV_BASE]: base, ...(config.adminToken !== undefined && { IM_ADMIN_TOKEN: config.adminToken }) });
      return {
        pid: w.process.pid,
        send: (m) => {
          if (w.isConnected()) w.send(m);
        },
        kill: (signal) => void w.process.kill(signal),
        onMessage: (fn) => void w.on('message', fn),
        onExit: (fn) => void w.on('exit', (code, signal) => fn(code, (signal as NodeJS.Signals | null) ?? null)),
      };
    },
    onStarted,
    onMessage: (w, m) => void gatherer.handle(w, m),
    onDone: (code) => {
      gatherer.stop();
      process.exit(code);
    },
  });
  process.on('SIGINT', () => supervisor.stop('SIGINT'));
  process.on('SIGTERM', () => supervisor.stop('SIGTERM'));
  // SIGHUP would end the primary (its default action) and with it every worker.
  process.on('SIGHUP', () => {
    if (!config.tls) return logger.info('SIGHUP: nothing to reload (no --tls-cert)');
    logger.info('SIGHUP: every worker reloads its TLS certificate');
    supervisor.signalAll('SIGHUP');
  });
  supervisor.start();
}
