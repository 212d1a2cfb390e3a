/** The daily expiry warning of the TLS reloader under fake time: both sides of each boundary. */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadTlsMaterial, resolveTlsOptions, startTlsReloader, type TlsReloader } from '../../server/src/tls';
import { captureLogger } from './helpers';
import { TestPki } from './pki';

const DAY_MS = 24 * 3600 * 1000;
let pki: TestPki;
let reloader: TlsReloader | null = null;

beforeAll(() => void (pki = new TestPki()));
afterAll(() => pki?.dispose());
afterEach(() => {
  reloader?.close();
  reloader = null;
  vi.useRealTimers();
});

/**
 * Issues a certificate valid for `days`, then fakes time from `validTo - days + 1 ms` (openssl's dates have
 * whole seconds, so the real clock would put each boundary a fraction of a second off) and starts a reloader.
 */
function startFor(days: number) {
  const cert = pki.issue(`days-${days}`, days);
  const opts = resolveTlsOptions({ cert: cert.certPath, key: cert.keyPath, watch: false, reloadOnSighup: false })!;
  const material = loadTlsMaterial(opts);
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: material.validTo.getTime() - days * DAY_MS + 1 });
  const { logger, lines } = captureLogger();
  reloader = startTlsReloader(opts, material, logger, 'test', () => undefined);
  return { lines, warnings: () => lines.filter((l) => l.startsWith('warn: ')) };
}

describe('TLS certificate expiry warning', () => {
  it('checks again every 24 hours on a re-armed timer, warning once under 14 days are left', () => {
    // 15 days less 1 ms are left: no warning yet; one day later 14 days less 1 ms, under the threshold.
    const { warnings } = startFor(15);
    expect(warnings()).toEqual([]);
    vi.advanceTimersByTime(DAY_MS - 1);
    expect(warnings()).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toContain('expires in 14 days');
    vi.advanceTimersByTime(DAY_MS - 1);
    expect(warnings()).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(warnings().map((w) => /expires in (\d+) days/.exec(w)?.[1])).toEqual(['14', '13']);
  });

  it('says EXPIRED as an error once the certificate is past its end', () => {
    const { lines, warnings } = startFor(1);
    expect(warnings()).toEqual([expect.stringContaining('expires in 1 day (')]);
    vi.advanceTimersByTime(DAY_MS);
    expect(lines.filter((l) => l.startsWith('error: '))).toEqual([expect.stringContaining('EXPIRED')]);
  });

  it('leaves no timer behind once closed', () => {
    startFor(5);
    expect(vi.getTimerCount()).toBe(1);
    reloader!.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('validates its options, naming the field', () => {
    expect(() => resolveTlsOptions({ cert: 'a.pem', key: 7 as never })).toThrow('tls.key must be the path of a PEM file');
    expect(() => resolveTlsOptions({ cert: 'a.pem', key: 'a.key', watchIntervalMs: 0 })).toThrow(RangeError);
    expect(resolveTlsOptions(undefined)).toBeNull();
  });
});
