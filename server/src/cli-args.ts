import { randomBytes } from 'node:crypto';
import { SenseMode } from '../../src/sense-mode';
import type { LogLevel } from './logger';
import type { ServerOptions } from './options';

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
  { flag: '--http-port', env: 'IM_HTTP_PORT', kind: 'port', help: 'admin HTTP port (default 8080; -1 = off)' },
  { flag: '--host', env: 'IM_HOST', kind: 'string', help: 'address every gateway binds (default all interfaces)' },
  { flag: '--admin-token', env: 'IM_ADMIN_TOKEN', kind: 'string', help: 'bearer token of the admin API (default: a random one, printed)' },
  { flag: '--sense-mode', env: 'IM_SENSE_MODE', kind: 'int', help: 'sense mode 1-7 = MODE_3S..MODE_120S, sets the idle expiry (default 4 = MODE_15S, 20 s)' },
  { flag: '--data-dir', env: 'IM_DATA_DIR', kind: 'string', help: 'directory of the offline store (default ./data)' },
  { flag: '--durability', env: 'IM_DURABILITY', kind: 'string', help: '"normal" (survives a process kill, default) or "full" (also power loss)' },
  { flag: '--login-timeout-ms', env: 'IM_LOGIN_TIMEOUT_MS', kind: 'int', help: 'a connection must log in within this time (default 15000)' },
  { flag: '--rate-burst', env: 'IM_RATE_BURST', kind: 'int', help: 'frames a connection may send at once (default 200; 0 = no limit)' },
  { flag: '--rate-per-second', env: 'IM_RATE_PER_SECOND', kind: 'int', help: 'frames per second a connection may sustain (default 100)' },
  { flag: '--log-level', env: 'IM_LOG_LEVEL', kind: 'string', help: 'debug | info | warn | error | silent (default info)' },
  { flag: '--tls-cert', env: 'IM_TLS_CERT', kind: 'string', help: 'PEM certificate file: the WebSocket gateway serves wss://, TCP runs TLS (reloaded on SIGHUP and change)' },
  { flag: '--tls-key', env: 'IM_TLS_KEY', kind: 'string', help: 'PEM private key file of --tls-cert' },
  { flag: '--tls-ca', env: 'IM_TLS_CA', kind: 'string', help: 'PEM file of intermediate certificates sent after --tls-cert (the chain)' },
  { flag: '--trusted-proxies', env: 'IM_TRUSTED_PROXIES', kind: 'string', help: 'comma-separated proxy addresses whose X-Forwarded-For/X-Real-IP name WebSocket clients in logs (default none)' },
];

/** The `--help` text. */
export function helpText(): string {
  const rows = FLAGS.map((f) => `  ${`${f.flag} <${f.kind === 'string' ? 'value' : 'n'}>`.padEnd(26)} ${f.env.padEnd(20)} ${f.help}`);
  return [
    'Usage: mobileimsdk-ts-server [flags]',
    '',
    'MobileIMSDK v6 compatible server: WebSocket, TCP and UDP gateways, offline store, admin HTTP API.',
    'Each flag can also be set by its environment variable; the flag wins.',
    '',
    `  ${'flag'.padEnd(26)} ${'environment'.padEnd(20)} meaning`,
    ...rows,
    `  ${'--help'.padEnd(26)} ${''.padEnd(20)} print this text`,
  ].join('\n');
}

/** What the CLI will start with. */
export interface CliConfig {
  options: ServerOptions;
  logLevel: LogLevel;
  adminTokenGenerated: boolean;
  help: boolean;
}

/** Parses argv (without node and the script) and the environment; throws with a readable message. */
export function parseCli(argv: string[], env: Record<string, string | undefined>): CliConfig {
  const values = new Map<string, string>();
  for (const f of FLAGS) {
    const v = env[f.env];
    if (v !== undefined && v !== '') values.set(f.flag, v);
  }
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    const [name, inline] = arg.split(/=(.*)/s, 2);
    const f = FLAGS.find((x) => x.flag === name);
    if (!f) throw new Error(`unknown flag ${arg} (see --help)`);
    const v = inline ?? argv[++i];
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
  const http = gw('--http-port', 8080);
  const ws = gw('--ws-port', 3000);
  const burst = int('--rate-burst', 0, 1e9);
  const durability = values.get('--durability');
  if (durability !== undefined && durability !== 'normal' && durability !== 'full') throw new Error('--durability must be "normal" or "full"');
  const tlsCert = values.get('--tls-cert');
  const tlsKey = values.get('--tls-key');
  const tlsCa = values.get('--tls-ca');
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new Error('--tls-cert and --tls-key go together: pass both PEM files, or neither');
  if (tlsCa !== undefined && tlsCert === undefined) throw new Error('--tls-ca needs --tls-cert and --tls-key');
  const proxies = values.get('--trusted-proxies');
  const trustedProxies = proxies === undefined ? undefined : proxies.split(',').map((a) => a.trim()).filter((a) => a !== '');
  const logLevel = (values.get('--log-level') ?? 'info') as LogLevel;
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(logLevel)) throw new Error(`--log-level must be debug, info, warn, error or silent`);
  return {
    help,
    logLevel,
    adminTokenGenerated,
    options: {
      ws: ws && { ...ws, path: values.get('--ws-path') ?? '/websocket', ...(trustedProxies && { trustedProxies }) },
      tcp: gw('--tcp-port', 8901),
      udp: gw('--udp-port', 7901),
      http: http && { ...http, adminToken },
      senseMode: int('--sense-mode', 1, 7) ?? SenseMode.MODE_15S,
      dataDir: values.get('--data-dir') ?? 'data',
      durability,
      loginTimeoutMs: int('--login-timeout-ms', 1, 3600000),
      rateLimit: burst === 0 ? false : { burst: burst ?? 200, perSecond: int('--rate-per-second', 1, 1e9) ?? 100 },
      ...(tlsCert !== undefined && tlsKey !== undefined && { tls: { cert: tlsCert, key: tlsKey, ...(tlsCa !== undefined && { ca: tlsCa }) } }),
    },
  };
}
