/** Parses the `scheme://host:port` URLs of the Node TCP (and TLS) and UDP adapters. */

/** A parsed endpoint; IPv6 hosts are returned without brackets. */
export interface HostPort {
  host: string;
  port: number;
  ipv6: boolean;
}

/** Parses `tcp://127.0.0.1:8901`, `tls://host:8901` or `udp://[::1]:7901`; throws a TypeError naming the expected form. */
export function parseHostPort(url: string, scheme: 'tcp' | 'tls' | 'udp'): HostPort {
  const match = /^([a-z]+):\/\/(\[[0-9a-fA-F:.]+\]|[^:/?#[\]]+):(\d{1,5})\/?$/.exec(url);
  const port = match ? Number(match[3]) : NaN;
  if (!match || match[1] !== scheme || !(port > 0 && port < 65536)) {
    throw new TypeError(`expected a URL like ${scheme}://127.0.0.1:${scheme === 'udp' ? 7901 : 8901}, got ${url}`);
  }
  const bracketed = match[2].startsWith('[');
  return { host: bracketed ? match[2].slice(1, -1) : match[2], port, ipv6: bracketed };
}

// What Node's socket error codes mean, in the words a connection failure is reported with.
const ERRNO_WORDS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'connection timed out',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENETDOWN: 'network down',
  EPIPE: 'connection closed by the peer',
};

/** A Node socket error in words, such as `connection refused (ECONNREFUSED)`, for the close reason. */
export function describeSocketError(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  const words = typeof code === 'string' ? ERRNO_WORDS[code] : undefined;
  if (words) return `${words} (${code})`;
  return error instanceof Error && error.message ? error.message : 'socket error';
}
