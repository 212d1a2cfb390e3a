import { createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SenseMode } from '../../src/sense-mode';
import { createAuthenticator, type AuthOptions } from './auth';
import type { LogFormat, LogLevel } from './logger';
import type { ClusterOptions, ServerOptions } from './options';
import { parseWorkers } from './workers';

/** One CLI flag with its environment variable. */
interface Flag {
  flag: string;
  env: string;
  help: string;
  kind: 'port' | 'string' | 'int' | 'bool';
}

const FLAGS: Flag[] = [
  { flag: '--ws-port', env: 'IM_WS_PORT', kind: 'port', help: 'WebSocket port (default 3000; 0 = any free port; -1 = off)' },
  { flag: '--ws-path', env: 'IM_WS_PATH', kind: 'string', help: 'WebSocket path (default /websocket)' },
  { flag: '--tcp-port', env: 'IM_TCP_PORT', kind: 'port', help: 'TCP port (default 8901; -1 = off)' },
  { flag: '--udp-port', env: 'IM_UDP_PORT', kind: 'port', help: 'UDP port (default 7901; -1 = off)' },
  { flag: '--udp-max-peers', env: 'IM_UDP_MAX_PEERS', kind: 'int', help: 'UDP peer addresses held at once; a newcomer evicts the least valuable (default 10000)' },
  { flag: '--udp-max-peers-per-address', env: 'IM_UDP_MAX_PEERS_PER_ADDRESS', kind: 'int', help: 'UDP peers one source IP may hold (default 1000)' },
  { flag: '--http-port', env: 'IM_HTTP_PORT', kind: 'port', help: 'admin HTTP port (default 8080; -1 = off)' },
  { flag: '--host', env: 'IM_HOST', kind: 'string', help: 'address the WebSocket, TCP and UDP gateways bind (default all interfaces)' },
  { flag: '--http-host', env: 'IM_HTTP_HOST', kind: 'string', help: 'address the admin API binds (default 127.0.0.1; not --host)' },
  { flag: '--metrics-public', env: 'IM_METRICS_PUBLIC', kind: 'bool', help: 'serve GET /metrics without the admin token on a non-loopback --http-host' },
  { flag: '--admin-token', env: 'IM_ADMIN_TOKEN', kind: 'string', help: 'bearer token of the admin API (default: a random one, printed)' },
  { flag: '--sense-mode', env: 'IM_SENSE_MODE', kind: 'int', help: 'sense mode 1-7 = MODE_3S..MODE_120S, sets the idle expiry (default 4 = MODE_15S, 20 s)' },
  { flag: '--data-dir', env: 'IM_DATA_DIR', kind: 'string', help: 'directory of the offline store (default ./data)' },
  { flag: '--durability', env: 'IM_DURABILITY', kind: 'string', help: '"normal" (survives a process kill, default) or "full" (also power loss)' },
  { flag: '--max-offline-per-user', env: 'IM_MAX_OFFLINE_PER_USER', kind: 'int', help: 'messages stored for one receiver at most; then error 319 (default 10000)' },
  { flag: '--max-stored-messages', env: 'IM_MAX_STORED_MESSAGES', kind: 'int', help: 'messages the offline store holds in all; then error 324 (default 1000000)' },
  { flag: '--max-stored-bytes', env: 'IM_MAX_STORED_BYTES', kind: 'int', help: 'bytes of frames the offline store holds in all; then error 324 (default 1073741824 = 1 GiB)' },
  { flag: '--store-hold-ms', env: 'IM_STORE_HOLD_MS', kind: 'int', help: 'a message to an online receiver waits this long for its ACK before it is written to disk (default 10; 0 = write at once)' },
  { flag: '--message-ttl-ms', env: 'IM_MESSAGE_TTL_MS', kind: 'int', help: 'a stored message not ACKed within this time expires and is removed (default 1209600000 = 14 days)' },
  { flag: '--max-unauth-per-address', env: 'IM_MAX_UNAUTH_PER_ADDRESS', kind: 'int', help: 'WebSocket + TCP connections one IP may hold before logging in; beyond: refused (default 64; 0 = no cap)' },
  { flag: '--login-timeout-ms', env: 'IM_LOGIN_TIMEOUT_MS', kind: 'int', help: 'a connection must log in within this time (default 15000)' },
  { flag: '--rate-burst', env: 'IM_RATE_BURST', kind: 'int', help: 'frames a connection may send at once (default 200; 0 = no limit)' },
  { flag: '--rate-per-second', env: 'IM_RATE_PER_SECOND', kind: 'int', help: 'frames per second a connection may sustain (default 100)' },
  { flag: '--auth', env: 'IM_AUTH', kind: 'string', help: '"none": accept every login, on purpose (without an --auth-* flag the server warns)' },
  { flag: '--auth-jwt-secret', env: 'IM_AUTH_JWT_SECRET', kind: 'string', help: 'login tokens are HS256 JWTs with sub = user id, signed with this secret (32+ bytes)' },
  { flag: '--auth-jwt-public-key', env: 'IM_AUTH_JWT_PUBLIC_KEY', kind: 'string', help: 'login tokens are RS256/ES256 JWTs with sub = user id; PEM public key file' },
  { flag: '--auth-jwt-audience', env: 'IM_AUTH_JWT_AUDIENCE', kind: 'string', help: 'required JWT "aud"' },
  { flag: '--auth-jwt-issuer', env: 'IM_AUTH_JWT_ISSUER', kind: 'string', help: 'required JWT "iss"' },
  { flag: '--auth-webhook', env: 'IM_AUTH_WEBHOOK', kind: 'string', help: 'POST {userId, token, extra} to this URL; HTTP 200 {"ok":true} accepts' },
  { flag: '--auth-webhook-timeout-ms', env: 'IM_AUTH_WEBHOOK_TIMEOUT_MS', kind: 'int', help: 'webhook answer deadline, else login code 330 (default 3000)' },
  { flag: '--auth-webhook-max-in-flight', env: 'IM_AUTH_WEBHOOK_MAX_IN_FLIGHT', kind: 'int', help: 'webhook requests at once, beyond: login code 331 (default 64)' },
  { flag: '--auth-webhook-cache-ms', env: 'IM_AUTH_WEBHOOK_CACHE_MS', kind: 'int', help: 'reuse an answer for the same user, token and extra this long (default 10000; 0 = off)' },
  { flag: '--rate-control-burst', env: 'IM_RATE_CONTROL_BURST', kind: 'int', help: 'keep-alives and unsolicited ACKs a connection may send at once (default 100)' },
  { flag: '--rate-control-per-second', env: 'IM_RATE_CONTROL_PER_SECOND', kind: 'int', help: 'keep-alives and unsolicited ACKs per second, sustained (default 10)' },
  { flag: '--log-level', env: 'IM_LOG_LEVEL', kind: 'string', help: 'debug | info | warn | error | silent (default info)' },
  { flag: '--log-format', env: 'IM_LOG_FORMAT', kind: 'string', help: 'json (one object a line, default) | pretty (for a terminal)' },
  { flag: '--node-id', env: 'IM_NODE_ID', kind: 'string', help: 'this node\'s id in every log line and /health (default hostname-pid)' },
  { flag: '--redis-url', env: 'IM_REDIS_URL', kind: 'string', help: 'cluster mode: share users, messages and presence with the other nodes on this Redis (redis://host:port)' },
  { flag: '--redis-prefix', env: 'IM_REDIS_PREFIX', kind: 'string', help: 'prefix of every Redis key and channel, one per cluster (default im:)' },
  { flag: '--redis-durability', env: 'IM_REDIS_DURABILITY', kind: 'string', help: '"everysec" (AOF on, default) or "always" (Redis must run appendfsync always; checked at start)' },
  { flag: '--workers', env: 'IM_WORKERS', kind: 'string', help: 'processes sharing the ports, each a cluster node (default 1; "auto" = one per core; above 1 needs --redis-url)' },
  { flag: '--drain-ms', env: 'IM_DRAIN_MS', kind: 'int', help: 'on SIGTERM/SIGINT, time clients get to leave before exit (default 5000; a second signal exits at once)' },
  { flag: '--tls-cert', env: 'IM_TLS_CERT', kind: 'string', help: 'PEM certificate file: the WebSocket gateway serves wss://, TCP runs TLS (reloaded on SIGHUP and change)' },
  { flag: '--tls-key', env: 'IM_TLS_KEY', kind: 'string', help: 'PEM private key file of --tls-cert' },
  { flag: '--tls-ca', env: 'IM_TLS_CA', kind: 'string', help: 'PEM file of intermediate certificates sent after --tls-cert (the chain)' },
  { flag: '--trusted-proxies', env: 'IM_TRUSTED_PROXIES', kind: 'string', help: 'comma-separated proxy addresses whose X-Forwarded-For/X-Real-IP name WebSocket clients in logs (default none)' },
];

/** The `--help` text. */
export function helpText(): string {
  const label = (f: Flag) => (f.kind === 'bool' ? f.flag : `${f.flag} <${f.kind === 'string' ? 'value' : 'n'}>`);
  const w1 = Math.max(26, ...FLAGS.map((f) => label(f).length));
  const w2 = Math.max(20, ...FLAGS.map((f) => f.env.length));
  const rows = FLAGS.map((f) => `  ${label(f).padEnd(w1)} ${f.env.padEnd(w2)} ${f.help}`);
  return [
    'Usage: mobileimsdk-ts-server [flags]',
    '',
    'MobileIMSDK v6 compatible server: WebSocket, TCP and UDP gateways, offline store, admin HTTP API.',
    'Each flag can also be set by its environment variable; the flag wins.',
    '',
    `  ${'flag'.padEnd(w1)} ${'environment'.padEnd(w2)} meaning`,
    ...rows,
    `  ${'--version'.padEnd(w1)} ${''.padEnd(w2)} print the version`,
    `  ${'--help'.padEnd(w1)} ${''.padEnd(w2)} print this text`,
  ].join('\n');
}

/** What the CLI will start with. */
export interface CliConfig {
  options: ServerOptions;
  logLevel: LogLevel;
  logFormat: LogFormat;
  nodeId: string | undefined;
  /** `--workers`: processes to run (1 = this process serves, no cluster module). */
  workers: number;
  drainMs: number;
  adminTokenGenerated: boolean;
  help: boolean;
  version: boolean;
}

/** Parses argv (without node and the script) and the environment; throws with a readable message. */
export function parseCli(argv: string[], env: Record<string, string | undefined>): CliConfig {
  const values = new Map<string, string>();
  for (const f of FLAGS) {
    const v = env[f.env];
    if (v !== undefined && v !== '') values.set(f.flag, v);
  }
  let help = false;
  let version = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (arg === '--version' || arg === '-v') {
      version = true;
      continue;
    }
    const [name, inline] = arg.split(/=(.*)/s, 2);
    const f = FLAGS.find((x) => x.flag === name);
    if (!f) throw new Error(`unknown flag ${arg} (see --help)`);
    const v = f.kind === 'bool' ? (inline ?? 'true') : (inline ?? argv[++i]);
    if (v === undefined) throw new Error(`${name} needs a value`);
    values.set(name, v);
  }
  const int = (flag: string, min: number, max: number): number | undefined => {
    const v = values.get(flag);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${flag} must be an integer ${min}..${max}, got "${v}"`);
    return n;
  };
  const host = values.get('--host');
  const gw = (flag: string, fallback: number) => {
    const p = int(flag, -1, 65535) ?? fallback;
    return p === -1 ? false : { port: p, host };
  };
  let adminToken = values.get('--admin-token');
  const adminTokenGenerated = adminToken === undefined;
  adminToken ??= randomBytes(18).toString('base64url');
  const httpPort = int('--http-port', -1, 65535) ?? 8080;
  const metricsPublic = bool('--metrics-public', values.get('--metrics-public'));
  const http = httpPort === -1 ? false : { port: httpPort, host: values.get('--http-host') ?? '127.0.0.1', metricsPublic };
  const ws = gw('--ws-port', 3000);
  const burst = int('--rate-burst', 0, 1e9);
  const udp = gw('--udp-port', 7901);
  const maxPeers = int('--udp-max-peers', 1, 1e7);
  const maxPerAddress = int('--udp-max-peers-per-address', 1, 1e7);
  const durability = values.get('--durability');
  if (durability !== undefined && durability !== 'normal' && durability !== 'full') throw new Error('--durability must be "normal" or "full"');
  const auth = authOf(values, int);
  const tlsCert = values.get('--tls-cert');
  const tlsKey = values.get('--tls-key');
  const tlsCa = values.get('--tls-ca');
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new Error('--tls-cert and --tls-key go together: pass both PEM files, or neither');
  if (tlsCa !== undefined && tlsCert === undefined) throw new Error('--tls-ca needs --tls-cert and --tls-key');
  const proxies = values.get('--trusted-proxies');
  const trustedProxies = proxies === undefined ? undefined : proxies.split(',').map((a) => a.trim()).filter((a) => a !== '');
  const logLevel = (values.get('--log-level') ?? 'info') as LogLevel;
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(logLevel)) throw new Error(`--log-level must be debug, info, warn, error or silent`);
  const logFormat = (values.get('--log-format') ?? 'json') as LogFormat;
  if (logFormat !== 'json' && logFormat !== 'pretty') throw new Error('--log-format must be "json" or "pretty"');
  const nodeId = values.get('--node-id');
  const cluster = clusterOf(values);
  const workersValue = values.get('--workers');
  const workers = workersValue === undefined ? 1 : parseWorkers(workersValue);
  if (workers > 1 && cluster === undefined) {
    throw new Error(
      `--workers ${workersValue}${workersValue === 'auto' ? ` (${workers} cores)` : ''} needs --redis-url (or IM_REDIS_URL): each worker is its own process with its own sessions, ` +
        'and workers share who is online, where to route and what is stored only through Redis; without it a user on one worker could not reach a user on another. ' +
        'Pass --redis-url redis://host:port, or run one process (--workers 1)',
    );
  }
  return {
    help,
    version,
    logLevel,
    logFormat,
    nodeId,
    workers,
    drainMs: int('--drain-ms', 0, 3600000) ?? 5000,
    adminTokenGenerated,
    options: {
      nodeId,
      ...(cluster && { cluster }),
      ws: ws && { ...ws, path: values.get('--ws-path') ?? '/websocket', ...(trustedProxies && { trustedProxies }) },
      tcp: gw('--tcp-port', 8901),
      udp: udp && {
        ...udp,
        ...(maxPeers === undefined ? {} : { maxSessions: maxPeers }),
        ...(maxPerAddress === undefined ? {} : { maxSessionsPerAddress: maxPerAddress }),
      },
      http: http && { ...http, adminToken },
      senseMode: int('--sense-mode', 1, 7) ?? SenseMode.MODE_15S,
      dataDir: values.get('--data-dir') ?? 'data',
      durability,
      maxOfflinePerUser: int('--max-offline-per-user', 1, 1e9),
      maxStoredMessages: int('--max-stored-messages', 1, 1e12),
      maxStoredBytes: int('--max-stored-bytes', 1, Number.MAX_SAFE_INTEGER),
      messageTtlMs: int('--message-ttl-ms', 1, Number.MAX_SAFE_INTEGER),
      storeHoldMs: int('--store-hold-ms', 0, 1000),
      loginTimeoutMs: int('--login-timeout-ms', 1, 3600000),
      maxUnauthenticatedPerAddress: int('--max-unauth-per-address', 0, 1e9),
      rateLimit:
        burst === 0
          ? false
          : {
              burst: burst ?? 200,
              perSecond: int('--rate-per-second', 1, 1e9) ?? 100,
              controlBurst: int('--rate-control-burst', 1, 1e9) ?? 100,
              controlPerSecond: int('--rate-control-per-second', 1, 1e9) ?? 10,
            },
      auth,
      ...(tlsCert !== undefined && tlsKey !== undefined && { tls: { cert: tlsCert, key: tlsKey, ...(tlsCa !== undefined && { ca: tlsCa }) } }),
    },
  };
}

/** The `cluster` option from the --redis-* flags; undefined without --redis-url. */
function clusterOf(values: Map<string, string>): ClusterOptions | undefined {
  const redisUrl = values.get('--redis-url');
  if (redisUrl === undefined) {
    for (const f of ['--redis-prefix', '--redis-durability']) if (values.has(f)) throw new Error(`${f} needs --redis-url`);
    return undefined;
  }
  if (!/^rediss?:\/\/[^/]/.test(redisUrl)) throw new Error(`--redis-url must be a redis:// or rediss:// URL, got "${redisUrl}"`);
  const durability = values.get('--redis-durability');
  if (durability !== undefined && durability !== 'everysec' && durability !== 'always') throw new Error('--redis-durability must be "everysec" or "always"');
  const keyPrefix = values.get('--redis-prefix');
  return { redisUrl, ...(keyPrefix !== undefined && { keyPrefix }), ...(durability !== undefined && { durability }) };
}

/** The `auth` option from the --auth* flags; undefined when none is given (the server then warns). */
function authOf(values: Map<string, string>, int: (flag: string, min: number, max: number) => number | undefined): AuthOptions | undefined {
  const mode = values.get('--auth');
  if (mode !== undefined && mode !== 'none') throw new Error(`--auth must be "none" (use the --auth-jwt-* or --auth-webhook flags to configure a verifier), got "${mode}"`);
  const secret = values.get('--auth-jwt-secret');
  const keyFile = values.get('--auth-jwt-public-key');
  const webhook = values.get('--auth-webhook');
  const jwtGiven = secret !== undefined || keyFile !== undefined;
  const given = [mode !== undefined && '--auth none', jwtGiven && '--auth-jwt-*', webhook !== undefined && '--auth-webhook'].filter(Boolean);
  if (given.length > 1) throw new Error(`choose one way to authenticate logins, got ${given.join(' and ')}`);
  if (secret !== undefined && keyFile !== undefined) throw new Error('choose one of --auth-jwt-secret (HS256) and --auth-jwt-public-key (RS256/ES256)');
  for (const f of ['--auth-jwt-audience', '--auth-jwt-issuer']) {
    if (values.has(f) && !jwtGiven) throw new Error(`${f} needs --auth-jwt-secret or --auth-jwt-public-key`);
  }
  for (const f of ['--auth-webhook-timeout-ms', '--auth-webhook-max-in-flight', '--auth-webhook-cache-ms']) {
    if (values.has(f) && webhook === undefined) throw new Error(`${f} needs --auth-webhook`);
  }
  let auth: AuthOptions | undefined;
  if (mode === 'none') auth = 'none';
  else if (jwtGiven) {
    auth = {
      jwt: {
        ...(secret !== undefined ? { secret } : { publicKey: readPublicKey(keyFile as string) }),
        audience: values.get('--auth-jwt-audience'),
        issuer: values.get('--auth-jwt-issuer'),
      },
    };
  } else if (webhook !== undefined) {
    auth = {
      webhook: {
        url: webhook,
        timeoutMs: int('--auth-webhook-timeout-ms', 1, 600000),
        maxInFlight: int('--auth-webhook-max-in-flight', 1, 1e6),
        cacheTtlMs: int('--auth-webhook-cache-ms', 0, 3600000),
      },
    };
  }
  try {
    createAuthenticator(auth);
  } catch (err) {
    const flag = webhook !== undefined ? '--auth-webhook' : secret !== undefined ? '--auth-jwt-secret' : `--auth-jwt-public-key ${keyFile}`;
    throw new Error(`${flag}: ${(err as Error).message}`);
  }
  return auth;
}

/** Reads and parses a PEM public key file; the error names the path. */
function readPublicKey(path: string): KeyObject {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`--auth-jwt-public-key: cannot read the key file ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (pem.includes('PRIVATE KEY-----')) throw new Error(`--auth-jwt-public-key: ${path} holds a private key; give the server only the public key`);
  try {
    return createPublicKey(pem);
  } catch (err) {
    throw new Error(`--auth-jwt-public-key: ${path} is not a PEM public key (${(err as Error).message})`);
  }
}

function bool(flag: string, v: string | undefined): boolean {
  if (v === undefined || v === 'false' || v === '0') return false;
  if (v === 'true' || v === '1') return true;
  throw new Error(`${flag} takes true or false, got "${v}"`);
}
