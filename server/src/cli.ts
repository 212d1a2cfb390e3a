import { readFileSync } from 'node:fs';
import { authNotice, createAuthenticator } from './auth';
import { parseCli, helpText, type CliConfig } from './cli-args';
import { createLogger, defaultNodeId } from './logger';
import { redactUrl, type ServerOptions } from './options';
import { createServer, type BoundPorts, type IMServer } from './server';
import { joinPrimary, runPrimary, workerNodeId, workerRole } from './workers';

/** Extra time past `--drain-ms` for closing the store before the process exits regardless. */
const EXIT_GRACE_MS = 2000;

/** This package's version, from the package.json beside dist/. */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Runs the server from the command line until SIGINT or SIGTERM. */
async function main(): Promise<void> {
  let config;
  try {
    config = parseCli(process.argv.slice(2), process.env);
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    process.exitCode = 2;
    return;
  }
  if (config.help) {
    console.log(helpText());
    return;
  }
  if (config.version) {
    console.log(packageVersion());
    return;
  }
  const role = workerRole();
  if (config.workers > 1 && !role) {
    const o = config.options;
    const ids = `${workerNodeId(config.nodeId ?? defaultNodeId(), 1)}..w${config.workers}`;
    runPrimary(
      {
        workers: config.workers,
        nodeId: config.nodeId,
        logLevel: config.logLevel,
        logFormat: config.logFormat,
        drainMs: config.drainMs,
        adminToken: o.http && config.adminTokenGenerated ? o.http.adminToken : undefined,
        udpEnabled: !!o.udp,
        tls: !!o.tls,
      },
      (ready) => {
        const ports = { ...ready[0].ports } as BoundPorts;
        const extra = [`  workers    ${config.workers} processes share these ports (round-robin), node ids ${ids}${ports.udp !== undefined ? '; udp on worker 1 only' : ''}`];
        console.log(banner(config, ports, extra, ids));
      },
    );
    return;
  }
  if (role) {
    config.nodeId = role.nodeId;
    config.options.nodeId = role.nodeId;
    if (!role.runsUdp) config.options.udp = false;
  }
  const logger = createLogger({ level: config.logLevel, format: config.logFormat, nodeId: config.nodeId });
  let server: IMServer;
  try {
    server = await createServer({ ...config.options, logger });
  } catch (err) {
    console.error(`error: ${describeStartError(err as NodeJS.ErrnoException & { port?: number }, config.options)}`);
    process.exitCode = 1;
    // A worker's IPC channel would keep it alive.
    if (role) process.exit(1);
    return;
  }
  // The banner is for whoever started the process; the JSON log lines follow it. Under --workers the
  // primary prints it once all workers listen.
  if (!role) console.log(banner(config, server.ports, [], server.nodeId));

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn(`${signal} again: exiting at once`);
      process.exit(1);
    }
    stopping = true;
    logger.info(`${signal}: shutting down`, { drainMs: config.drainMs });
    setTimeout(() => {
      logger.error('shutdown took too long: exiting');
      process.exit(1);
    }, config.drainMs + EXIT_GRACE_MS).unref();
    server.shutdown(config.drainMs).then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error('shutdown failed', err);
        process.exit(1);
      },
    );
  };
  if (role) {
    // The primary asks every worker to drain on SIGTERM/SIGINT; a terminal's Ctrl-C or a service
    // manager may also signal the worker itself. Only a second signal exits at once.
    let signals = 0;
    const onSignal = (signal: string) => {
      if (++signals > 1 || !stopping) stop(signal);
    };
    process.on('SIGINT', () => onSignal('SIGINT'));
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    const own = server.prometheusMetrics.bind(server);
    const clusterMetrics = joinPrimary({
      ports: server.ports,
      nodeId: role.nodeId,
      ownMetrics: own,
      onShutdown: () => {
        if (!stopping) stop('the primary asked to drain');
      },
    });
    // A scrape reaches whichever worker took the connection; it answers for every worker (node label).
    server.prometheusMetrics = clusterMetrics;
    return;
  }
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/** The lines that say where the server listens, how it authenticates and where it stores. */
function banner(config: CliConfig, ports: BoundPorts, extra: string[], nodeId: string): string {
  const { ws, tcp, udp, http } = ports;
  const o = config.options;
  const host = (l: unknown) => (l && typeof l === 'object' && 'host' in l && l.host ? String(l.host) : '0.0.0.0');
  const lines = [`MobileIMSDK-compatible server ${packageVersion()} listening:`];
  if (ws !== undefined) lines.push(`  websocket  ${o.tls ? 'wss' : 'ws'}://${host(o.ws)}:${ws}${o.ws ? (o.ws.path ?? '/websocket') : ''}`);
  if (tcp !== undefined) lines.push(`  tcp        ${o.tls ? 'tls://' : ''}${host(o.tcp)}:${tcp}`);
  if (udp !== undefined) lines.push(`  udp        ${host(o.udp)}:${udp}`);
  if (http !== undefined) lines.push(`  admin api  http://${host(o.http)}:${http}  (GET /health, /ready, /metrics, /api/metrics, /api/online; POST /api/send, /api/kick)`);
  if (http !== undefined && config.adminTokenGenerated && o.http) lines.push(`  admin token (generated, set IM_ADMIN_TOKEN to fix it): ${o.http.adminToken}`);
  lines.push(...extra);
  const auth = authNotice(o.auth, createAuthenticator(o.auth), false);
  lines.push(`  ${auth.level === 'warn' ? 'WARNING: ' : ''}${auth.message}`);
  if (o.cluster) lines.push(`  cluster node ${nodeId} on ${redactUrl(o.cluster.redisUrl)} (messages stored in Redis)`);
  else lines.push(`  offline store: ${o.dataDir}/offline.db`);
  return lines.join('\n');
}

/** The flag and environment variable that move each listener. */
const PORT_FLAGS = [
  ['ws', 'WebSocket gateway', '--ws-port', 'IM_WS_PORT'],
  ['tcp', 'TCP gateway', '--tcp-port', 'IM_TCP_PORT'],
  ['udp', 'UDP gateway', '--udp-port', 'IM_UDP_PORT'],
  ['http', 'admin API', '--http-port', 'IM_HTTP_PORT'],
] as const;

/** A start-up failure in words: a port in use or refused names the flag that changes it. */
function describeStartError(err: NodeJS.ErrnoException & { port?: number }, options: ServerOptions): string {
  if (err.code !== 'EADDRINUSE' && err.code !== 'EACCES') return err.message;
  const hit = PORT_FLAGS.find(([key]) => {
    const o = options[key];
    return o && o.port === err.port;
  });
  const what = err.code === 'EADDRINUSE' ? 'is already in use' : 'may not be used by this user';
  if (!hit) return `port ${err.port ?? '?'} ${what} (${err.message})`;
  const [, name, flag, env] = hit;
  return `port ${err.port} (${name}) ${what}: stop what uses it, or choose another port with ${flag} <port> (or ${env}); ${flag} -1 turns it off`;
}

main().catch((err: unknown) => {
  console.error(`error: ${(err as Error).message}`);
  process.exit(1);
});
