/**
 * Throwaway PKI for the TLS tests: a CA and server certificates (SAN 127.0.0.1 and localhost) made with
 * Debian's openssl in a temporary folder at run time. No key is ever committed.
 */
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Fails (never skips) with an install hint when a tool the TLS tests need is missing. */
export function requireTool(tool: 'openssl' | 'nginx'): string {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin'])) {
    const path = join(dir, tool);
    try {
      execFileSync(path, [tool === 'openssl' ? 'version' : '-v'], { stdio: 'pipe' });
      return path;
    } catch {
      /* not here */
    }
  }
  throw new Error(`the TLS tests need ${tool}: apt-get install -y ${tool} (.ci/run installs it)`);
}

/** One server certificate: its files and what a client sees of it. */
export interface ServerCert {
  certPath: string;
  keyPath: string;
  pem: string;
  key: string;
  /** Serial as Node prints it (upper-case hex), e.g. in `getPeerCertificate().serialNumber`. */
  serial: string;
  /** base64 SHA-256 of the public key, for Chromium's --ignore-certificate-errors-spki-list. */
  spkiSha256: string;
}

/** A CA in a temporary folder that issues server certificates. */
export class TestPki {
  readonly dir = mkdtempSync(join(tmpdir(), 'im-tls-'));
  readonly caPath = join(this.dir, 'ca.pem');
  readonly caKeyPath = join(this.dir, 'ca.key');
  private readonly openssl = requireTool('openssl');
  private serial = 0x1000;

  constructor() {
    this.run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', this.caKeyPath, '-out', this.caPath,
      '-days', '3', '-subj', '/CN=mobileimsdk-ts test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  }

  /** The CA certificate as PEM text. */
  get caPem(): string {
    return readFileSync(this.caPath, 'utf8');
  }

  /** Issues a server certificate for 127.0.0.1 and localhost valid for `days`, with a fresh serial. */
  issue(name: string, days = 2): ServerCert {
    const certPath = join(this.dir, `${name}.pem`);
    const keyPath = join(this.dir, `${name}.key`);
    const csr = join(this.dir, `${name}.csr`);
    const ext = join(this.dir, `${name}.ext`);
    writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n');
    this.run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyPath, '-out', csr, '-subj', `/CN=${name}`]);
    const serial = (this.serial++).toString(16).toUpperCase();
    this.run(['x509', '-req', '-in', csr, '-CA', this.caPath, '-CAkey', this.caKeyPath, '-set_serial', `0x${serial}`, '-days', String(days), '-extfile', ext, '-out', certPath]);
    const pem = readFileSync(certPath, 'utf8');
    const x509 = new X509Certificate(pem);
    const spki = x509.publicKey.export({ type: 'spki', format: 'der' });
    return { certPath, keyPath, pem, key: readFileSync(keyPath, 'utf8'), serial: x509.serialNumber, spkiSha256: createHash('sha256').update(spki).digest('base64') };
  }

  /** Deletes every file. */
  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private run(args: string[]): void {
    execFileSync(this.openssl, args, { stdio: 'pipe' });
  }
}
