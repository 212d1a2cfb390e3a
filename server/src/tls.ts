/**
 * TLS for the WebSocket (wss://) and TCP gateways: certificate files loaded at start, reloaded on SIGHUP
 * and when the files change (without dropping a connection: `setSecureContext` only affects new
 * handshakes), and a daily warning while the certificate is close to its expiry.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import type { Socket } from 'node:net';
import { createSecureContext, type SecureContextOptions, type Server as TlsServer } from 'node:tls';
import type { Logger } from './logger';

/** The `tls` option of createServer: PEM file paths (not PEM text), so they can be reloaded. */
export interface TlsOptions {
  /** Path of the PEM certificate, optionally followed by its intermediate certificates. */
  cert: string;
  /** Path of the PEM private key (unencrypted). */
  key: string;
  /** Path of a PEM file of intermediate certificates sent after `cert` (the chain). */
  ca?: string;
  /** Reload when a file changes (polled, follows symlinks such as certbot's `live/`); default true. */
  watch?: boolean;
  /** How often the files are checked for changes when `watch` is on (default 5000). */
  watchIntervalMs?: number;
  /** Reload on SIGHUP (default true); false leaves SIGHUP to the application. */
  reloadOnSighup?: boolean;
  /** Warn (at start, then daily) when the certificate expires within this time (default 14 days). */
  expiryWarningMs?: number;
  /** A connection that has not finished its TLS handshake in this time is dropped (default 10000; Node's is 120 s). */
  handshakeTimeoutMs?: number;
}

/** {@link TlsOptions} with every default filled in. */
export interface ResolvedTlsOptions {
  cert: string;
  key: string;
  ca: string | null;
  watch: boolean;
  watchIntervalMs: number;
  reloadOnSighup: boolean;
  expiryWarningMs: number;
  handshakeTimeoutMs: number;
}

/** One loaded certificate: the options for a secure context and what the logs say about it. */
export interface TlsMaterial {
  context: SecureContextOptions;
  serial: string;
  fingerprint256: string;
  subject: string;
  validTo: Date;
}

/** A running reloader: the current material, a manual reload, and close (stops watching and timers). */
export interface TlsReloader {
  readonly current: TlsMaterial;
  reload(reason: string): boolean;
  close(): void;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** Writing a new certificate and key are two events: wait until they are both done. */
const DEBOUNCE_MS = 300;

/** Validates the `tls` option; throws TypeError/RangeError naming the bad field. */
export function resolveTlsOptions(o: TlsOptions | null | undefined): ResolvedTlsOptions | null {
  if (o === undefined || o === null) return null;
  if (typeof o !== 'object') throw new TypeError('tls must be an object { cert, key, ca? } of PEM file paths');
  for (const name of ['cert', 'key'] as const) {
    if (typeof o[name] !== 'string' || o[name] === '') throw new TypeError(`tls.${name} must be the path of a PEM file, got ${JSON.stringify(o[name])}`);
  }
  if (o.ca !== undefined && (typeof o.ca !== 'string' || o.ca === '')) throw new TypeError(`tls.ca must be the path of a PEM file, got ${JSON.stringify(o.ca)}`);
  const watchIntervalMs = o.watchIntervalMs ?? 5000;
  if (!Number.isFinite(watchIntervalMs) || watchIntervalMs <= 0) throw new RangeError(`tls.watchIntervalMs must be a positive number, got ${String(o.watchIntervalMs)}`);
  const expiryWarningMs = o.expiryWarningMs ?? 14 * DAY_MS;
  if (!Number.isFinite(expiryWarningMs) || expiryWarningMs < 0) throw new RangeError(`tls.expiryWarningMs must be 0 or more, got ${String(o.expiryWarningMs)}`);
  const handshakeTimeoutMs = o.handshakeTimeoutMs ?? 10000;
  if (!Number.isFinite(handshakeTimeoutMs) || handshakeTimeoutMs <= 0) {
    throw new RangeError(`tls.handshakeTimeoutMs must be a positive number, got ${String(o.handshakeTimeoutMs)}`);
  }
  return {
    cert: o.cert,
    key: o.key,
    ca: o.ca ?? null,
    watch: o.watch !== false,
    watchIntervalMs,
    reloadOnSighup: o.reloadOnSighup !== false,
    expiryWarningMs,
    handshakeTimeoutMs,
  };
}

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`TLS ${what} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** Reads and checks the files (the key must match the certificate); throws an Error naming the bad path. */
export function loadTlsMaterial(o: ResolvedTlsOptions): TlsMaterial {
  const cert = readPem(o.cert, 'certificate (tls.cert)');
  const key = readPem(o.key, 'private key (tls.key)');
  const ca = o.ca === null ? undefined : readPem(o.ca, 'chain (tls.ca)');
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new Error(`TLS certificate (tls.cert) ${o.cert}: not a PEM certificate (${(err as Error).message})`);
  }
  const context: SecureContextOptions = { cert: ca ? Buffer.concat([cert, Buffer.from('\n'), ca]) : cert, key };
  try {
    // OpenSSL refuses here what a handshake would fail on later: a bad key, or one of another certificate.
    createSecureContext(context);
  } catch (err) {
    throw new Error(`TLS ${o.cert} with key ${o.key}: ${(err as Error).message}`);
  }
  return { context, serial: x509.serialNumber, fingerprint256: x509.fingerprint256, subject: x509.subject.replace(/\n/g, ', '), validTo: new Date(x509.validTo) };
}

/**
 * Watches the files and SIGHUP, and calls `apply` with each good new certificate; a bad one is logged and
 * the old one kept. Also logs, at once and then every day, a certificate that expires soon.
 */
export function startTlsReloader(
  o: ResolvedTlsOptions,
  initial: TlsMaterial,
  logger: Logger,
  label: string,
  apply: (material: TlsMaterial) => void,
): TlsReloader {
  let current = initial;
  let closed = false;
  let debounce: ReturnType<typeof setTimeout> | null = null;
  let daily: ReturnType<typeof setTimeout> | null = null;
  const paths = [o.cert, o.key, ...(o.ca === null ? [] : [o.ca])];

  const checkExpiry = (): void => {
    const leftMs = current.validTo.getTime() - Date.now();
    const at = current.validTo.toISOString();
    if (leftMs <= 0) logger.error(`${label}: TLS certificate ${o.cert} (serial ${current.serial}) EXPIRED at ${at}: clients refuse it; renew it now`);
    else if (leftMs < o.expiryWarningMs) {
      const days = Math.ceil(leftMs / DAY_MS);
      logger.warn(`${label}: TLS certificate ${o.cert} (serial ${current.serial}) expires in ${days} day${days === 1 ? '' : 's'} (at ${at}); renew it`);
    }
  };
  const armDaily = (): void => {
    daily = setTimeout(() => {
      checkExpiry();
      armDaily();
    }, DAY_MS);
    daily.unref?.();
  };

  const reload = (reason: string): boolean => {
    if (closed) return false;
    let next: TlsMaterial;
    try {
      next = loadTlsMaterial(o);
      apply(next);
    } catch (err) {
      logger.error(`${label}: TLS reload (${reason}) failed, keeping the certificate with serial ${current.serial}: ${(err as Error).message}`);
      return false;
    }
    const changed = next.fingerprint256 !== current.fingerprint256;
    current = next;
    logger.info(`${label}: TLS certificate reloaded (${reason}): serial ${next.serial}, ${next.subject}, valid to ${next.validTo.toISOString()}${changed ? '' : ' (unchanged)'}`);
    checkExpiry();
    return true;
  };

  const onFileChange = (now: Stats, before: Stats): void => {
    if (now.mtimeMs === before.mtimeMs && now.ino === before.ino && now.size === before.size) return;
    if (debounce) clearTimeout(debounce);
    debounce = setTimeout(() => {
      debounce = null;
      reload('file changed');
    }, DEBOUNCE_MS);
    debounce.unref?.();
  };
  const onSighup = (): void => void reload('SIGHUP');

  if (o.watch) for (const p of paths) watchFile(p, { interval: o.watchIntervalMs, persistent: false }, onFileChange);
  if (o.reloadOnSighup) process.on('SIGHUP', onSighup);
  checkExpiry();
  armDaily();

  return {
    get current() {
      return current;
    },
    reload,
    close() {
      if (closed) return;
      closed = true;
      if (o.watch) for (const p of paths) unwatchFile(p, onFileChange);
      if (o.reloadOnSighup) process.off('SIGHUP', onSighup);
      if (debounce) clearTimeout(debounce);
      if (daily) clearTimeout(daily);
    },
  };
}

/**
 * Readies a TLS listener (the TCP gateway's, or the HTTPS server under wss://): a client whose handshake
 * fails or stalls past `handshakeTimeoutMs` is destroyed, the certificate is reloaded on SIGHUP and file
 * changes, and the raw connections are tracked so closing the gateway need not wait for those still in
 * their handshake (a server's own bookkeeping knows only connections past it). `close()` stops both.
 */
export function guardTlsListener(server: TlsServer, o: ResolvedTlsOptions, material: TlsMaterial, logger: Logger, label: string): { close(): void } {
  server.on('tlsClientError', (err, socket) => {
    // A listener here replaces Node's own handling: the socket must be destroyed, or a client that never
    // finishes its handshake keeps it open past handshakeTimeout.
    socket.destroy();
    logger.debug(`${label}: TLS handshake failed: ${err.message}`);
  });
  const reloader = startTlsReloader(o, material, logger, label, (m) => server.setSecureContext(m.context));
  const raw = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    raw.add(socket);
    socket.once('close', () => raw.delete(socket));
  });
  return {
    close() {
      reloader.close();
      for (const socket of raw) socket.destroy();
    },
  };
}
