/** Shared pieces of the TLS tests: a capturing logger, SDK clients over wss and TLS TCP, peer certificates. */
import { connect as tlsConnect } from 'node:tls';
import tls from 'node:tls';
import { WebSocket } from 'ws';
import { createBrowserAdapter } from '../../adapters/browser';
import { createTcpAdapter } from '../../adapters/tcp';
import { IMClient } from '../../src/index';
import type { Logger } from '../../server/src/index';

/** A logger that keeps every line as `level: message`. */
export function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) => (message: string) => void lines.push(`${level}: ${message}`);
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

/**
 * `ws`'s WebSocket trusting our test CA: the browser adapter calls `new WebSocket(url)`, and `ws` takes TLS
 * options only as a constructor argument, so a subclass adds them (a browser trusts its own store instead).
 */
export function webSocketTrusting(ca: string, extra: Record<string, unknown> = {}): new (url: string) => WebSocket {
  return class TrustingWebSocket extends WebSocket {
    constructor(url: string) {
      super(url, { ca, ...extra });
    }
  };
}

/** An SDK client over wss:// with the browser adapter and `ws`. */
export function wssClient(url: string, ca: string, extra: Record<string, unknown> = {}): IMClient {
  return new IMClient({ url, adapter: createBrowserAdapter({ WebSocket: webSocketTrusting(ca, extra) as never, window: null, document: null }) });
}

/** An SDK client over tls:// with the TCP adapter and Node's tls module. */
export function tlsTcpClient(port: number, ca: string): IMClient {
  return new IMClient({ url: `tls://127.0.0.1:${port}`, adapter: createTcpAdapter(tls, { ca }) });
}

/** The serial of the certificate a new TLS handshake on `port` gets. */
export function peerSerial(port: number, ca: string, servername?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca, servername }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.destroy();
      resolve(serial);
    });
    s.on('error', reject);
  });
}
