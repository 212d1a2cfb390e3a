import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loaderCount } from '../../bench/lib/relay-targets.mjs';

// A load process without a pair waits for ever in bench:relay's saturation step and crashes in the
// open-loop steps, so the default count (one per core the load processes may run on) stops at the pairs.
describe('bench:relay load processes', () => {
  it('runs one per core the load processes may run on: one pinned to CPU 0, every core unpinned', () => {
    expect(loaderCount('ours', { loaders: 0, pairs: 50, pin: true }, 8)).toBe(1);
    expect(loaderCount('cluster2', { loaders: 0, pairs: 50, pin: true }, 8)).toBe(1);
    expect(loaderCount('ours', { loaders: 0, pairs: 50, pin: false }, 8)).toBe(8);
    expect(loaderCount('nodes2', { loaders: 0, pairs: 50, pin: true }, 8)).toBe(8);
    expect(loaderCount('workers1', { loaders: 0, pairs: 50, pin: true }, 2)).toBe(2);
  });

  it('never starts more than one per pair by default, however many cores', () => {
    expect(loaderCount('nodes2', { loaders: 0, pairs: 20, pin: true }, 64)).toBe(20);
    expect(loaderCount('ours', { loaders: 0, pairs: 1, pin: false }, 2)).toBe(1);
    expect(loaderCount('ours', { loaders: 0, pairs: 2, pin: false }, 2)).toBe(2);
  });

  it('takes --loaders as given', () => {
    expect(loaderCount('ours', { loaders: 3, pairs: 50, pin: true }, 8)).toBe(3);
    expect(loaderCount('nodes2', { loaders: 1, pairs: 50, pin: true }, 8)).toBe(1);
  });
});

const relayScript = fileURLToPath(new URL('../../bench/relay.mjs', import.meta.url));

describe('bench:relay --dedup-max', () => {
  it('refuses anything but a whole number of messages, and a window for clients without one, before starting anything', () => {
    for (const bad of ['-1', '1.5', 'x']) {
      const r = spawnSync(process.execPath, [relayScript, '--dedup-max', bad], { encoding: 'utf8', timeout: 20_000 });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain("--dedup-max is the SDK clients' receive window");
    }
    const raw = spawnSync(process.execPath, [relayScript, '--dedup-max', '100', '--clients', 'raw'], { encoding: 'utf8', timeout: 20_000 });
    expect(raw.status).not.toBe(0);
    expect(raw.stderr).toContain('--dedup-max sets the SDK clients');
  });
});
