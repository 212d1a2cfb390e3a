/**
 * Node TCP adapter with MobileIMSDK's framing (a 4-byte big-endian length, then at most 6144 bytes of
 * body, as MobileIMSDK), so the same client runs over TCP as over WebSocket. Node's `net` module (or `tls`,
 * for `tls://` URLs) is passed in: this file imports nothing from Node.
 */
import type { SocketAdapter, SocketConnection, SocketHandlers } from '../src/transport';
import { encodeLengthPrefixed, LengthPrefixDecoder, TCP_MAX_BODY_BYTES } from '../src/length-prefix';
import { createHandlerGate, writeBounded } from './internal/gate';
import { copyBytes, toBytes } from './internal/bytes';
import { describeSocketError, parseHostPort } from './internal/host-port';

/** The part of a Node `net.Socket` this adapter uses. */
export interface NetSocketLike {
  on(event: 'connect' | 'secureConnect', listener: () => void): unknown;
  on(event: 'data', listener: (chunk: Uint8Array) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'close', listener: (hadError: boolean) => void): unknown;
  write(data: Uint8Array, callback?: (error?: Error | null) => void): boolean;
  end(callback?: () => void): unknown;
  destroy(): unknown;
  setNoDelay(noDelay?: boolean): unknown;
  setTimeout(timeoutMs: number, callback?: () => void): unknown;
}

/** How long a locally closed socket may stay idle while its last frames flush before it is destroyed. */
const FLUSH_TIMEOUT_MS = 5000;

/** What a TLS connection checks; Node verifies the server's certificate and name unless told otherwise. */
export interface TcpTlsOptions {
  /** PEM text of the CA(s) to trust instead of Node's bundled public CAs (a private CA): `readFileSync(path, 'utf8')`. */
  ca?: string | string[];
  /** The name the certificate must carry and the SNI sent (default: the URL's host). */
  servername?: string;
  /** false accepts any certificate: only for tests against a throwaway one (default true). */
  rejectUnauthorized?: boolean;
}

/** The options the adapter passes to `connect`: `host` and `port`, plus {@link TcpTlsOptions} for `tls://`. */
export type NetConnectOptions = { host: string; port: number } & TcpTlsOptions;

/** The part of Node's `net` module (or `tls` module) this adapter uses. */
export interface NetModuleLike {
  connect(options: NetConnectOptions): NetSocketLike;
}

/**
 * Creates the TCP adapter; URLs look like `tcp://127.0.0.1:8901` with Node's `net`, or
 * `tls://im.example.com:8901` with Node's `tls` (the certificate is verified unless `tls` options say not).
 *
 * @example
 * import net from 'node:net';
 * const client = new IMClient({ url: 'tcp://127.0.0.1:8901', adapter: createTcpAdapter(net) });
 * // TLS: import tls from 'node:tls';
 * // new IMClient({ url: 'tls://im.example.com:8901', adapter: createTcpAdapter(tls) });
 * // private CA: createTcpAdapter(tls, { ca: readFileSync('ca.pem', 'utf8') })
 */
export function createTcpAdapter(net: NetModuleLike, tls: TcpTlsOptions = {}): SocketAdapter {
  if (!net || typeof net.connect !== 'function') {
    throw new TypeError("createTcpAdapter(net): pass Node's `net` module (import net from 'node:net'), or `tls` for tls:// URLs");
  }
  if (!tls || typeof tls !== 'object') throw new TypeError('createTcpAdapter(net, tls): tls must be an object { ca?, servername?, rejectUnauthorized? }');
  if (tls.rejectUnauthorized !== undefined && typeof tls.rejectUnauthorized !== 'boolean') {
    throw new TypeError(`createTcpAdapter: tls.rejectUnauthorized must be true or false, got ${String(tls.rejectUnauthorized)}`);
  }
  const connect = (url: string, handlers: SocketHandlers): SocketConnection => {
    const secure = url.startsWith('tls:');
    const { host, port } = parseHostPort(url, secure ? 'tls' : 'tcp');
    const gate = createHandlerGate(handlers);
    const decoder = new LengthPrefixDecoder(TCP_MAX_BODY_BYTES);
    let socket: NetSocketLike | null = null;
    let connected = false;
    let misuse: TypeError | null = null;

    const destroy = (): void => {
      try {
        socket?.destroy();
      } catch {
        /* already destroyed */
      }
    };

    try {
      const s = net.connect(secure ? { ...tls, host, port } : { host, port });
      /* Node's net.connect ignores TLS options: a tls:// URL with the net module would talk plain text to a
         TLS port. A TLSSocket says `encrypted`; refuse anything else before a byte is sent. */
      const encrypted = (s as { encrypted?: unknown }).encrypted === true;
      if (secure !== encrypted) {
        s.destroy();
        misuse = new TypeError(
          secure ? "a tls:// URL needs createTcpAdapter(tls) with Node's `tls` module (import tls from 'node:tls')" : "a tcp:// URL needs createTcpAdapter(net); use tls:// with Node's `tls` module",
        );
        throw misuse;
      }
      socket = s;
      s.setNoDelay(true);
      /* A TLSSocket emits 'connect' once TCP is up, 'secureConnect' once the certificate has been verified. */
      s.on(secure ? 'secureConnect' : 'connect', () => {
        connected = true;
        gate.open();
      });
      s.on('data', (chunk) => {
        if (gate.ended) return;
        let bodies: Uint8Array[];
        try {
          /* Buffers handed to 'data' may share pooled memory; the decoder keeps copies. */
          bodies = decoder.push(copyBytes(chunk));
        } catch (thrown) {
          /* A frame announcing more than 6144 bytes cannot be resynchronised: drop the connection. */
          gate.error(thrown);
          gate.close({ code: 1009, reason: thrown instanceof Error ? thrown.message : 'frame too large' });
          destroy();
          return;
        }
        for (const body of bodies) gate.message(body);
      });
      let failure = 'socket error';
      s.on('error', (error) => {
        failure = describeSocketError(error);
        gate.error(error);
      });
      s.on('close', (hadError) => {
        gate.close(hadError ? { code: 1006, reason: failure } : { code: 1000, reason: 'connection closed' });
      });
    } catch (thrown) {
      if (misuse) throw misuse;
      gate.error(thrown);
      gate.close({ code: 1006, reason: 'connect threw' });
    }
    gate.release();

    return {
      send(data) {
        const s = socket;
        if (gate.ended || !s) return;
        writeBounded(gate, 'tcp', TCP_MAX_BODY_BYTES, toBytes(data), (body, done) => s.write(encodeLengthPrefixed(body), done));
      },
      close(code = 1000, reason = '') {
        if (gate.ended) return;
        gate.closeDeferred({ code, reason });
        if (!connected || !socket) {
          /* a socket still connecting has nothing to flush */
          destroy();
          return;
        }
        /* end() flushes frames already written (a logout, say) before the FIN, but alone it leaves the
           socket half-open for as long as the peer keeps its side open: destroy() follows once the flush
           is done, or once the socket has been idle for FLUSH_TIMEOUT_MS (a peer that stopped reading). */
        try {
          socket.setTimeout(FLUSH_TIMEOUT_MS, destroy);
          socket.end(destroy);
        } catch {
          destroy();
        }
      },
    };
  };
  return { name: 'tcp', maxFrameBytes: TCP_MAX_BODY_BYTES, connect };
}
